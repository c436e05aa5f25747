// The owning handle of one running sandbox (implements launcher.hpp's sandbox_process).
#pragma once

#include "sandbox/cgroups.hpp"
#include "sandbox/launcher.hpp"
#include "sandbox/uid_pool.hpp"
#include "sandbox/unique_fd.hpp"

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace codeexec::sandbox {

/// Pipes and sockets of one runner (fds 0-4 and the setup-error pipe), CLOEXEC on both
/// sides; the runner's stdio ends are chowned to `host_uid`. Empty, or why not.
std::string make_runner_fds(std::uint32_t host_uid, runner_fds& host, runner_fds& runner);

/// Everything a sandbox owns on the host side.
struct sandbox_parts {
  std::string id;
  pid_t init_pid = -1;
  unique_fd pidfd;
  runner_fds first_runner;   ///< host ends of the launch's runner's fds
  unique_fd agent;           ///< persistent: host end of the agent socket
  unique_fd lifeline_write;  ///< the init exits when this closes
  sandbox_cgroups cgroups;
  uid_lease uid;
  /// Keeps what the sandbox depends on alive past the launcher (the clone thread,
  /// whose exit would fire the init's PDEATHSIG) and counts live sandboxes.
  std::shared_ptr<void> keep_alive;
  std::shared_ptr<std::atomic<std::size_t>> live_count;
};

/// kill(), interrupt(), try_wait() and read_usage() may be called from different threads
/// (an I/O thread waits for the exit while the owner kills); destruction must not race
/// with them.
///
/// The init exits with the runner's exit code, or 128 + signal when the runner was
/// killed by a signal (a pid-namespace init cannot die of a signal it sends itself);
/// exit_status::signal is set only when the init itself was killed (kill(), OOM of the
/// init, launcher gone).
class local_sandbox_process final : public sandbox_process {
 public:
  explicit local_sandbox_process(sandbox_parts parts);
  ~local_sandbox_process() override;

  pid_t init_pid() const override { return parts_.init_pid; }
  int exit_fd() const override { return parts_.pidfd.get(); }
  int control_fd() const override { return parts_.first_runner.fd[3].get(); }
  int events_fd() const override { return parts_.first_runner.fd[4].get(); }
  int stdout_fd() const override { return parts_.first_runner.fd[1].get(); }
  int stderr_fd() const override { return parts_.first_runner.fd[2].get(); }
  int stdin_fd() const override { return parts_.first_runner.fd[0].get(); }
  void close_stdin() override { parts_.first_runner.fd[0].reset(); }
  int setup_error_fd() const override { return parts_.first_runner.setup_error.get(); }
  int agent_fd() const override { return parts_.agent.get(); }
  void close_agent() override;
  std::string make_runner_fds(runner_fds& host, runner_fds& runner) override;

  bool interrupt() override;
  void kill() override;
  std::optional<exit_status> try_wait() override;
  usage read_usage() const override;
  std::uint64_t read_cpu_ns() const override { return parts_.cgroups.read_cpu_ns(); }
  const std::string& id() const override { return parts_.id; }

  std::uint32_t host_uid() const override { return parts_.uid.uid(); }
  /// Moves the (still blocked) init into the sandbox's cgroups.
  bool join_cgroups(bool already_in_v2, std::string* error) const;
  /// Releases the init to start setup (the last step of launch()).
  bool release(int release_write_fd);

  /// Upper bounds for the destructor: reaping the init, then removing the cgroups.
  static constexpr std::chrono::milliseconds kReapBudget{5000};
  static constexpr std::chrono::milliseconds kCgroupRemoveBudget{2000};

 private:
  bool signal_init(int sig) noexcept;
  /// Waits up to `budget` for the init to exit and reaps it.
  bool reap(std::chrono::milliseconds budget) noexcept;

  sandbox_parts parts_;
  std::mutex wait_mutex_;  ///< guards exit_ (try_wait reaps)
  std::optional<exit_status> exit_;
};

}  // namespace codeexec::sandbox
