// Every typed actor interface of the service, in one place.
//
//   HTTP handler ──spawn──▶ EXECUTION ──run──▶ SANDBOX ──(I/O thread)──▶ kernels in sandbox
//                              │  ◀──event───────┘   (owned by a one-shot execution, or
//                              │                      leased from the sandbox directory)
//                              └──publish──▶ CLIENT REGISTRY ──deliver──▶ CLIENT SESSION ─▶
//                              WebSocket
#pragma once

#include "actors/atoms.hpp"
#include "actors/messages.hpp"
#include "e2b/execute_stream.hpp"
#include "e2b/remote_sandbox.hpp"

#include <caf/actor.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace codeexec {

/// The EVENT SINK receives the output of a running cell, in order.
using event_sink_actor = caf::typed_actor<
    /// One stdout/stderr chunk, rich result or code error.
    caf::reacts_to<atom::event, kernel_event>>;

/// The SANDBOX actor: one isolated environment with one or more kernels (contexts).
using sandbox_actor = caf::typed_actor<
    /// Runs a cell in a context (queued behind that context's running cell); its events
    /// go to the sink; replies when the cell has ended.
    caf::replies_to<atom::run, run_cell, event_sink_actor>::with<cell_outcome>,
    /// Ends a cell early (timeout, cancel): interrupts it, escalating to restarting its
    /// kernel, then to killing the sandbox. Its run reply follows.
    caf::reacts_to<atom::stop, std::string>,
    /// Input for a running cell's stdin (cell id, data, end-of-file).
    caf::reacts_to<atom::input, std::string, std::string, bool>,
    /// Interrupts the running cells of one context ("": of all); replies how many.
    caf::replies_to<atom::interrupt, std::string>::with<std::uint64_t>,
    /// Starts a new context; replies with it.
    caf::replies_to<atom::create, context_request>::with<context_info>,
    /// Lists the contexts.
    caf::replies_to<atom::get>::with<std::vector<context_info>>,
    /// Removes a context and kills its kernel.
    caf::replies_to<atom::remove, std::string>::with<bool>,
    /// Kills and restarts a context's kernel: its state is lost.
    caf::replies_to<atom::restart, std::string>::with<context_info>,
    /// Makes the sandbox stateful (idle timeout, lifetime); replies once its first
    /// kernel is ready, or with the reason it could not start.
    caf::replies_to<atom::adopt, sandbox_settings>::with<bool>,
    /// Sets a new idle timeout, counted from now.
    caf::reacts_to<atom::timeout, std::chrono::milliseconds>,
    /// The sandbox was used (files API): its idle time starts anew.
    caf::reacts_to<atom::touch>,
    /// Time to check the idle timeout and the lifetime.
    caf::reacts_to<atom::expire>,
    /// Kills everything in the sandbox now; running cells' replies follow.
    caf::reacts_to<atom::kill>>;

/// The SANDBOX actor of the local backend: the sandbox interface plus what its I/O
/// thread and its timers send it.
using local_sandbox_actor = sandbox_actor::extend<
    /// Next step of stopping a cell (cell id, step).
    caf::reacts_to<atom::escalate, std::string, std::uint32_t>,
    /// Retries writing buffered stdin of a cell.
    caf::reacts_to<atom::drain, std::string>,
    /// From the I/O thread: an event of a kernel.
    caf::reacts_to<atom::runner, std::uint32_t, nlohmann::json>,
    /// From the I/O thread: a kernel broke the protocol.
    caf::reacts_to<atom::broken, std::uint32_t, std::string>,
    /// From the I/O thread: an output stream of a kernel passed its cap.
    caf::reacts_to<atom::limit, std::uint32_t, std::string>,
    /// From the I/O thread: a kernel's runner exited.
    caf::reacts_to<atom::ended, std::uint32_t, sandbox_exit>,
    /// From the I/O thread: the sandbox's init exited.
    caf::reacts_to<atom::exited, sandbox_exit>,
    /// Periodic check of the running cells' CPU time.
    caf::reacts_to<atom::tick>>;

/// The SANDBOX actor of the E2B backend: the sandbox interface plus what the curl
/// thread (e2b/http_client.hpp) and its timers send it.
using e2b_sandbox_actor = sandbox_actor::extend<
    /// From the curl thread: the create call ended, with the sandbox (dropping it kills
    /// it) or, when null, the failed reply.
    caf::reacts_to<atom::created, std::shared_ptr<e2b::remote_sandbox>, e2b::http_response>,
    /// Time for the next attempt at creating the sandbox (attempt number).
    caf::reacts_to<atom::retry, std::uint32_t>,
    /// From the curl thread: the reply of a contexts or timeout call (call id, reply).
    caf::reacts_to<atom::reply, std::uint64_t, e2b::http_response>,
    /// From the curl thread: an event of a cell's /execute stream (cell id, event).
    caf::reacts_to<atom::event, std::string, kernel_event>,
    /// From the curl thread: a cell's /execute stream ended (cell id, how).
    caf::reacts_to<atom::ended, std::string, e2b::stream_end>>;

/// The EXECUTION actor: one run of client code, from request to final result.
using execution_actor = event_sink_actor::extend<
    /// Stops the execution now (its clients left, or the service shuts down).
    caf::reacts_to<atom::cancel, std::string>,
    /// The execution's deadline passed.
    caf::reacts_to<atom::timeout>,
    /// The sandbox did not answer a kill in time: finish without it.
    caf::reacts_to<atom::finish>,
    /// Input for the execution's stdin (data, end-of-file).
    caf::reacts_to<atom::input, std::string, bool>>;

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
    /// Input from a socket of a clientId for one of its executions (execution id, data, eof).
    caf::reacts_to<atom::input, std::string, std::string, std::string, bool>,
    /// The replay window of an execution passed.
    caf::reacts_to<atom::expire, std::string, std::string>,
    /// Closes every socket with 1001 (service shutdown); replies when all were told.
    caf::replies_to<atom::shutdown>::with<bool>,
    /// Counts: clientIds with sockets, sockets.
    caf::replies_to<atom::get>::with<std::uint64_t, std::uint64_t>>;

/// The TERMINATOR actor (hidden): ends the service's actors within bounds at shutdown.
using terminator_actor = caf::typed_actor<
    /// Ends these actors: user_shutdown now, kill after the grace; replies how many had
    /// still not ended after the kill timeout (0: all ended).
    caf::replies_to<atom::shutdown, std::vector<caf::actor>>::with<std::uint64_t>,
    /// INTERNAL: the grace passed: kill what remains.
    caf::reacts_to<atom::kill>,
    /// INTERNAL: the kill timeout passed: give up on what remains.
    caf::reacts_to<atom::stop>>;

}  // namespace codeexec

// The curl thread's messages to an E2B SANDBOX never leave the process.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(std::shared_ptr<codeexec::e2b::remote_sandbox>)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(codeexec::e2b::http_response)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(codeexec::e2b::stream_end)
