// The clone child: from clone(2) to execve of the runner, plus the reaping init.
//
// Runs in a copy of a multi-threaded process, so until execve it is restricted to
// async-signal-safe code: no allocation, no locks, no stdio, no libseccomp, and no
// glibc wrapper that assumes glibc's own fork bookkeeping (setresuid & co. broadcast to
// threads that no longer exist here; raise/abort use a cached tid) — raw syscalls
// instead. Everything it needs is precomputed in a child_plan by the parent.
#pragma once

#include "sandbox/rootfs.hpp"

#include <linux/filter.h>
#include <sched.h>
#include <sys/resource.h>

#include <cstddef>
#include <map>
#include <string>
#include <vector>

namespace codeexec::sandbox {

/// The namespaces of every sandbox, exec'd or forked by a zygote.
inline constexpr unsigned long kNamespaceFlags =
    CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS;
/// `user` inside every sandbox; the dedicated host uid outside.
inline constexpr unsigned kSandboxUid = 1000;

/// Fds the child inherits (numbers as in the parent; all O_CLOEXEC there).
struct child_fds {
  int release_read = -1;                 ///< sync pipe: a byte = maps written, cgroups joined
  int lifeline_read = -1;                ///< EOF = the launching process is gone
  int error_write = -1;                  ///< setup-error pipe; CLOEXEC, so EOF = runner exec'd
  int runner[5] = {-1, -1, -1, -1, -1};  ///< become the runner's fds 0..4
  /// Persistent sandboxes: the init's end of the agent socket (agent_protocol.hpp);
  /// -1 = the init exits with its runner, as always.
  int agent = -1;
};

struct rlimit_setting {
  int resource = 0;
  const char* name = "";  ///< for setup-error messages
  rlimit value{};
};

/// A byte range of the parent's memory the child wipes in its copy.
struct memory_range {
  char* begin = nullptr;
  char* end = nullptr;
};

/// Everything the child needs, computed before clone. Pointers refer to parent memory,
/// which the child sees as its own copy: the parent may free it right after clone.
struct child_plan {
  child_fds fds;
  const char* setup_base = nullptr;  ///< host dir for the setup tmpfs (e.g. /tmp)
  const mount_step* mount_steps = nullptr;
  std::size_t mount_step_count = 0;
  const char* hostname = nullptr;
  std::size_t hostname_len = 0;
  unsigned sandbox_uid = kSandboxUid;  ///< inside the user namespace
  unsigned sandbox_gid = kSandboxUid;
  const rlimit_setting* rlimits = nullptr;
  std::size_t rlimit_count = 0;
  const sock_fprog* seccomp = nullptr;
  const char* workdir = "/home/user";
  /// null-terminated; null for run_zygote_clone_child (the runner is not exec'd)
  char* const* argv = nullptr;
  char* const* envp = nullptr;  ///< null-terminated, the runner's complete environment
  /// The service's argv and environ strings: /proc/1/cmdline is world-readable.
  memory_range scrub[2];
};

/// A null-terminated `char*` array over strings it owns, for an execve's argv or envp
/// (a child_plan's, the zygote's): built before clone, as the child may not allocate.
/// Neither copied nor moved, so the pointers stay valid while it lives.
class exec_strings {
 public:
  explicit exec_strings(std::vector<std::string> strings) : strings_(std::move(strings)) {
    pointers_.reserve(strings_.size() + 1);
    for (auto& s : strings_) pointers_.push_back(s.data());
    pointers_.push_back(nullptr);
  }
  exec_strings(const exec_strings&) = delete;
  exec_strings& operator=(const exec_strings&) = delete;
  char* const* data() const noexcept { return pointers_.data(); }

 private:
  std::vector<std::string> strings_;
  std::vector<char*> pointers_;
};

/// An environment as "NAME=value" entries, in name order.
inline std::vector<std::string> env_entries(const std::map<std::string, std::string>& env) {
  std::vector<std::string> out;
  out.reserve(env.size());
  for (const auto& [k, v] : env) out.push_back(k + "=" + v);
  return out;
}

/// Setup-error exit code of the init and of a runner whose execve failed.
inline constexpr int kSetupFailedExitCode = 125;

/// clone(flags | CLONE_PIDFD | SIGCHLD) without a new stack, so like fork(2): 0 in the
/// child, the child's pid in the caller (its pidfd in *pidfd), or -1 with errno. With a
/// cgroup2 directory fd, clone3 with CLONE_INTO_CGROUP first: the child is born in that
/// cgroup (*in_cgroup), sparing a migration (a global lock that can wait out an RCU grace
/// period, ~10 ms); falls back to clone where clone3 is refused (Docker's profile:
/// ENOSYS). Raw syscalls: no atfork handlers or malloc locks of a multi-threaded caller.
long clone_sandbox(unsigned long flags, int cgroup_fd, int* pidfd, bool* in_cgroup) noexcept;

/// Entry point of the clone child. Never returns.
[[noreturn]] void run_clone_child(const child_plan& plan) noexcept;

/// Entry point of a clone child of a zygote (a pre-initialised interpreter, zygote.hpp):
/// the same sandbox as run_clone_child, but its first runner is not exec'd: the call
/// returns in it (a fork of the init) with fds 0-4 in place, the setup-error pipe still
/// open at fd 5 (closing it tells the host the runner is running), the workdir as cwd
/// and signals unblocked at their default dispositions. It never returns in the init.
void run_zygote_clone_child(const child_plan& plan) noexcept;

}  // namespace codeexec::sandbox
