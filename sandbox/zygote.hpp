// A zygote: a pre-initialised Python kernel process that forks sandboxes
// (reference/zygote.md). The service execs it at start with a clean environment; it
// loads the kernel's modules once, then, on request, clones a child into the same
// namespaces the exec path uses; the child runs the same setup (clone_child.cpp) and
// its runner continues in the already-initialised interpreter instead of exec'ing a
// new one. The service writes the child's uid maps, joins its cgroups and releases it
// exactly as for an exec'd sandbox (launcher.cpp).
//
// Whenever the zygote is not ready (starting, dead, replaced), spawn() says so and the
// launcher takes the exec path: no launch fails because of the zygote.
#pragma once

#include "sandbox/clone_thread.hpp"
#include "sandbox/launcher.hpp"
#include "sandbox/unique_fd.hpp"

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace codeexec::sandbox {

/// What a zygote fork needs besides the launch_spec: the launcher's fds and limits.
struct zygote_request {
  const launch_spec* spec = nullptr;
  std::uint64_t shm_bytes = 0;
  std::span<const rlimit_setting> rlimits;
  int release_read = -1;
  int lifeline_read = -1;
  int agent = -1;       ///< persistent sandboxes
  int cgroup_dir = -1;  ///< cgroup2 directory for CLONE_INTO_CGROUP, or -1
  const runner_fds* runner = nullptr;
};

class zygote {
 public:
  zygote(zygote_config cfg, std::shared_ptr<clone_thread> cloner);
  ~zygote();
  zygote(const zygote&) = delete;
  zygote& operator=(const zygote&) = delete;

  /// Whether `spec` is this zygote's runner (argv and locale match).
  bool serves(const launch_spec& spec) const;
  /// Forks a sandbox; nullopt (counted as a fallback) when the zygote is not ready or
  /// failed, and the caller must take the exec path. Starts a replacement when needed.
  std::optional<clone_thread::result> spawn(const zygote_request& request);
  zygote_status status();

 private:
  void start_locked();
  void stop_locked(const std::string& why);
  bool check_ready_locked();

  zygote_config cfg_;
  std::map<std::string, std::string> locale_;  ///< of cfg_.env, for serves()
  std::shared_ptr<clone_thread> cloner_;
  mutable std::mutex mutex_;
  unique_fd sock_;
  unique_fd pidfd_;
  bool ready_ = false;
  std::uint64_t generation_forks_ = 0;
  std::chrono::steady_clock::time_point started_at_{};
  zygote_status counters_;
};

}  // namespace codeexec::sandbox
