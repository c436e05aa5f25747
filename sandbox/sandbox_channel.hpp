// Moves bytes between the service and every runner ("kernel") of one sandbox on a
// thread of its own, so that no blocking read or write ever holds an actor's scheduler
// thread. One thread per sandbox: it polls the init's exit pidfd, the agent socket of
// a persistent sandbox (agent_protocol.hpp) and each kernel's fds.
#pragma once

#include "sandbox/launcher.hpp"
#include "sandbox/unique_fd.hpp"

#include <nlohmann/json.hpp>

#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace codeexec::sandbox {

/// Called on the channel's thread, in order; they must not block. Per kernel, every
/// event and all output come before its on_kernel_exit; on_exit is the last callback.
struct sandbox_callbacks {
  /// A runner event (ready, stdout, stderr, result, error, end, …). Raw output of its
  /// fds 1 and 2 arrives as {"type": "stdout"|"stderr", "text"} too.
  std::function<void(unsigned kernel, nlohmann::json event)> on_event;
  /// A stream of the kernel ("stdout", "stderr" or "results": rich results and errors)
  /// passed the output cap; what exceeds it is dropped.
  std::function<void(unsigned kernel, std::string_view stream)> on_output_limit;
  /// The kernel broke the protocol (bad frame or JSON); the channel stops reading its
  /// events. Also reported (for kernel 0) when the channel itself fails: it then kills
  /// the sandbox.
  std::function<void(unsigned kernel, std::string reason)> on_protocol_error;
  /// A kernel's runner exited; all its output was delivered before. status: exit_code,
  /// or signal when it was killed by one (a non-persistent sandbox can only tell that
  /// from its init's 128 + N). setup_error: why it could not start, if so (status 125).
  /// Kernels still running when the sandbox ends are reported killed by SIGKILL.
  std::function<void(unsigned kernel, exit_status status, std::string setup_error)> on_kernel_exit;
  /// The init exited: a persistent sandbox's teardown (close_agent(), kill, lifeline), or
  /// a non-persistent sandbox's runner ended (after on_kernel_exit(0)). setup_error: why
  /// the sandbox itself could not start, if so. Last callback.
  std::function<void(exit_status status, std::string setup_error)> on_exit;
};

/// Owns the I/O thread of one sandbox.
class sandbox_channel {
 public:
  static constexpr unsigned max_kernels = 32;

  /// Kernel 0 is the runner the sandbox was launched with.
  sandbox_channel(sandbox_process& process, std::uint64_t max_output_bytes,
                  sandbox_callbacks callbacks);
  sandbox_channel(const sandbox_channel&) = delete;
  sandbox_channel& operator=(const sandbox_channel&) = delete;
  /// Stops the thread; no callback runs after this returns.
  ~sandbox_channel();

  /// Starts a runner as kernel `kernel` (1..31, or any slot whose runner has exited:
  /// a restart) in a persistent sandbox. Returns "" or why not (not persistent, invalid
  /// spec, slot busy, sandbox gone). Non-blocking: readiness arrives as the runner's own
  /// {"type":"ready"} event, failure as on_kernel_exit with a setup error. The runner's
  /// stdin is at end-of-file. A slot is free again when its on_kernel_exit runs.
  std::string start_kernel(unsigned kernel, const runner_spec& spec);
  /// Queues a request frame for the kernel (dropped if it is not running).
  void send(unsigned kernel, const nlohmann::json& request);
  /// Sends `sig` to the kernel's runner, or with whole_group to its process group
  /// (SIGKILL then also ends what the cell started). Persistent: through the agent.
  /// Non-persistent (kernel 0 only): SIGINT through the init's relay, SIGKILL kills
  /// the sandbox; other signals are not supported there (ignored).
  void signal(unsigned kernel, int sig, bool whole_group = false);
  /// Starts counting the kernel's output caps anew (a new cell), with a cap of
  /// `max_output_bytes` per stream for that cell (0: the channel's).
  void reset_output_counters(unsigned kernel, std::uint64_t max_output_bytes = 0);

 private:
  struct kernel;
  struct command;
  struct agent_request;
  class io_loop;

  void push(command c);
  void wake();
  void run();

  sandbox_process& process_;
  std::uint64_t max_output_bytes_;
  sandbox_callbacks callbacks_;
  unique_fd wake_fd_;
  std::mutex mutex_;
  std::vector<command> commands_;         // guarded by mutex_
  std::array<bool, max_kernels> busy_{};  // guarded by mutex_: a runner owns the slot
  bool ended_ = false;                    // guarded by mutex_: the init has exited
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace codeexec::sandbox
