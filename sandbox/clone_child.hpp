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
#include <sys/resource.h>

#include <cstddef>

namespace codeexec::sandbox {

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
  unsigned sandbox_uid = 1000;  ///< inside the user namespace
  unsigned sandbox_gid = 1000;
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

/// Setup-error exit code of the init and of a runner whose execve failed.
inline constexpr int kSetupFailedExitCode = 125;

/// Entry point of the clone child. Never returns.
[[noreturn]] void run_clone_child(const child_plan& plan) noexcept;

/// Entry point of a clone child of a zygote (a pre-initialised interpreter, zygote.hpp):
/// the same sandbox as run_clone_child, but its first runner is not exec'd: the call
/// returns in it (a fork of the init) with fds 0-4 in place, the setup-error pipe still
/// open at fd 5 (closing it tells the host the runner is running), the workdir as cwd
/// and signals unblocked at their default dispositions. It never returns in the init.
void run_zygote_clone_child(const child_plan& plan) noexcept;

}  // namespace codeexec::sandbox
