// The EXECUTION actor (interface in actors.hpp): one run of client code from
// request to final result. It owns its sandbox for the run.
#pragma once

#include "actors/actors.hpp"
#include "core/execution.hpp"
#include "core/metrics.hpp"

#include <caf/stateful_actor.hpp>

#include <chrono>
#include <functional>
#include <optional>
#include <string>

namespace codeexec {

/// The sandbox an execution runs in.
struct sandbox_lease {
  sandbox_actor sandbox;
  /// Owned: a one-shot sandbox that ends with the execution (and is killed to stop
  /// it). Leased: a stateful sandbox, whose cell is interrupted to stop it.
  bool owned = true;
  /// How long a stopped cell may take to report before the execution ends without it.
  std::chrono::milliseconds stop_grace{5000};
};

/// Gives an execution its sandbox; called once, on the execution's actor thread.
using sandbox_source = std::function<sandbox_lease(caf::actor_system&, const execution_request&)>;

/// Where an execution's result goes.
struct execution_target {
  /// /execute: called once with the final report, from an actor thread.
  std::function<void(execution_report)> on_done;
  /// /execute-stream: the registry that fans events out to the request's clientId.
  client_registry_actor registry;
  /// E2B's /execute (NDJSON): every event as it happens, in order, from an actor thread;
  /// the error the service decides on (timeout, limit, cancel) comes last, as an event.
  std::function<void(const kernel_event&)> on_event;
};

struct execution_state {
  /// First member, so the actor counts as live until the rest of its state is gone.
  metrics::actor_scope scope{metrics::actor_kind::execution};
  std::string id;
  execution_request request;
  execution_target target;
  std::chrono::steady_clock::time_point started;
  execution_result result;
  sandbox_lease lease;
  /// Set when the service, not the kernel, ended the run (timeout, cancel).
  std::optional<verdict> forced;
  std::string forced_reason;
  bool finished = false;

  execution_state() = default;
  execution_state(const execution_state&) = delete;
  execution_state& operator=(const execution_state&) = delete;
  /// If the actor ends without finishing (an exception in a handler), the caller
  /// still gets an answer instead of waiting for the HTTP timeout.
  ~execution_state();

  /// Sends a message to the stream's clients, if this is a streaming execution.
  void publish(std::string message);
  /// Passes an event on to the WebSocket clients and the event callback, if any.
  void emit(const kernel_event& event);

  static inline const char* name = "execution";
};

execution_actor::behavior_type execution(execution_actor::stateful_pointer<execution_state> self,
                                         std::string id, execution_request request,
                                         execution_target target, sandbox_source source);

/// Turns a sandbox's cell outcome into the verdict, error and usage of `result`.
void apply_outcome(execution_result& result, const cell_outcome& outcome,
                   std::optional<verdict> forced, const std::string& forced_reason);

}  // namespace codeexec
