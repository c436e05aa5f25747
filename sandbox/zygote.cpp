#include "sandbox/zygote.hpp"

#include "sandbox/errno_text.hpp"
#include "sandbox/fd_passing.hpp"
#include "sandbox/zygote_protocol.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#ifndef P_PIDFD
#define P_PIDFD 3  // glibc < 2.38 does not name it
#endif

namespace codeexec::sandbox {
namespace {

namespace wire = zygote_wire;
using namespace std::chrono_literals;

/// A zygote that has not said it is ready by then is replaced (a kernel profile takes
/// ~0.1 s; importing a data-science stack on a loaded machine several seconds).
constexpr auto kStartBudget = 60s;
/// How long a fork may take to be answered before the zygote counts as hung.
constexpr auto kReplyBudget = 10s;
/// Replacements are started at most this often (a zygote that keeps dying must not
/// turn every launch into a process start).
constexpr auto kRestartInterval = 1s;

/// What the zygote's exec child needs, computed before clone (the child may not
/// allocate: it is a copy of a multi-threaded process).
struct exec_plan {
  const char* path = nullptr;
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  int sock = -1;     ///< becomes fd 3
  int devnull = -1;  ///< becomes fd 0; fds 1 and 2 stay the service's (its log)
};

/// The zygote's exec child: default signal state, dies with the service's clone thread,
/// fds 0-3 only, then execve. Async-signal-safe code only.
void exec_zygote(const void* arg) noexcept {
  const auto& p = *static_cast<const exec_plan*>(arg);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);
  const unsigned long none = 0;  // a kernel sigset_t
  ::syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, nullptr, _NSIG / 8);
  ::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
  // Above the target range first, so no dup3 clobbers a source.
  const int sock = static_cast<int>(::syscall(SYS_fcntl, p.sock, F_DUPFD_CLOEXEC, 10));
  const int devnull = static_cast<int>(::syscall(SYS_fcntl, p.devnull, F_DUPFD_CLOEXEC, 10));
  if (sock < 0 || devnull < 0 || ::syscall(SYS_dup3, devnull, 0, 0) < 0 ||
      ::syscall(SYS_dup3, sock, 3, 0) < 0 || ::syscall(SYS_close_range, 4, ~0u, 0) < 0)
    ::syscall(SYS_exit_group, 127);
  ::syscall(SYS_execve, p.path, p.argv, p.envp);
  ::syscall(SYS_exit_group, 127);
}

/// LANG, LANGUAGE and LC_* of an environment: fixed at interpreter start.
std::map<std::string, std::string> locale_of(const std::map<std::string, std::string>& env) {
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : env)
    if (k == "LANG" || k == "LANGUAGE" || k.rfind("LC_", 0) == 0) out.emplace(k, v);
  return out;
}

}  // namespace

zygote::zygote(zygote_config cfg, std::shared_ptr<clone_thread> cloner)
    : cfg_(std::move(cfg)), locale_(locale_of(cfg_.env)), cloner_(std::move(cloner)) {
  std::lock_guard lock(mutex_);
  start_locked();
}

zygote::~zygote() {
  std::lock_guard lock(mutex_);
  stop_locked("service stopping");
}

bool zygote::serves(const launch_spec& spec) const {
  return spec.argv == cfg_.runner_argv && locale_of(spec.env) == locale_;
}

void zygote::start_locked() {
  counters_.state = "down";
  started_at_ = std::chrono::steady_clock::now();
  ++counters_.starts;
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) {
    counters_.last_error = errno_text("zygote socketpair", errno);
    return;
  }
  unique_fd ours(fds[0]), theirs(fds[1]);
  unique_fd devnull(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!devnull) {
    counters_.last_error = errno_text("open /dev/null", errno);
    return;
  }
  const std::string& python = cfg_.runner_argv.at(0);
  const exec_strings argv({python, "-I", "-u", cfg_.script, cfg_.library, cfg_.runner_dir});
  const exec_strings envp(env_entries(cfg_.env));
  exec_plan plan{python.c_str(), argv.data(), envp.data(), theirs.get(), devnull.get()};
  auto child = cloner_->clone_process(exec_zygote, &plan, 0);
  if (child.pid < 0) {
    counters_.last_error = errno_text("start the zygote", child.error);
    return;
  }
  sock_ = std::move(ours);
  pidfd_ = std::move(child.pidfd);
  ready_ = false;
  generation_forks_ = 0;
  counters_.state = "starting";
  counters_.pid = child.pid;
}

void zygote::stop_locked(const std::string& why) {
  if (pidfd_) {
    ::syscall(SYS_pidfd_send_signal, pidfd_.get(), SIGKILL, nullptr, 0);
    siginfo_t info{};
    ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(pidfd_.get()), &info, WEXITED);
    pidfd_.reset();
    counters_.last_error = why;
  }
  sock_.reset();
  ready_ = false;
  counters_.state = "down";
  counters_.pid = -1;
}

bool zygote::check_ready_locked() {
  if (!sock_) return false;
  pollfd pfd{sock_.get(), POLLIN, 0};
  const int polled = ::poll(&pfd, 1, 0);
  if (ready_) {
    if (polled == 0) return true;
    stop_locked("the zygote exited");  // a ready zygote only ever answers forks
    return false;
  }
  if (polled > 0) {
    wire::ready r;
    const ssize_t n = ::recv(sock_.get(), &r, sizeof r, MSG_DONTWAIT);
    if (n == static_cast<ssize_t>(sizeof r) && r.magic == wire::kMagic) {
      ready_ = true;
      counters_.state = "ready";
      return true;
    }
    stop_locked(n == 0 ? "the zygote exited while it started (its stderr is in the service's log)"
                       : "the zygote sent no valid ready message");
    return false;
  }
  if (std::chrono::steady_clock::now() - started_at_ > kStartBudget)
    stop_locked("the zygote did not become ready within " + std::to_string(kStartBudget.count()) +
                " s");
  return false;
}

std::optional<clone_thread::result> zygote::spawn(const zygote_request& q) {
  std::lock_guard lock(mutex_);
  if (!sock_ && std::chrono::steady_clock::now() - started_at_ >= kRestartInterval) start_locked();
  if (!check_ready_locked()) {
    ++counters_.fallbacks;
    return std::nullopt;
  }
  const launch_spec& spec = *q.spec;
  std::vector<char> message(sizeof(wire::request));
  wire::request req;
  req.flags = (q.agent >= 0 ? wire::kPersistent : 0) | (q.cgroup_dir >= 0 ? wire::kIntoCgroup : 0);
  req.workspace_bytes = spec.lim.workspace_bytes;
  req.shm_bytes = q.shm_bytes;
  req.rlimit_count =
      static_cast<std::uint32_t>(std::min<std::size_t>(q.rlimits.size(), wire::kMaxRlimits));
  for (std::uint32_t i = 0; i < req.rlimit_count; ++i)
    req.rlimits[i] = {q.rlimits[i].resource, 0, q.rlimits[i].value.rlim_cur,
                      q.rlimits[i].value.rlim_max};
  std::snprintf(req.hostname, sizeof req.hostname, "%s", spec.hostname.c_str());
  req.envc = static_cast<std::uint32_t>(spec.env.size());
  std::memcpy(message.data(), &req, sizeof req);
  for (const auto& entry : env_entries(spec.env))
    message.insert(message.end(), entry.c_str(), entry.c_str() + entry.size() + 1);  // with NUL
  if (q.rlimits.size() > wire::kMaxRlimits || spec.env.size() > wire::kMaxEnv ||
      message.size() > wire::kMaxMessageBytes) {
    ++counters_.fallbacks;  // not for the zygote; the exec path takes any size
    return std::nullopt;
  }
  std::vector<int> fds = {q.release_read, q.lifeline_read, q.runner->setup_error.get()};
  for (const auto& fd : q.runner->fd) fds.push_back(fd.get());
  if (q.agent >= 0) fds.push_back(q.agent);
  if (q.cgroup_dir >= 0) fds.push_back(q.cgroup_dir);

  auto fail = [&](const std::string& why) -> std::optional<clone_thread::result> {
    stop_locked(why);
    ++counters_.fallbacks;
    return std::nullopt;
  };
  {
    static_assert(wire::kMaxFds <= kMaxSentFds);
    ssize_t n;
    while ((n = send_with_fds(sock_.get(), message.data(), message.size(), fds, MSG_NOSIGNAL)) <
               0 &&
           errno == EINTR) {
    }
    if (n != static_cast<ssize_t>(message.size()))
      return fail(errno_text("send to the zygote", n < 0 ? errno : EIO));
  }
  wire::reply reply;
  int pidfd = -1;
  {
    pollfd pfd{sock_.get(), POLLIN, 0};
    const auto budget = std::chrono::duration_cast<std::chrono::milliseconds>(kReplyBudget);
    int ready;
    while ((ready = ::poll(&pfd, 1, static_cast<int>(budget.count()))) < 0 && errno == EINTR) {
    }
    if (ready <= 0)
      return fail("the zygote did not answer a fork within " +
                  std::to_string(kReplyBudget.count()) + " s");
    iovec iov{&reply, sizeof reply};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    const ssize_t n = ::recvmsg(sock_.get(), &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (cmsghdr* c = CMSG_FIRSTHDR(&msg); n > 0 && c != nullptr && c->cmsg_type == SCM_RIGHTS)
      std::memcpy(&pidfd, CMSG_DATA(c), sizeof pidfd);
    unique_fd owned(pidfd);
    if (n != static_cast<ssize_t>(sizeof reply))
      return fail(n == 0 ? "the zygote exited" : "the zygote's reply was malformed");
    if (reply.pid <= 0 || !owned) {
      reply.error[sizeof reply.error - 1] = '\0';
      return fail(std::string("the zygote could not fork: ") + reply.error);
    }
    pidfd = owned.release();
  }
  ++counters_.forks;
  if (++generation_forks_ >= cfg_.max_forks) {
    stop_locked("replaced after " + std::to_string(cfg_.max_forks) + " forks");
    start_locked();
  }
  return clone_thread::result{reply.pid, unique_fd(pidfd), 0, reply.in_cgroup != 0};
}

zygote_status zygote::status() {
  std::lock_guard lock(mutex_);
  if (!sock_ && std::chrono::steady_clock::now() - started_at_ >= kRestartInterval) start_locked();
  check_ready_locked();
  return counters_;
}

}  // namespace codeexec::sandbox
