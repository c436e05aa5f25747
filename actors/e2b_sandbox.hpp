// The SANDBOX actor of the E2B backend (interface in actors.hpp): one sandbox in the
// E2B cloud, driven over HTTP by the backend's curl thread. It creates the remote
// sandbox when it starts (cells wait until it exists), runs each cell as one streaming
// POST /execute, maps contexts onto E2B's /contexts, keeps E2B's own timeout beyond
// the service's idle timeout, and kills the remote sandbox whenever it ends.
//
// What differs from the local SANDBOX: E2B runs the kernels, so memory, processes and
// files are E2B's to limit; the service enforces the wall-clock deadline and the output
// caps (counted on the stream). A cell is stopped by closing its stream: E2B's server
// then interrupts the kernel and keeps its state. There is no stdin and no CPU time.
#pragma once

#include "actors/actors.hpp"
#include "actors/sandbox_lifetime.hpp"
#include "actors/stop_reason.hpp"
#include "core/metrics.hpp"
#include "core/service_error.hpp"
#include "e2b/api.hpp"
#include "e2b/http_client.hpp"
#include "e2b/remote_sandbox.hpp"

#include <caf/stateful_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace codeexec {

/// Why a cell with stdin cannot run on E2B.
inline constexpr std::string_view e2b_no_stdin =
    "stdin is not supported by the E2B backend: E2B's Code Interpreter gives code no input";

/// What every E2B sandbox of a backend shares; the backend outlives its sandboxes.
struct e2b_environment {
  const e2b::settings* api = nullptr;
  e2b::http_client* http = nullptr;
  /// E2B's timeout for a new sandbox: it outlasts the longest execution, so a one-shot
  /// sandbox whose DELETE is lost still ends soon.
  std::chrono::seconds initial_timeout{360};
  /// Labels on every remote sandbox (who created it).
  std::map<std::string, std::string> metadata;
};

struct e2b_sandbox_state {
  using clock = std::chrono::steady_clock;

  /// A cell, from its request to its reply.
  struct cell {
    run_cell request;
    event_sink_actor sink;
    caf::typed_response_promise<cell_outcome> promise;
    /// The /execute stream, once sent; cancelling it stops the cell.
    e2b::transfer stream;
    bool sent = false;
    /// Output charged against the cap, per stream, and whether a stream passed it.
    std::uint64_t stdout_bytes = 0;
    std::uint64_t stderr_bytes = 0;
    std::uint64_t result_bytes = 0;
    bool stdout_capped = false;
    bool stderr_capped = false;
    /// Set when the service ends the cell early, with why.
    std::optional<stop_reason> forced;
  };

  /// A contexts or timeout call waiting for its reply.
  struct call {
    enum class kind { create_context, list_contexts, remove_context, restart_context, timeout };
    kind what = kind::list_contexts;
    std::string context_id;
    caf::typed_response_promise<context_info> info;
    caf::typed_response_promise<std::vector<context_info>> list;
    caf::typed_response_promise<bool> removed;
    e2b::transfer request;
  };

  // Order matters: members are destroyed bottom-up. The streams and calls (cancelled on
  // destruction) go before the remote sandbox, whose destruction kills it in E2B.
  metrics::actor_scope scope{metrics::actor_kind::sandbox};
  /// Set while the remote sandbox exists.
  std::optional<metrics::live_scope> live_sandbox;
  e2b_environment env;
  language lang = language::python;
  resource_limits limits;
  clock::time_point started;

  /// The sandbox in E2B, once created; dropping it kills it.
  std::shared_ptr<e2b::remote_sandbox> remote;
  std::uint32_t create_attempt = 0;
  /// Why the sandbox cannot serve (create failed for good); requests get this error.
  std::optional<service_error> failure;

  std::map<std::string, cell> cells;
  /// Cells waiting for the remote sandbox, in arrival order.
  std::vector<std::string> waiting;
  std::map<std::uint64_t, call> calls;
  std::uint64_t next_call = 1;
  /// Contexts this actor has seen (create, list), for the replies that E2B leaves bare.
  std::map<std::string, context_info> contexts;

  /// Stateful sandboxes (adopted): idle timeout and lifetime, as the local SANDBOX.
  sandbox_lifetime life;
  /// When E2B will kill the sandbox by its own timeout (kept beyond ours).
  clock::time_point remote_end;
  std::optional<caf::typed_response_promise<bool>> adopt_promise;

  /// `ctx` with the cells this actor runs in it (E2B queues them; all count as running).
  context_info info(context_info ctx) const;
  bool busy() const { return !cells.empty(); }
  /// Marks the sandbox as used now (its idle time starts anew).
  void touch() { life.touch(); }

  static inline const char* name = "e2b_sandbox";
};

/// Creates a sandbox in E2B for `lang` (its default context) and serves it; `limits`
/// gives the output cap of its cells.
e2b_sandbox_actor::behavior_type e2b_sandbox(
    e2b_sandbox_actor::stateful_pointer<e2b_sandbox_state> self, e2b_environment env, language lang,
    resource_limits limits);

}  // namespace codeexec
