#include "sandbox/clone_thread.hpp"

#include <grp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

namespace codeexec::sandbox {

clone_thread::clone_thread() {
  thread_ = std::thread([this] { run(); });
  std::unique_lock lock(mutex_);
  cv_.wait(lock, [this] { return ready_; });
}

clone_thread::~clone_thread() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

namespace {
void enter_clone_child(const void* plan) noexcept {
  run_clone_child(*static_cast<const child_plan*>(plan));
}
}  // namespace

clone_thread::result clone_thread::clone_child(const child_plan& plan,
                                               unsigned long namespace_flags, int cgroup_fd) {
  return call(enter_clone_child, &plan, namespace_flags, cgroup_fd);
}

clone_thread::result clone_thread::clone_process(entry_function entry, const void* arg,
                                                 unsigned long flags) {
  return call(entry, arg, flags, -1);
}

clone_thread::result clone_thread::call(entry_function entry, const void* arg, unsigned long flags,
                                        int cgroup_fd) {
  std::lock_guard call(call_mutex_);
  std::unique_lock lock(mutex_);
  if (!error_.empty()) return result{-1, unique_fd(), EPERM, false};
  entry_ = entry;
  plan_ = arg;
  flags_ = flags;
  cgroup_fd_ = cgroup_fd;
  done_ = false;
  cv_.notify_all();
  cv_.wait(lock, [this] { return done_; });
  plan_ = nullptr;
  return std::move(result_);
}

void clone_thread::run() {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  pthread_setname_np(pthread_self(), "sbx-clone");
  // Raw syscall: affects this thread only (glibc's setgroups would change every thread).
  if (::syscall(SYS_setgroups, 0, nullptr) != 0 && ::getgroups(0, nullptr) != 0)
    error_ = std::string("cannot drop supplementary groups on the clone thread: ") +
             std::strerror(errno);
  std::unique_lock lock(mutex_);
  ready_ = true;
  cv_.notify_all();
  for (;;) {
    cv_.wait(lock, [this] { return stop_ || (plan_ != nullptr && !done_); });
    if (stop_) return;
    // Without CLONE_VM: a fork of this thread into new namespaces.
    int pidfd = -1;
    bool in_cgroup = false;
    const long pid = clone_sandbox(flags_, cgroup_fd_, &pidfd, &in_cgroup);
    if (pid == 0) {
      entry_(plan_);  // never returns
      ::syscall(SYS_exit_group, 127);
    }
    result_ = result{static_cast<pid_t>(pid), unique_fd(pid > 0 ? pidfd : -1), pid < 0 ? errno : 0,
                     in_cgroup};
    done_ = true;
    cv_.notify_all();
  }
}

}  // namespace codeexec::sandbox
