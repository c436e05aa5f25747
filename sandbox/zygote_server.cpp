// The zygote's side of zygote_protocol.hpp: a shared module that the zygote's Python
// (runners/python_zygote.py) loads with ctypes. The interpreter only loops over
// wait → fork; requests are read, checked and turned into sandboxes here, with the
// same clone child as the exec path (clone_child.cpp), so a forked sandbox gets
// exactly the exec path's isolation.
//
// The zygote is single-threaded (checked before every fork), holds no secrets (a clean
// environment, no configuration), has no capabilities and never execs.
#include "sandbox/clone_child.hpp"
#include "sandbox/fd_passing.hpp"
#include "sandbox/proc_stat.hpp"
#include "sandbox/rootfs.hpp"
#include "sandbox/seccomp_filter.hpp"
#include "sandbox/zygote_protocol.hpp"

#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

namespace codeexec::sandbox {
namespace {

namespace wire = zygote_wire;

struct server {
  int sock = -1;
  rootfs_layout layout;
  seccomp_program seccomp;
  memory_range scrub[2];
  std::string error;
  // The request being served (and, in a forked runner, the one it came from).
  alignas(wire::request) char buf[wire::kMaxMessageBytes];
  std::size_t size = 0;
  int fds[wire::kMaxFds];
  unsigned fd_count = 0;
  std::vector<const char*> env;  ///< into buf
};

server& the_server() {
  static server s;
  return s;
}

/// Threads of this process: a fork copies only the calling one, so a zygote with a
/// second thread (a library's worker) could hand a sandbox half-held locks.
int thread_count() {
  const auto f = stat_fields(0);  // num_threads is field 20
  return f.size() > 17 ? std::atoi(f[17].c_str()) : -1;
}

/// No capability in the host's namespaces: the sandboxes get theirs from their own
/// user namespace; the service writes their uid maps and cgroups.
bool drop_capabilities(std::string* error) {
  for (int cap = 0; cap < 64; ++cap)
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno == EINVAL) break;
  __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2] = {};
  if (::syscall(SYS_capset, &header, data) != 0) {
    *error = std::string("capset: ") + std::strerror(errno);
    return false;
  }
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    *error = std::string("PR_SET_NO_NEW_PRIVS: ") + std::strerror(errno);
    return false;
  }
  return true;
}

const char* rlimit_name(int resource) {
  switch (resource) {
    case RLIMIT_NPROC:
      return "NPROC";
    case RLIMIT_NOFILE:
      return "NOFILE";
    case RLIMIT_FSIZE:
      return "FSIZE";
    case RLIMIT_CORE:
      return "CORE";
    case RLIMIT_MEMLOCK:
      return "MEMLOCK";
    case RLIMIT_RTPRIO:
      return "RTPRIO";
    case RLIMIT_NICE:
      return "NICE";
    case RLIMIT_AS:
      return "AS";
    default:
      return nullptr;
  }
}

void close_request_fds(server& s) {
  for (unsigned i = 0; i < s.fd_count; ++i) ::close(s.fds[i]);
  s.fd_count = 0;
}

void send_reply(const server& s, const wire::reply& r, int pidfd) {
  const std::span<const int> fds(&pidfd, pidfd >= 0 ? 1 : 0);
  while (send_with_fds(s.sock, &r, sizeof r, fds, MSG_NOSIGNAL) < 0 && errno == EINTR) {
  }
}

void refuse(server& s, int err, const std::string& why) {
  wire::reply r;
  r.pid = -err;
  std::snprintf(r.error, sizeof r.error, "%s", why.c_str());
  close_request_fds(s);
  send_reply(s, r, -1);
}

/// Checks the request in s.buf and fills `env`; empty, or what is wrong.
std::string check_request(server& s, wire::request& req) {
  if (s.size < sizeof req) return "short request";
  std::memcpy(&req, s.buf, sizeof req);
  if (req.magic != wire::kMagic) return "bad magic";
  if (req.rlimit_count > wire::kMaxRlimits || req.envc > wire::kMaxEnv) return "too many entries";
  if (req.hostname[sizeof req.hostname - 1] != '\0' || req.hostname[0] == '\0')
    return "bad hostname";
  const unsigned want = wire::kFixedFds + ((req.flags & wire::kPersistent) ? 1 : 0) +
                        ((req.flags & wire::kIntoCgroup) ? 1 : 0);
  if (s.fd_count != want) return "wrong number of fds";
  for (unsigned i = 0; i < req.rlimit_count; ++i)
    if (rlimit_name(req.rlimits[i].resource) == nullptr) return "unknown rlimit";
  s.env.clear();
  std::size_t at = sizeof req;
  for (unsigned i = 0; i < req.envc; ++i) {
    const void* end = std::memchr(s.buf + at, '\0', s.size - at);
    if (at >= s.size || end == nullptr) return "environment not NUL-terminated";
    const char* entry = s.buf + at;
    if (std::strchr(entry, '=') == nullptr || entry[0] == '=') return "bad environment entry";
    s.env.push_back(entry);
    at = static_cast<std::size_t>(static_cast<const char*>(end) - s.buf) + 1;
  }
  if (at != s.size) return "trailing bytes";
  s.env.push_back(nullptr);
  return {};
}

}  // namespace
}  // namespace codeexec::sandbox

using namespace codeexec::sandbox;

extern "C" {

/// Prepares the zygote (before its interpreter loads the profile): the sandboxes' root
/// filesystem layout and seccomp program, then drops every capability. 0, or -1 with
/// codeexec_zygote_error() set.
__attribute__((visibility("default"))) int codeexec_zygote_init(const char* runner_dir, int sock) {
  auto& s = the_server();
  s.sock = sock;
  s.layout = probe_rootfs_layout(runner_dir, &s.error);
  if (!s.error.empty()) return -1;
  s.seccomp = seccomp_program::build_deny_list(&s.error);
  if (s.seccomp.empty()) return -1;
  find_scrub_ranges(s.scrub);
  if (!drop_capabilities(&s.error)) return -1;
  return 0;
}

__attribute__((visibility("default"))) const char* codeexec_zygote_error() {
  return the_server().error.c_str();
}

/// Tells the service the profile is loaded. 0 or -1.
__attribute__((visibility("default"))) int codeexec_zygote_ready() {
  wire::ready r;
  r.pid = static_cast<std::uint32_t>(::getpid());
  return ::send(the_server().sock, &r, sizeof r, MSG_NOSIGNAL) == sizeof r ? 0 : -1;
}

/// Blocks for the next request: 1 when one is there, 0 when the service hung up.
__attribute__((visibility("default"))) int codeexec_zygote_wait() {
  auto& s = the_server();
  for (;;) {
    iovec iov{s.buf, sizeof s.buf};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * wire::kMaxFds)];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    const ssize_t n = ::recvmsg(s.sock, &msg, MSG_CMSG_CLOEXEC);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return 0;
    s.size = static_cast<std::size_t>(n);
    s.fd_count = 0;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
      const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      for (std::size_t i = 0; i < count; ++i) {
        int fd;
        std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
        if (s.fd_count < wire::kMaxFds)
          s.fds[s.fd_count++] = fd;
        else
          ::close(fd);
      }
    }
    if ((msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0) {
      refuse(s, E2BIG, "request truncated");
      continue;
    }
    return 1;
  }
}

/// Forks a sandbox for the request codeexec_zygote_wait() received. Returns 0 in the
/// sandbox's runner (see run_zygote_clone_child), 1 in the zygote once it has replied,
/// -1 if the zygote must not go on (it had more than one thread).
__attribute__((visibility("default"))) int codeexec_zygote_fork() {
  auto& s = the_server();
  wire::request req;
  if (auto bad = check_request(s, req); !bad.empty()) {
    refuse(s, EINVAL, "invalid zygote request: " + bad);
    return 1;
  }
  if (const int threads = thread_count(); threads != 1) {
    refuse(s, EAGAIN, "the zygote has " + std::to_string(threads) + " threads");
    return -1;
  }
  const bool persistent = (req.flags & wire::kPersistent) != 0;
  const int cgroup_fd = (req.flags & wire::kIntoCgroup) ? s.fds[s.fd_count - 1] : -1;
  const rootfs_plan mounts(s.layout, {.workspace_bytes = req.workspace_bytes,
                                      .shm_bytes = req.shm_bytes,
                                      .hostname = req.hostname,
                                      .sandbox_uid = kSandboxUid,
                                      .sandbox_gid = kSandboxUid});
  std::vector<rlimit_setting> rlimits;
  for (unsigned i = 0; i < req.rlimit_count; ++i)
    rlimits.push_back(
        {req.rlimits[i].resource,
         rlimit_name(req.rlimits[i].resource),
         {static_cast<rlim_t>(req.rlimits[i].soft), static_cast<rlim_t>(req.rlimits[i].hard)}});
  child_plan plan;
  plan.fds.release_read = s.fds[0];
  plan.fds.lifeline_read = s.fds[1];
  plan.fds.error_write = s.fds[2];
  for (int i = 0; i < 5; ++i) plan.fds.runner[i] = s.fds[3 + i];
  plan.fds.agent = persistent ? s.fds[wire::kFixedFds] : -1;
  plan.setup_base = s.layout.setup_base.c_str();
  plan.mount_steps = mounts.steps();
  plan.mount_step_count = mounts.size();
  plan.hostname = req.hostname;
  plan.hostname_len = std::strlen(req.hostname);
  plan.sandbox_uid = kSandboxUid;
  plan.sandbox_gid = kSandboxUid;
  plan.rlimits = rlimits.data();
  plan.rlimit_count = rlimits.size();
  plan.seccomp = s.seccomp.fprog();
  plan.argv = nullptr;  // the runner is this interpreter
  plan.envp = nullptr;
  plan.scrub[0] = s.scrub[0];
  plan.scrub[1] = s.scrub[1];

  // CLONE_PARENT: the sandbox's init is the service's child (it reaps it, and its
  // PDEATHSIG follows the service's clone thread), never the zygote's, so a zygote that
  // dies or is replaced takes no sandbox with it.
  int pidfd = -1;
  bool in_cgroup = false;
  const long pid = clone_sandbox(kNamespaceFlags | CLONE_PARENT, cgroup_fd, &pidfd, &in_cgroup);
  if (pid == 0) {
    run_zygote_clone_child(plan);
    return 0;
  }
  const int err = errno;
  if (pid < 0) {
    refuse(s, err, std::string("clone: ") + std::strerror(err));
    return 1;
  }
  close_request_fds(s);
  wire::reply r;
  r.pid = static_cast<std::int32_t>(pid);
  r.in_cgroup = in_cgroup ? 1 : 0;
  send_reply(s, r, pidfd);
  ::close(pidfd);
  return 1;
}

/// In a forked runner: its environment, envc "NAME=value" strings, then null.
__attribute__((visibility("default"))) const char* const* codeexec_zygote_env() {
  return the_server().env.data();
}

}  // extern "C"
