#include "sandbox/clone_child.hpp"

#include "sandbox/agent_protocol.hpp"

#include <fcntl.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstring>

// Everything in this file runs in the clone child (see clone_child.hpp): keep it
// async-signal-safe. What runs after release_inherited_memory() (the reaping init, the
// agent and the runners it forks) may use only syscall(), stack memory and libc's
// static tables (strerrordesc_np): the binary is linked with -z now, so no call there
// can enter the dynamic linker's lazy binding, which would need the released heap.

// Sanitizer runtimes keep shadow memory in anonymous mappings that instrumented code
// touches on every access; release_inherited_memory() must leave those alone.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define CODEEXEC_SANDBOX_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer) || __has_feature(hwaddress_sanitizer)
#define CODEEXEC_SANDBOX_SANITIZED 1
#endif
#endif

namespace codeexec::sandbox {
namespace {

constexpr int kRunnerFdCount = 5;
/// In the runner, just before execve: the setup-error pipe (CLOEXEC) sits here.
constexpr int kRunnerErrorFd = kRunnerFdCount;

[[noreturn]] void raw_exit(int code) noexcept {
  for (;;) ::syscall(SYS_exit_group, code);
}

// ---- failure reporting ------------------------------------------------------------

/// A fixed-size line builder (no allocation).
class line {
 public:
  line& add(const char* s) noexcept {
    while (s != nullptr && *s != '\0' && len_ < sizeof buf_ - 1) buf_[len_++] = *s++;
    return *this;
  }
  void write_to(int fd) noexcept {
    buf_[len_++] = '\n';
    std::size_t done = 0;
    while (done < len_) {
      const long n = ::syscall(SYS_write, fd, buf_ + done, len_ - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;
      done += static_cast<std::size_t>(n);
    }
  }

 private:
  char buf_[768];
  std::size_t len_ = 0;
};

/// Where setup failures go: one line "<step>[ <detail>]: <strerror> (<ENAME>)", then
/// exit 125. strerrordesc_np/strerrorname_np only index static tables (unlike
/// strerror, which may translate and allocate).
class reporter {
 public:
  explicit reporter(int fd) noexcept : fd_(fd) {}
  void move_to(int fd) noexcept { fd_ = fd; }

  [[noreturn]] void fail(const char* step, int err, const char* detail = nullptr) const noexcept {
    say(step, err, detail);
    raw_exit(kSetupFailedExitCode);
  }
  /// The line only (the agent reports a failed spawn and goes on).
  void say(const char* step, int err, const char* detail = nullptr) const noexcept {
    line l;
    l.add("sandbox setup failed: ").add(step);
    if (detail != nullptr) l.add(" ").add(detail);
    l.add(": ").add(strerrordesc_np(err)).add(" (").add(strerrorname_np(err)).add(")");
    l.write_to(fd_);
  }

 private:
  int fd_;
};

// ---- raw syscalls -----------------------------------------------------------------
// glibc's wrappers for these synchronise all threads of the process (setxid broadcast)
// or keep per-process state that a raw clone does not reset; the kernel calls are
// per-task and exactly what we want here.

int raw_setresuid(uid_t id) noexcept {
  return static_cast<int>(::syscall(SYS_setresuid, id, id, id));
}
int raw_setresgid(gid_t id) noexcept {
  return static_cast<int>(::syscall(SYS_setresgid, id, id, id));
}
int raw_set_signal_mask(const sigset_t* set) noexcept {
  // glibc's sigprocmask refuses to block its internal signals (32, 33); we want them
  // blocked too, so nothing of glibc's thread machinery ever runs in the init.
  return static_cast<int>(::syscall(SYS_rt_sigprocmask, SIG_SETMASK, set, nullptr, _NSIG / 8));
}
int raw_close_range(unsigned first, unsigned last) noexcept {
  if (first > last) return 0;
  if (::syscall(SYS_close_range, first, last, 0) == 0) return 0;
  if (errno != ENOSYS) return -1;
  rlimit lim;  // kernels < 5.9: close one by one up to the fd limit
  lim.rlim_cur = RLIM_INFINITY;
  ::syscall(SYS_prlimit64, 0, RLIMIT_NOFILE, nullptr, &lim);
  const unsigned top = lim.rlim_cur == RLIM_INFINITY || lim.rlim_cur > 1u << 20
                           ? 1u << 20
                           : static_cast<unsigned>(lim.rlim_cur);
  for (unsigned fd = first; fd <= last && fd < top; ++fd) ::syscall(SYS_close, fd);
  return 0;
}
void raw_close(int fd) noexcept {
  if (fd >= 0) ::syscall(SYS_close, fd);
}
pid_t raw_fork() noexcept {
  // glibc's fork() runs atfork handlers and takes malloc locks that another thread of
  // the service may have held at clone time.
  return static_cast<pid_t>(::syscall(SYS_clone, SIGCHLD, nullptr, nullptr, nullptr, nullptr));
}

// ---- setup steps, in kernel order ---------------------------------------------------

/// All signals blocked (the init reads the ones it handles from a signalfd: a pid-ns
/// init would otherwise drop signals it has no handler for), default dispositions
/// (the service's handlers are meaningless here), a sane umask, a recognisable name.
void reset_signals_and_process_state() noexcept {
  sigset_t all;
  sigfillset(&all);
  raw_set_signal_mask(&all);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);  // EINVAL: ignore
  ::umask(022);
  ::prctl(PR_SET_NAME, "sandbox-init", 0, 0, 0);
}

/// Blocks until the parent has written uid_map/gid_map and joined us to the cgroups.
void wait_for_release(const child_plan& p) noexcept {
  char byte = 0;
  for (;;) {
    const ssize_t n = ::read(p.fds.release_read, &byte, 1);
    if (n == 1) break;
    if (n < 0 && errno == EINTR) continue;
    ::_exit(kSetupFailedExitCode);  // EOF: the parent gave up on us; nobody is listening
  }
  ::close(p.fds.release_read);
}

/// Closes every fd but ours: the service's other fds (other sandboxes' pipes, sockets,
/// anything opened without O_CLOEXEC by another thread) must not reach the sandbox.
void close_inherited_fds(const child_plan& p, const reporter& report) noexcept {
  int keep[3 + kRunnerFdCount] = {p.fds.lifeline_read, p.fds.error_write, p.fds.agent};
  for (int i = 0; i < kRunnerFdCount; ++i) keep[3 + i] = p.fds.runner[i];
  constexpr int n = sizeof keep / sizeof keep[0];
  for (int i = 1; i < n; ++i)  // insertion sort
    for (int j = i; j > 0 && keep[j - 1] > keep[j]; --j) {
      const int t = keep[j];
      keep[j] = keep[j - 1];
      keep[j - 1] = t;
    }
  unsigned next = 0;
  for (int fd : keep) {
    if (fd < 0) continue;
    if (static_cast<unsigned>(fd) > next &&
        raw_close_range(next, static_cast<unsigned>(fd) - 1) != 0)
      report.fail("close inherited fds", errno);
    next = static_cast<unsigned>(fd) + 1;
  }
  if (raw_close_range(next, ~0u) != 0) report.fail("close inherited fds", errno);
}

/// The init is a copy of the service: wipe its command line (world-readable via
/// /proc/1/cmdline) and environment (also protected by PR_SET_DUMPABLE 0 below).
void scrub_inherited_memory(const child_plan& p) noexcept {
  for (const auto& r : p.scrub)
    if (r.begin != nullptr && r.end > r.begin)
      std::memset(r.begin, 0, static_cast<std::size_t>(r.end - r.begin));
}

/// uid/gid 0 of the new user namespace (= host 65534): until now we are an unmapped id,
/// and files created during setup need a mapped owner (mkdir fails with EOVERFLOW).
void become_namespace_root(const reporter& report) noexcept {
  if (raw_setresgid(0) != 0) report.fail("setresgid 0 in the user namespace", errno);
  if (raw_setresuid(0) != 0) report.fail("setresuid 0 in the user namespace", errno);
}

/// After the parent placed us in the sandbox cgroups: they become our cgroup root.
void enter_cgroup_namespace(const reporter& report) noexcept {
  if (::unshare(CLONE_NEWCGROUP) != 0) report.fail("unshare cgroup namespace", errno);
}

/// Nothing we mount may propagate back to the host (and pivot_root requires it).
void make_mounts_private(const reporter& report) noexcept {
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
    report.fail("make / rprivate", errno);
}

/// bwrap's trick: pivot into a scratch tmpfs first, so the host root is reachable at
/// /oldroot (whatever path the sources have) while the sandbox root is built at
/// /newroot.
void enter_setup_tmpfs(const child_plan& p, const reporter& report) noexcept {
  if (::mount("tmpfs", p.setup_base, "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=0755") != 0)
    report.fail("mount setup tmpfs on", errno, p.setup_base);
  if (::chdir(p.setup_base) != 0) report.fail("chdir", errno, p.setup_base);
  if (::mkdir(kSandboxRootInSetup + 1, 0755) != 0) report.fail("mkdir", errno, kSandboxRootInSetup);
  if (::mkdir(kHostRootInSetup + 1, 0755) != 0) report.fail("mkdir", errno, kHostRootInSetup);
  if (::syscall(SYS_pivot_root, ".", kHostRootInSetup + 1) != 0)
    report.fail("pivot_root into the setup tmpfs", errno);
  if (::chdir("/") != 0) report.fail("chdir /", errno);
}

/// Read-only, nosuid, nodev for a whole bind-mounted tree. mount_setattr (5.12+) is
/// recursive and leaves locked flags alone; the MS_REMOUNT fallback carries the
/// host mount's locked flags, precomputed by the parent.
void make_readonly(const mount_step& s, const reporter& report) noexcept {
  mount_attr attr{};
  attr.attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
  if (::syscall(SYS_mount_setattr, AT_FDCWD, s.target, AT_RECURSIVE, &attr, sizeof attr) == 0)
    return;
  if (errno != ENOSYS && errno != EPERM) report.fail(s.what, errno);
  if (::mount(nullptr, s.target, nullptr, s.flags, nullptr) != 0) report.fail(s.what, errno);
}

void run_mount_step(const mount_step& s, const reporter& report) noexcept {
  switch (s.op) {
    case mount_op::make_dir:
      if (::mkdir(s.target, s.mode) != 0 && errno != EEXIST) report.fail(s.what, errno);
      return;
    case mount_op::make_file: {
      const int fd = ::open(s.target, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, s.mode);
      if (fd < 0) report.fail(s.what, errno);
      ::close(fd);
      return;
    }
    case mount_op::make_symlink:
      if (::symlink(s.source, s.target) != 0) report.fail(s.what, errno);
      return;
    case mount_op::write_file: {
      const int fd =
          ::open(s.target, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, s.mode);
      if (fd < 0) report.fail(s.what, errno);
      std::size_t done = 0;
      while (done < s.size) {
        const ssize_t n = ::write(fd, s.source + done, s.size - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) report.fail(s.what, n < 0 ? errno : EIO);
        done += static_cast<std::size_t>(n);
      }
      ::close(fd);
      return;
    }
    case mount_op::mount:
      if (::mount(s.source, s.target, s.fstype, s.flags, s.data) != 0) {
        if (s.optional && errno == ENOENT) return;
        report.fail(s.what, errno);
      }
      return;
    case mount_op::bind_readonly:
      if (::mount(s.source, s.target, nullptr, MS_BIND | MS_REC, nullptr) != 0) {
        if (s.optional && errno == ENOENT) return;
        report.fail(s.what, errno);
      }
      make_readonly(s, report);
      return;
  }
}

/// tmpfs root, /usr and friends read-only, /etc files, /proc, /dev, workspace, /tmp,
/// /opt/runner — the parent's plan (rootfs.cpp), step by step.
void build_root_filesystem(const child_plan& p, const reporter& report) noexcept {
  for (std::size_t i = 0; i < p.mount_step_count; ++i) run_mount_step(p.mount_steps[i], report);
}

/// The host's root leaves our mount namespace entirely.
void detach_host_root(const reporter& report) noexcept {
  if (::umount2(kHostRootInSetup, MNT_DETACH) != 0) report.fail("detach host root", errno);
}

/// pivot_root(".", ".") stacks the old root (the setup tmpfs) on top of the new one;
/// detaching "." then drops it (pivot_root(2), "NOTES").
void pivot_into_sandbox_root(const reporter& report) noexcept {
  if (::chdir(kSandboxRootInSetup) != 0) report.fail("chdir", errno, kSandboxRootInSetup);
  if (::syscall(SYS_pivot_root, ".", ".") != 0)
    report.fail("pivot_root into the sandbox root", errno);
  if (::umount2(".", MNT_DETACH) != 0) report.fail("detach the setup tmpfs", errno);
  if (::chdir("/") != 0) report.fail("chdir /", errno);
}

void remount_root_readonly(const reporter& report) noexcept {
  if (::mount(nullptr, "/", nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV,
              nullptr) != 0)
    report.fail("remount / read-only", errno);
}

void set_hostname(const child_plan& p, const reporter& report) noexcept {
  if (::sethostname(p.hostname, p.hostname_len) != 0) report.fail("sethostname", errno);
}

/// The new network namespace has only a loopback device, and it starts down.
void bring_loopback_up(const reporter& report) noexcept {
  const int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) report.fail("socket for lo", errno);
  ifreq ifr{};
  std::memcpy(ifr.ifr_name, "lo", 3);
  if (::ioctl(fd, SIOCGIFFLAGS, &ifr) != 0) report.fail("SIOCGIFFLAGS lo", errno);
  ifr.ifr_flags = static_cast<short>(ifr.ifr_flags | IFF_UP | IFF_RUNNING);
  if (::ioctl(fd, SIOCSIFFLAGS, &ifr) != 0) report.fail("bring lo up", errno);
  ::close(fd);
}

/// No capability can come back through exec (defence in depth; the uid drop below
/// already empties the permitted set).
void drop_capability_bounding_set(const reporter& report) noexcept {
  for (int cap = 0; cap < 64; ++cap) {
    if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0) continue;
    if (errno == EINVAL) break;  // past CAP_LAST_CAP
    report.fail("drop capability bounding set", errno);
  }
  if (::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0 && errno != EINVAL)
    report.fail("clear ambient capabilities", errno);
}

/// uid/gid 1000 inside = the dedicated host uid outside. Supplementary groups are
/// already empty (cleared on the clone thread before clone; setgroups is denied here).
void drop_to_sandbox_user(const child_plan& p, const reporter& report) noexcept {
  if (raw_setresgid(p.sandbox_gid) != 0) report.fail("setresgid to the sandbox user", errno);
  if (raw_setresuid(p.sandbox_uid) != 0) report.fail("setresuid to the sandbox user", errno);
}

/// Must follow the last credential change, which clears it. The parent may have died
/// before it was armed: the lifeline pipe tells (EOF once every write end is closed).
void arm_parent_death_signal(const child_plan& p, const reporter& report) noexcept {
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0) report.fail("PR_SET_PDEATHSIG", errno);
  pollfd pfd{p.fds.lifeline_read, POLLIN, 0};
  if (::poll(&pfd, 1, 0) != 0) ::_exit(kSetupFailedExitCode);  // launcher gone
}

void apply_rlimits(const child_plan& p, const reporter& report) noexcept {
  for (std::size_t i = 0; i < p.rlimit_count; ++i)
    if (::setrlimit(p.rlimits[i].resource, &p.rlimits[i].value) != 0)
      report.fail("setrlimit", errno, p.rlimits[i].name);
}

/// /proc/1/environ, /proc/1/mem and ptrace of the init are then refused to the payload
/// (which runs as the same uid).
void make_non_dumpable(const reporter& report) noexcept {
  if (::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) report.fail("PR_SET_DUMPABLE 0", errno);
}

void set_no_new_privs(const reporter& report) noexcept {
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) report.fail("PR_SET_NO_NEW_PRIVS", errno);
}

/// The BPF program compiled by the parent (seccomp_filter.cpp); applies to the init
/// and, inherited, to the runner and everything it starts.
void load_seccomp_filter(const child_plan& p, const reporter& report) noexcept {
  if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, p.seccomp) != 0)
    report.fail("load seccomp filter", errno);
}

/// The init's own signals, read synchronously (they stay blocked).
int open_init_signalfd(const reporter& report) noexcept {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGCHLD, SIGINT, SIGTERM}) sigaddset(&set, sig);
  const int fd = ::signalfd(-1, &set, SFD_CLOEXEC);
  if (fd < 0) report.fail("signalfd", errno);
  return fd;
}

/// What a runner is started with: the plan's for the first, a SPAWN's for the others.
struct runner_start {
  const int* fds = nullptr;  ///< kRunnerFdCount fds, to become 0..4
  int error_fd = -1;         ///< setup-error pipe, CLOEXEC
  const char* workdir = nullptr;
  char* const* argv = nullptr;
  char* const* envp = nullptr;
};

/// In the runner: own session (and process group: the agent's SIGNAL to the group),
/// fds 0-4, nothing else open but the CLOEXEC error pipe (at fd 5), cwd, signals
/// unblocked. Raw syscalls only: spawned runners are forked by the agent after
/// release_inherited_memory().
void prepare_runner(const runner_start& r) noexcept {
  reporter report(r.error_fd);
  if (::syscall(SYS_setsid) < 0) report.fail("setsid", errno);
  // Move everything above the target range first, so no dup3 clobbers a source.
  int moved[kRunnerFdCount + 1];
  for (int i = 0; i <= kRunnerFdCount; ++i) {
    const int src = i < kRunnerFdCount ? r.fds[i] : r.error_fd;
    moved[i] = static_cast<int>(::syscall(SYS_fcntl, src, F_DUPFD_CLOEXEC, kRunnerFdCount + 1));
    if (moved[i] < 0) report.fail("dup runner fd", errno);
  }
  if (::syscall(SYS_dup3, moved[kRunnerFdCount], kRunnerErrorFd, O_CLOEXEC) < 0)
    report.fail("dup error fd", errno);
  report.move_to(kRunnerErrorFd);
  for (int i = 0; i < kRunnerFdCount; ++i)  // moved[i] > kRunnerErrorFd: never equal to i
    if (::syscall(SYS_dup3, moved[i], i, 0) < 0) report.fail("dup2 runner fd", errno);
  if (raw_close_range(kRunnerErrorFd + 1, ~0u) != 0) report.fail("close fds", errno);
  if (::syscall(SYS_chdir, r.workdir) != 0) report.fail("chdir", errno, r.workdir);
  const unsigned long none = 0;  // a kernel sigset_t
  static_assert(sizeof none >= _NSIG / 8);
  if (::syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, nullptr, _NSIG / 8) != 0)
    report.fail("unblock signals", errno);
}

/// prepare_runner, then execve with the exact env.
[[noreturn]] void exec_runner(const runner_start& r) noexcept {
  prepare_runner(r);
  reporter report(kRunnerErrorFd);
  ::syscall(SYS_execve, r.argv[0], r.argv, r.envp);
  report.fail("execve", errno, r.argv[0]);
}

/// Forks the first runner. With `plan.argv` null (a zygote's sandbox) the runner is
/// not exec'd: fork_runner returns 0 in it, prepared (prepare_runner); else it returns
/// the runner's pid, in the init only.
pid_t fork_runner(const child_plan& p, const reporter& report) noexcept {
  const pid_t pid = raw_fork();
  if (pid < 0) report.fail("fork runner", errno);
  if (pid == 0) {
    runner_start r;
    r.fds = p.fds.runner;
    r.error_fd = p.fds.error_write;
    r.workdir = p.workdir;
    r.argv = p.argv;
    r.envp = p.envp;
    if (p.argv == nullptr) {
      prepare_runner(r);
      // An exec'd runner is dumpable again; this one must be too (its own /proc files,
      // core-less crash reports), as the init's non-dumpable state is not its own.
      if (::prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) != 0)
        reporter(kRunnerErrorFd).fail("dumpable", errno);
      return 0;
    }
    exec_runner(r);
  }
  return pid;
}

/// The init keeps nothing of the runner's: its copies would hold the pipes open (no
/// EOF for the host) and the error pipe must reach EOF exactly at the runner's exec.
void close_runner_fds_in_init(const child_plan& p) noexcept {
  for (int fd : p.fds.runner) ::close(fd);
  ::close(p.fds.error_write);
}

/// Drops the init's copy of the service's memory. The init is a fork of the service and
/// would otherwise keep every page the service had at clone time alive for its whole
/// life (the service's later writes copy them): measured 400 MiB per init for a
/// 400 MiB service heap. Unmapped: private anonymous read-write mappings (heap, malloc
/// arenas, other threads' stacks) except our own stack (which also holds our TLS) and
/// .bss-like anonymous mappings that directly follow a file mapping (the dynamic
/// linker's and libc's state). Uses raw syscalls only: after this point the init may
/// call nothing that could need lazy symbol binding (see run_reaping_init).
void release_inherited_memory() noexcept {
#ifdef CODEEXEC_SANDBOX_SANITIZED
  return;  // test builds only; the memory cost does not matter there
#endif
  char stack_marker = 0;
  const auto sp = reinterpret_cast<std::uintptr_t>(&stack_marker);
  // errno lives in this thread's static TLS block: on a pthread it is on the stack, on
  // a process's main thread (a zygote's sandbox) ld.so allocated it elsewhere.
  const auto tls = reinterpret_cast<std::uintptr_t>(&errno);
  const int fd =
      static_cast<int>(::syscall(SYS_openat, AT_FDCWD, "/proc/self/maps", O_RDONLY | O_CLOEXEC));
  if (fd < 0) return;  // best effort: the sandbox works either way
  char buf[16384];
  std::size_t have = 0;
  std::uintptr_t previous_end = 0;
  bool previous_file_backed = false;
  auto hex = [](const char*& p, const char* end) {
    std::uintptr_t v = 0;
    for (; p < end; ++p) {
      const char c = *p;
      const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      if (d < 0) break;
      v = v * 16 + static_cast<std::uintptr_t>(d);
    }
    return v;
  };
  auto skip_field = [](const char*& p, const char* end) {
    while (p < end && *p != ' ') ++p;
    while (p < end && *p == ' ') ++p;
  };
  // "start-end perms offset dev inode [path]"
  auto handle_line = [&](const char* p, const char* end) {
    const std::uintptr_t start = hex(p, end);
    ++p;
    const std::uintptr_t stop = hex(p, end);
    ++p;
    const char* perms = p;
    skip_field(p, end);  // perms
    skip_field(p, end);  // offset
    skip_field(p, end);  // dev
    const std::uintptr_t inode = hex(p, end);
    skip_field(p, end);
    const std::size_t path_len = static_cast<std::size_t>(end - p);
    auto path_is = [&](const char* s) {
      std::size_t i = 0;
      for (; s[i] != '\0'; ++i)
        if (i >= path_len || p[i] != s[i]) return false;
      return i == path_len;
    };
    const bool file_backed = inode != 0;
    const bool anonymous =
        !file_backed && (path_len == 0 || path_is("[heap]") || path_is("[stack]"));
    const bool bss_like = path_len == 0 && previous_file_backed && previous_end == start;
    if (end - perms >= 4 && perms[0] == 'r' && perms[1] == 'w' && perms[3] == 'p' && anonymous &&
        !bss_like && !(start <= sp && sp < stop) && !(start <= tls && tls < stop))
      ::syscall(SYS_munmap, start, stop - start);
    previous_end = stop;
    previous_file_backed = file_backed;
  };
  for (;;) {
    const long n = ::syscall(SYS_read, fd, buf + have, sizeof buf - have);
    if (n <= 0) break;
    have += static_cast<std::size_t>(n);
    std::size_t line_start = 0;
    for (std::size_t i = 0; i < have; ++i)
      if (buf[i] == '\n') {
        handle_line(buf + line_start, buf + i);
        line_start = i + 1;
      }
    for (std::size_t i = line_start; i < have; ++i) buf[i - line_start] = buf[i];  // no memmove
    have -= line_start;
    if (have == sizeof buf) have = 0;  // a line longer than the buffer: skip it
  }
  ::syscall(SYS_close, fd);
}

int exit_code_of(int status) noexcept {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);  // an ns init cannot re-raise
  return kSetupFailedExitCode;
}

/// pid 1's job: reap everything (orphans are reparented to us), relay SIGINT/SIGTERM
/// to the runner, and exit with the runner's status when it exits — the kernel then
/// SIGKILLs whatever is left in the pid namespace. Also exits if the launcher's
/// lifeline closes (PR_SET_PDEATHSIG covers the launching thread only).
/// Only syscall() (resolved long ago) and plain stack memory from here on; no struct
/// zero-initialisers that the compiler could turn into a memset call.
[[noreturn]] void run_reaping_init(pid_t runner, int signal_fd, int lifeline_fd) noexcept {
  for (;;) {
    pollfd fds[2];
    fds[0].fd = signal_fd;
    fds[0].events = POLLIN;
    fds[0].revents = 0;
    fds[1].fd = lifeline_fd;
    fds[1].events = POLLIN;
    fds[1].revents = 0;
    if (::syscall(SYS_ppoll, fds, 2, nullptr, nullptr, _NSIG / 8) < 0) {
      if (errno == EINTR) continue;
      raw_exit(kSetupFailedExitCode);
    }
    if (fds[1].revents != 0) raw_exit(128 + SIGKILL);
    if ((fds[0].revents & POLLIN) == 0) continue;
    signalfd_siginfo info;
    if (::syscall(SYS_read, signal_fd, &info, sizeof info) != static_cast<long>(sizeof info))
      continue;
    if (info.ssi_signo != SIGCHLD) {
      ::syscall(SYS_kill, runner, info.ssi_signo);
      continue;
    }
    int status = 0;
    long pid;
    while ((pid = ::syscall(SYS_wait4, -1, &status, WNOHANG, nullptr)) > 0)
      if (pid == runner) raw_exit(exit_code_of(status));
  }
}

// ---- the agent: the init of a persistent sandbox (agent_protocol.hpp) ---------------

/// The runners of a persistent sandbox by slot (pid inside the sandbox; 0 = free).
struct kernel_table {
  pid_t pid[agent::kMaxKernels];
};

/// Blocking: the host's I/O thread always reads, and a lost EXITED would leave a kernel
/// running forever in its eyes. A host that is gone shows as a hang-up in the next poll.
void send_to_host(int agent_fd, std::uint32_t type, unsigned slot, int value,
                  std::uint32_t detail) noexcept {
  agent::agent_message m;
  m.type = type;
  m.slot = slot;
  m.value = value;
  m.detail = detail;
  while (::syscall(SYS_sendto, agent_fd, &m, sizeof m, MSG_NOSIGNAL, nullptr, 0) < 0 &&
         errno == EINTR) {
  }
}

/// SIGCHLD: reaps every exited child (orphans included). A runner's exit frees its
/// slot, kills what its process group left behind (as a non-persistent init's exit
/// kills the whole sandbox; its group id stays allocated while a member lives, so the
/// kill cannot hit a stranger) and is reported.
void reap_children(kernel_table& kernels, int agent_fd) noexcept {
  int status = 0;
  long pid;
  while ((pid = ::syscall(SYS_wait4, -1, &status, WNOHANG, nullptr)) > 0) {
    for (unsigned slot = 0; slot < agent::kMaxKernels; ++slot) {
      if (kernels.pid[slot] != pid) continue;
      kernels.pid[slot] = 0;
      ::syscall(SYS_kill, -pid, SIGKILL);
      send_to_host(agent_fd, agent::kExited, slot, exit_code_of(status),
                   WIFSIGNALED(status) ? static_cast<std::uint32_t>(WTERMSIG(status)) : 0);
    }
  }
}

/// Splits a SPAWN payload (workdir\0 argv…\0 env…\0) in place into argv/envp arrays
/// of at most kMaxStrings + 1 entries. False if it does not have exactly that shape.
bool split_spawn_payload(char* payload, std::size_t size, unsigned argc, unsigned envc,
                         const char** workdir, char** argv, char** envp) noexcept {
  if (argc == 0 || argc > agent::kMaxStrings || envc > agent::kMaxStrings) return false;
  if (size == 0 || payload[size - 1] != '\0') return false;
  const unsigned total = 1 + argc + envc;
  unsigned index = 0;
  char* start = payload;
  for (std::size_t i = 0; i < size; ++i) {
    if (payload[i] != '\0') continue;
    if (index == total) return false;
    if (index == 0)
      *workdir = start;
    else if (index <= argc)
      argv[index - 1] = start;
    else
      envp[index - 1 - argc] = start;
    ++index;
    start = payload + i + 1;
  }
  if (index != total || **workdir != '/' || argv[0][0] != '/') return false;
  argv[argc] = nullptr;
  envp[envc] = nullptr;
  return true;
}

/// SPAWN: forks a runner into `m.slot` with the received fds, exactly as the first
/// runner was started (credentials, rlimits, seccomp and no_new_privs are the init's).
void spawn_runner(kernel_table& kernels, int agent_fd, const agent::agent_message& m, char* payload,
                  std::size_t size, bool truncated, const int* fds, unsigned fd_count) noexcept {
  const int error_fd = fd_count == agent::kSpawnFdCount ? fds[agent::kSpawnFdCount - 1] : -1;
  const reporter report(error_fd);  // writes to -1 go nowhere
  auto refuse = [&](const char* step, int err) {
    report.say(step, err);
    for (unsigned i = 0; i < fd_count; ++i) raw_close(fds[i]);
    send_to_host(agent_fd, agent::kSpawned, m.slot, -err, 0);
  };
  if (m.slot >= agent::kMaxKernels) return refuse("kernel slot", EINVAL);
  if (fd_count != agent::kSpawnFdCount) return refuse("spawn request fds", EBADMSG);
  if (kernels.pid[m.slot] != 0) return refuse("kernel slot", EBUSY);
  if (truncated) return refuse("spawn request", E2BIG);
  const char* workdir = nullptr;
  char* argv[agent::kMaxStrings + 1];
  char* envp[agent::kMaxStrings + 1];
  if (m.payload_bytes != size ||
      !split_spawn_payload(payload, size, m.detail, m.envc, &workdir, argv, envp))
    return refuse("spawn request", EINVAL);
  const pid_t pid = raw_fork();
  if (pid < 0) return refuse("fork runner", errno);
  if (pid == 0) {
    runner_start r;
    r.fds = fds;
    r.error_fd = error_fd;
    r.workdir = workdir;
    r.argv = argv;
    r.envp = envp;
    exec_runner(r);
  }
  // As for the first runner: the init must not hold the runner's ends (EOF for the host,
  // and the error pipe's EOF at exec).
  for (unsigned i = 0; i < fd_count; ++i) raw_close(fds[i]);
  kernels.pid[m.slot] = pid;
  send_to_host(agent_fd, agent::kSpawned, m.slot, pid, 0);
}

/// Reads one request of the host and carries it out. False once the host hung up.
bool serve_host_request(kernel_table& kernels, int agent_fd) noexcept {
  char buf[agent::kMaxMessageBytes];
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * agent::kSpawnFdCount)];
  iovec iov;
  iov.iov_base = buf;
  iov.iov_len = sizeof buf;
  msghdr msg;
  msg.msg_name = nullptr;
  msg.msg_namelen = 0;
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof control;
  msg.msg_flags = 0;
  // CLOEXEC: a received fd must reach only the runner it is meant for (exec_runner
  // dups it), never another runner's exec.
  const long n = ::syscall(SYS_recvmsg, agent_fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
  if (n < 0) return errno == EINTR || errno == EAGAIN;
  if (n == 0) return false;  // end-of-file: the host is done with this sandbox
  // Fds that did not fit (MSG_CTRUNC) were never installed; close all that were.
  int fds[agent::kSpawnFdCount];
  unsigned fd_count = 0;
  cmsghdr* c = CMSG_FIRSTHDR(&msg);
  if (c != nullptr && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
    const std::size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    const unsigned char* data = CMSG_DATA(c);
    for (std::size_t i = 0; i < count && i < agent::kSpawnFdCount; ++i)
      __builtin_memcpy(&fds[fd_count++], data + i * sizeof(int), sizeof(int));
  }
  agent::agent_message m;
  if (static_cast<std::size_t>(n) < sizeof m) {
    for (unsigned i = 0; i < fd_count; ++i) raw_close(fds[i]);
    return true;
  }
  __builtin_memcpy(&m, buf, sizeof m);
  switch (m.type) {
    case agent::kSpawn:
      spawn_runner(kernels, agent_fd, m, buf + sizeof m, static_cast<std::size_t>(n) - sizeof m,
                   (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0, fds, fd_count);
      return true;
    case agent::kSignal:
      if (m.slot < agent::kMaxKernels && kernels.pid[m.slot] > 0 && m.value > 0 &&
          m.value < _NSIG) {
        const pid_t target = kernels.pid[m.slot];
        ::syscall(SYS_kill, (m.detail & agent::kSignalGroup) != 0 ? -target : target, m.value);
      }
      break;
    default:
      break;
  }
  for (unsigned i = 0; i < fd_count; ++i) raw_close(fds[i]);
  return true;
}

/// pid 1 of a persistent sandbox: reaps like run_reaping_init, but outlives its
/// runners, starts and signals runners on the host's request, and reports their exits.
/// Relays SIGINT/SIGTERM to slot 0 as the plain init does. Exits when the host closes
/// the agent socket (0) or the lifeline (128 + SIGKILL); the kernel then kills the rest.
[[noreturn]] void run_agent(pid_t first_runner, int signal_fd, int lifeline_fd,
                            int agent_fd) noexcept {
  kernel_table kernels;
  for (unsigned i = 0; i < agent::kMaxKernels; ++i) kernels.pid[i] = 0;
  kernels.pid[0] = first_runner;
  for (;;) {
    pollfd fds[3];
    fds[0].fd = signal_fd;
    fds[1].fd = lifeline_fd;
    fds[2].fd = agent_fd;
    for (auto& f : fds) {
      f.events = POLLIN;
      f.revents = 0;
    }
    if (::syscall(SYS_ppoll, fds, 3, nullptr, nullptr, _NSIG / 8) < 0) {
      if (errno == EINTR) continue;
      raw_exit(kSetupFailedExitCode);
    }
    if (fds[1].revents != 0) raw_exit(128 + SIGKILL);
    // Exits first: the host restarts a slot only after its EXITED, which reaping sends.
    if ((fds[0].revents & POLLIN) != 0) {
      signalfd_siginfo info;
      if (::syscall(SYS_read, signal_fd, &info, sizeof info) == static_cast<long>(sizeof info)) {
        if (info.ssi_signo == SIGCHLD)
          reap_children(kernels, agent_fd);
        else if (kernels.pid[0] != 0)
          ::syscall(SYS_kill, kernels.pid[0], info.ssi_signo);
      }
    }
    if ((fds[2].revents & POLLIN) != 0) {
      if (!serve_host_request(kernels, agent_fd)) raw_exit(0);
    } else if (fds[2].revents != 0) {
      raw_exit(0);  // hang-up or error without data
    }
  }
}

}  // namespace

namespace {

/// Everything from release to the first runner's fork, in kernel order; returns the
/// init's signalfd.
int set_up_sandbox(const child_plan& p, const reporter& report) noexcept {
  reset_signals_and_process_state();
  wait_for_release(p);
  close_inherited_fds(p, report);
  scrub_inherited_memory(p);
  become_namespace_root(report);
  enter_cgroup_namespace(report);
  make_mounts_private(report);
  enter_setup_tmpfs(p, report);
  build_root_filesystem(p, report);
  detach_host_root(report);
  pivot_into_sandbox_root(report);
  remount_root_readonly(report);
  set_hostname(p, report);
  bring_loopback_up(report);
  drop_capability_bounding_set(report);
  drop_to_sandbox_user(p, report);
  arm_parent_death_signal(p, report);
  apply_rlimits(p, report);
  make_non_dumpable(report);
  set_no_new_privs(report);
  load_seccomp_filter(p, report);
  return open_init_signalfd(report);
}

[[noreturn]] void become_init(const child_plan& p, pid_t runner, int signal_fd) noexcept {
  close_runner_fds_in_init(p);
  const int lifeline_fd = p.fds.lifeline_read;  // `p` lives in memory released next
  const int agent_fd = p.fds.agent;
  release_inherited_memory();
  if (agent_fd >= 0) run_agent(runner, signal_fd, lifeline_fd, agent_fd);
  run_reaping_init(runner, signal_fd, lifeline_fd);
}

}  // namespace

void run_clone_child(const child_plan& p) noexcept {
  reporter report(p.fds.error_write);
  const int signal_fd = set_up_sandbox(p, report);
  const pid_t runner = fork_runner(p, report);
  if (runner == 0) raw_exit(kSetupFailedExitCode);  // no argv: not for this entry point
  become_init(p, runner, signal_fd);
}

void run_zygote_clone_child(const child_plan& p) noexcept {
  reporter report(p.fds.error_write);
  const int signal_fd = set_up_sandbox(p, report);
  const pid_t runner = fork_runner(p, report);
  if (runner == 0) return;  // the runner: back to the zygote's interpreter
  become_init(p, runner, signal_fd);
}

long clone_sandbox(unsigned long flags, int cgroup_fd, int* pidfd, bool* in_cgroup) noexcept {
  *in_cgroup = false;
  if (cgroup_fd >= 0) {
    clone_args args{};
    args.flags = flags | CLONE_PIDFD | CLONE_INTO_CGROUP;
    args.pidfd = reinterpret_cast<std::uintptr_t>(pidfd);
    args.exit_signal = SIGCHLD;
    args.cgroup = static_cast<std::uint64_t>(cgroup_fd);
    const long pid = ::syscall(SYS_clone3, &args, sizeof args);
    if (pid >= 0) {
      *in_cgroup = pid > 0;
      return pid;
    }
  }
  return ::syscall(SYS_clone, flags | CLONE_PIDFD | SIGCHLD, nullptr, pidfd, nullptr, nullptr);
}

}  // namespace codeexec::sandbox
