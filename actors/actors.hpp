// Every typed actor interface of the service, in one place.
//
//   HTTP handler ──spawn──▶ EXECUTION ──run──▶ SANDBOX ──(I/O thread)──▶ kernel in sandbox
//                              │  ◀──event───────┘
//                              └──publish──▶ CLIENT REGISTRY ──deliver──▶ CLIENT SESSION ─▶
//                              WebSocket
#pragma once

#include "actors/atoms.hpp"
#include "actors/messages.hpp"

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include <cstdint>
#include <string>

namespace codeexec {

/// The EVENT SINK receives the output of a running cell, in order.
using event_sink_actor = caf::typed_actor<
    /// One stdout/stderr chunk, rich result or code error.
    caf::reacts_to<atom::event, kernel_event>>;

/// The SANDBOX actor: one isolated environment with one kernel.
using sandbox_actor = caf::typed_actor<
    /// Runs a cell; its events go to the sink; replies when the cell has ended.
    caf::replies_to<atom::run, run_cell, event_sink_actor>::with<cell_outcome>,
    /// Kills everything in the sandbox now; a running cell's reply follows.
    caf::reacts_to<atom::kill>,
    /// From the sandbox's I/O thread: a runner event.
    caf::reacts_to<atom::runner, nlohmann::json>,
    /// From the sandbox's I/O thread: the runner broke the protocol.
    caf::reacts_to<atom::broken, std::string>,
    /// From the sandbox's I/O thread: an output stream passed its cap.
    caf::reacts_to<atom::limit, std::string>,
    /// From the sandbox's I/O thread: the sandbox's init exited.
    caf::reacts_to<atom::exited, sandbox_exit>,
    /// Periodic check of the running cell's CPU time.
    caf::reacts_to<atom::tick>>;

/// The EXECUTION actor: one run of client code, from request to final result.
using execution_actor = event_sink_actor::extend<
    /// Stops the execution now (its clients left, or the service shuts down).
    caf::reacts_to<atom::cancel, std::string>,
    /// The execution's deadline passed.
    caf::reacts_to<atom::timeout>,
    /// The sandbox did not answer a kill in time: finish without it.
    caf::reacts_to<atom::finish>>;

/// The CLIENT SESSION actor: one WebSocket connection.
using client_session_actor = caf::typed_actor<
    /// Sends one text message to the socket.
    caf::reacts_to<atom::deliver, std::string>,
    /// A text message arrived from the socket.
    caf::reacts_to<atom::received, std::string>,
    /// The peer closed the socket or it broke.
    caf::reacts_to<atom::closed>,
    /// Closes the socket with a code and reason (shutdown, or the client broke a rule).
    caf::reacts_to<atom::close, std::uint16_t, std::string>,
    /// Time to ping the client and to check that it answered the last ping.
    caf::reacts_to<atom::tick>>;

/// The CLIENT REGISTRY actor: which sessions hold which clientId, and the replay
/// buffers that let a late socket receive every event of a recent execution.
using client_registry_actor = caf::typed_actor<
    /// A socket for a clientId opened; it first receives the replay of recent executions.
    caf::reacts_to<atom::attach, std::string, client_session_actor>,
    /// An execution for a clientId started; it is cancelled if all its sockets leave.
    caf::reacts_to<atom::track, std::string, std::string, execution_actor>,
    /// One event message of an execution, for every socket of a clientId.
    caf::reacts_to<atom::publish, std::string, std::string, std::string>,
    /// The replay window of an execution passed.
    caf::reacts_to<atom::expire, std::string, std::string>,
    /// Closes every socket with 1001 (service shutdown); replies when all were told.
    caf::replies_to<atom::shutdown>::with<bool>,
    /// Counts: clientIds with sockets, sockets.
    caf::replies_to<atom::get>::with<std::uint64_t, std::uint64_t>>;

}  // namespace codeexec
