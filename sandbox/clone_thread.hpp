// The one thread that calls clone(2) for every sandbox.
//
// Why a dedicated thread rather than the caller's:
//  - PR_SET_PDEATHSIG fires when the *thread* that created the child exits, not the
//    process. A sandbox cloned from a short-lived thread (a detached actor, a pool
//    thread being retired) would be SIGKILLed with it. This thread lives as long as
//    any sandbox (shared ownership).
//  - Credentials are per thread in the kernel: this thread drops its supplementary
//    groups once (raw setgroups), so children never inherit the service's groups —
//    inside the user namespace setgroups is denied and could not clear them.
//  - All signals are blocked here, so no service signal handler can run in a child
//    before it resets its dispositions.
#pragma once

#include "sandbox/clone_child.hpp"
#include "sandbox/unique_fd.hpp"

#include <sys/types.h>

#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

namespace codeexec::sandbox {

class clone_thread {
 public:
  struct result {
    pid_t pid = -1;
    unique_fd pidfd;         ///< from CLONE_PIDFD: no pid-reuse race, CLOEXEC
    int error = 0;           ///< errno of clone, when pid < 0
    bool in_cgroup = false;  ///< placed by CLONE_INTO_CGROUP (no migration needed)
  };

  /// Starts the thread. Check error() afterwards.
  clone_thread();
  ~clone_thread();
  clone_thread(const clone_thread&) = delete;
  clone_thread& operator=(const clone_thread&) = delete;

  /// Empty, or why this thread cannot create sandboxes.
  const std::string& error() const noexcept { return error_; }

  /// clone(flags | CLONE_PIDFD | SIGCHLD) on this thread; the child runs
  /// run_clone_child(plan). With a cgroup2 directory fd, tries clone3 with
  /// CLONE_INTO_CGROUP first: the child is born in that cgroup, sparing a migration
  /// (which takes a global lock that can wait out an RCU grace period, ~10 ms here).
  /// Falls back to clone where clone3 is refused (Docker's profile: ENOSYS).
  /// Thread-safe (calls are serialised).
  result clone_child(const child_plan& plan, unsigned long namespace_flags, int cgroup_fd);

  /// A child that runs entry(arg) (async-signal-safe code only; it must exec or exit):
  /// clone(flags | CLONE_PIDFD | SIGCHLD) on this thread, so the child's
  /// PR_SET_PDEATHSIG and CLONE_PARENT siblings depend on this thread. Thread-safe.
  using entry_function = void (*)(const void* arg) noexcept;
  result clone_process(entry_function entry, const void* arg, unsigned long flags);

 private:
  void run();
  result call(entry_function entry, const void* arg, unsigned long flags, int cgroup_fd);

  std::mutex call_mutex_;  // one clone at a time
  std::mutex mutex_;
  std::condition_variable cv_;
  entry_function entry_ = nullptr;
  const void* plan_ = nullptr;
  unsigned long flags_ = 0;
  int cgroup_fd_ = -1;
  bool done_ = false;
  bool stop_ = false;
  bool ready_ = false;
  result result_;
  std::string error_;
  std::thread thread_;
};

}  // namespace codeexec::sandbox
