// The SANDBOX actor of the local backend (interface in actors.hpp): owns one
// sandbox process and the I/O thread that talks to its kernel.
#pragma once

#include "actors/actors.hpp"
#include "core/metrics.hpp"
#include "sandbox/kernel_channel.hpp"
#include "sandbox/launcher.hpp"

#include <caf/stateful_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

namespace codeexec {

struct local_sandbox_state {
  /// The cell being run.
  struct cell {
    std::string id;
    run_cell request;
    event_sink_actor sink;
    caf::typed_response_promise<cell_outcome> promise;
    bool sent = false;
    /// The sandbox's CPU time and OOM kills when the cell started.
    std::uint64_t cpu_start_ns = 0;
    std::uint64_t oom_kills_start = 0;
  };

  // Order matters: members are destroyed bottom-up. The metrics scopes come first,
  // so they count the sandbox until its process has been reaped; the channel (and
  // its thread) must go before the process it reads.
  metrics::actor_scope scope{metrics::actor_kind::sandbox};
  /// Set while a sandbox process exists (not when the launch failed).
  std::optional<metrics::live_scope> live_sandbox;
  /// When the launch began: the start of the sandbox start latency.
  std::chrono::steady_clock::time_point launched_at;
  std::unique_ptr<sandbox::sandbox_process> process;
  std::unique_ptr<sandbox::kernel_channel> channel;
  std::string start_error;
  bool ready = false;
  bool kill_requested = false;
  bool stdout_capped = false;
  bool stderr_capped = false;
  bool results_capped = false;
  bool cpu_exceeded = false;
  std::uint64_t cells_run = 0;
  std::optional<cell> current;

  /// Sends the current cell to the kernel once it is ready; true if it was sent now.
  bool send_current_if_ready();
  /// CPU time the current cell has used so far.
  std::uint64_t current_cpu_ms() const;
  /// Answers the current cell with `outcome` (usage filled in).
  void finish_current(cell_outcome outcome);

  static inline const char* name = "local_sandbox";
};

sandbox_actor::behavior_type local_sandbox(
    sandbox_actor::stateful_pointer<local_sandbox_state> self, sandbox::launcher* launcher,
    sandbox::launch_spec spec, std::uint64_t max_output_bytes);

}  // namespace codeexec
