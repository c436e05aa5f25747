// The SANDBOX actor of the local backend (interface in actors.hpp): owns one
// sandbox process, the I/O thread that talks to its kernels, and its contexts.
//
// A context is one kernel (a runner process in the sandbox) of one language; all of a
// sandbox's contexts share its filesystem, limits and lifetime. Context 0 runs the
// runner the sandbox was launched with; the others are started on demand. Each
// context runs one cell at a time and queues the rest.
#pragma once

#include "actors/actors.hpp"
#include "actors/cell_stdin.hpp"
#include "actors/runner_catalog.hpp"
#include "actors/sandbox_lifetime.hpp"
#include "actors/stop_reason.hpp"
#include "core/metrics.hpp"
#include "sandbox/launcher.hpp"
#include "sandbox/sandbox_channel.hpp"
#include "sandbox/sandbox_files.hpp"
#include "sandbox/unique_fd.hpp"

#include <caf/stateful_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <array>
#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace codeexec {

/// What every sandbox of a backend shares.
struct sandbox_environment {
  sandbox::launcher* launcher = nullptr;
  std::shared_ptr<const runner_catalog> catalog;
  std::size_t max_contexts = 8;
  std::chrono::milliseconds interrupt_grace{2000};
  /// End the actor at once when its launch fails (the warm pool's sandboxes: nobody
  /// waits for their answer) instead of answering each request with the reason.
  bool end_if_launch_fails = false;
};

/// Most kernels a sandbox can hold (the init's agent has this many slots).
inline constexpr std::uint32_t max_kernel_slots = 64;

struct local_sandbox_state {
  using clock = std::chrono::steady_clock;

  /// A cell, from its request to its reply.
  struct cell {
    run_cell request;
    event_sink_actor sink;
    caf::typed_response_promise<cell_outcome> promise;
    bool sent = false;
    /// The sandbox's CPU time and OOM kills when the cell started.
    std::uint64_t cpu_start_ns = 0;
    std::uint64_t oom_kills_start = 0;
    bool stdout_capped = false;
    bool stderr_capped = false;
    bool results_capped = false;
    /// Set when the service ends the cell early, with why.
    std::optional<stop_reason> forced;
    /// The service is stopping the cell (interrupts, then a kernel restart).
    bool stopping = false;
    /// The kernel would not stop on interrupts and was killed.
    bool kernel_killed = false;
    /// The cell's stdin FIFO, and whether a retry of a full one is pending.
    cell_stdin in;
    bool drain_scheduled = false;
  };

  enum class kernel_state { starting, ready, dead };

  struct context {
    std::string id;
    language lang = language::python;
    std::string cwd = "/home/user";
    bool is_default = false;
    /// Creation order: contexts are listed in it, as E2B lists them.
    std::uint64_t created = 0;
    std::uint32_t slot = 0;
    kernel_state state = kernel_state::starting;
    clock::time_point started;
    /// Why the kernel could not start, if it could not.
    std::string start_error;
    std::optional<cell> current;
    std::deque<cell> queue;
    /// create/restart requests waiting for the kernel to be ready.
    std::vector<caf::typed_response_promise<context_info>> on_ready;
    /// The kernel was killed on purpose: start it again when it has exited.
    bool restart_on_exit = false;
    /// The context was removed: free its slot when the kernel has exited.
    bool removed = false;
  };

  // Order matters: members are destroyed bottom-up. The metrics scopes come first,
  // so they count the sandbox until its process has been reaped; the channel (and
  // its thread) must go before the process it reads.
  metrics::actor_scope scope{metrics::actor_kind::sandbox};
  /// Set while a sandbox process exists (not when the launch failed).
  std::optional<metrics::live_scope> live_sandbox;
  clock::time_point launched_at;
  std::unique_ptr<sandbox::sandbox_process> process;
  std::shared_ptr<sandbox::sandbox_files> files;
  std::unique_ptr<sandbox::sandbox_channel> channel;

  sandbox_environment env;
  resource_limits limits;
  /// The language of context 0.
  language lang = language::python;
  std::string start_error;
  bool kill_requested = false;
  bool tick_scheduled = false;
  bool first_ready_reported = false;

  std::map<std::string, context> contexts;
  std::uint64_t contexts_created = 0;
  /// Which context holds each kernel slot ("" = free).
  std::array<std::string, max_kernel_slots> slot_owner;

  // Stateful sandboxes (adopted): idle timeout and lifetime.
  sandbox_lifetime life;
  std::optional<caf::typed_response_promise<bool>> adopt_promise;

  context* find(const std::string& id);
  context* in_slot(std::uint32_t slot);
  context* default_context(language lang);
  /// The cell with this id, running or queued, and its context.
  std::pair<context*, cell*> find_cell(const std::string& cell_id);
  context_info info(const context& ctx) const;
  bool busy() const;
  /// Marks the sandbox as used now (its idle time starts anew).
  void touch() { life.touch(); }

  static inline const char* name = "local_sandbox";
};

/// Launches a sandbox whose first kernel runs `lang`, with `limits` (output_bytes caps
/// each output stream of a cell).
local_sandbox_actor::behavior_type local_sandbox(
    local_sandbox_actor::stateful_pointer<local_sandbox_state> self, sandbox_environment env,
    language lang, resource_limits limits);

/// Spawns a SANDBOX actor on a thread of its own: its launch (clone, namespaces,
/// cgroups) and its teardown (kill, reap, rmdir) block for milliseconds, and on CAF's
/// few scheduler threads they would delay every other actor (measured: a warm cell
/// took 180 ms at the median while 16 one-shot requests launched sandboxes).
sandbox_actor spawn_local_sandbox(caf::actor_system& system, sandbox_environment env, language lang,
                                  resource_limits limits);

}  // namespace codeexec
