#include "sandbox/sandbox_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#ifndef P_PIDFD
#define P_PIDFD 3  // glibc < 2.38 does not name it; the kernel has it since 5.4
#endif

namespace codeexec::sandbox {

std::string make_runner_fds(std::uint32_t host_uid, runner_fds& host, runner_fds& runner) {
  auto fail = [](const char* what) { return std::string(what) + ": " + std::strerror(errno); };
  int fds[2];
  // Pipes: [0] read end, [1] write end. The runner reads fd 0 and writes 1, 2.
  for (int i : {0, 1, 2}) {
    if (::pipe2(fds, O_CLOEXEC) != 0) return fail("pipe");
    const bool runner_reads = i == 0;
    runner.fd[i].reset(fds[runner_reads ? 0 : 1]);
    host.fd[i].reset(fds[runner_reads ? 1 : 0]);
    // So that code in the sandbox may reopen them (/dev/stdout, /proc/self/fd/1) as on
    // any Linux machine.
    if (::fchown(runner.fd[i].get(), host_uid, host_uid) != 0)
      return fail("fchown of the runner's stdio");
  }
  for (int i : {3, 4}) {
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) return fail("socketpair");
    host.fd[i].reset(fds[0]);
    runner.fd[i].reset(fds[1]);
  }
  if (::pipe2(fds, O_CLOEXEC) != 0) return fail("pipe");
  host.setup_error.reset(fds[0]);
  runner.setup_error.reset(fds[1]);
  return {};
}

local_sandbox_process::local_sandbox_process(sandbox_parts parts) : parts_(std::move(parts)) {
  if (parts_.live_count) ++*parts_.live_count;
}

local_sandbox_process::~local_sandbox_process() {
  kill();
  const bool reaped = reap(kReapBudget);
  const bool removed = parts_.cgroups.remove(kCgroupRemoveBudget);
  if (!reaped || !removed) {
    // Something of this sandbox may still run as its uid: never hand the uid out
    // again; the cgroups stay for sweep_stale().
    parts_.uid.quarantine();
  }
  if (parts_.live_count) --*parts_.live_count;
}

bool local_sandbox_process::signal_init(int sig) noexcept {
  if (!parts_.pidfd) return false;
  return ::syscall(SYS_pidfd_send_signal, parts_.pidfd.get(), sig, nullptr, 0) == 0;
}

// interrupt() and kill() only use the pidfd (readable once the init has exited, and
// never re-targeted to another process, even after reaping), so they need no lock
// against try_wait() on another thread.
bool local_sandbox_process::interrupt() {
  pollfd pfd{parts_.pidfd.get(), POLLIN, 0};
  if (::poll(&pfd, 1, 0) != 0) return false;  // exited (or no pidfd)
  return signal_init(SIGINT);                 // the init relays it to the runner
}

void local_sandbox_process::kill() {
  parts_.cgroups.kill();  // every process at once, wherever it is in the tree
  signal_init(SIGKILL);   // the kernel then kills the rest of the pid namespace
}

void local_sandbox_process::close_agent() {
  // shutdown, not close: the I/O thread may be polling the fd right now.
  if (parts_.agent) ::shutdown(parts_.agent.get(), SHUT_RDWR);
}

std::string local_sandbox_process::make_runner_fds(runner_fds& host, runner_fds& runner) {
  if (!parts_.agent) return "the sandbox is not persistent";
  return sandbox::make_runner_fds(parts_.uid.uid(), host, runner);
}

std::optional<exit_status> local_sandbox_process::try_wait() {
  std::lock_guard lock(wait_mutex_);
  if (exit_ || !parts_.pidfd) return exit_;
  siginfo_t info{};
  // P_PIDFD: exact even if something else reaped a pid (no reuse race).
  if (::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(parts_.pidfd.get()), &info,
               WEXITED | WNOHANG) != 0)
    return std::nullopt;
  if (info.si_pid == 0) return std::nullopt;  // still running
  exit_status status;
  if (info.si_code == CLD_EXITED)
    status.exit_code = info.si_status;
  else
    status.signal = info.si_status;
  exit_ = status;
  return exit_;
}

bool local_sandbox_process::reap(std::chrono::milliseconds budget) noexcept {
  const auto deadline = std::chrono::steady_clock::now() + budget;
  for (;;) {
    if (try_wait()) return true;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd pfd{parts_.pidfd.get(), POLLIN, 0};
    ::poll(&pfd, 1, static_cast<int>(std::min<long long>(left.count(), 100)));
    if (pfd.revents == 0) kill();  // repeat: cheap, and covers a racing fork
  }
}

usage local_sandbox_process::read_usage() const {
  return parts_.cgroups.read_usage();
}

bool local_sandbox_process::join_cgroups(bool already_in_v2, std::string* error) const {
  return parts_.cgroups.add_process(parts_.init_pid, already_in_v2, error);
}

bool local_sandbox_process::release(int release_write_fd) {
  const char byte = 1;
  for (;;) {
    const ssize_t n = ::write(release_write_fd, &byte, 1);
    if (n == 1) return true;
    if (n < 0 && errno == EINTR) continue;
    return false;
  }
}

}  // namespace codeexec::sandbox
