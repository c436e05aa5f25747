// make_launcher(), sweep_stale() and the launcher: the parent side of a sandbox start.
//
// launch() order (sandbox-design.md Appendix B): plan everything → pipes (and the agent
// socket of a persistent sandbox) → clone (on the clone thread) →
// uid_map/setgroups/gid_map → join cgroups → release the child.
// It never waits for the runner: the caller watches setup_error_fd() (EOF = exec'd)
// and exit_fd().
#include "sandbox/launcher.hpp"

#include "sandbox/agent_protocol.hpp"
#include "sandbox/cgroups.hpp"
#include "sandbox/clone_child.hpp"
#include "sandbox/clone_thread.hpp"
#include "sandbox/errno_text.hpp"
#include "sandbox/proc_stat.hpp"
#include "sandbox/rootfs.hpp"
#include "sandbox/runner_stage.hpp"
#include "sandbox/sandbox_process.hpp"
#include "sandbox/seccomp_filter.hpp"
#include "sandbox/uid_pool.hpp"
#include "sandbox/zygote.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>

namespace codeexec::sandbox {
namespace {

using namespace std::chrono_literals;

constexpr unsigned kNobodyHostId = 65534;  // what the sandbox's root maps to
constexpr std::uint64_t kMiB = 1ull << 20;
constexpr std::uint64_t kMinAddressSpace = 2048 * kMiB;  // node's V8 will not start below ~1 GiB
constexpr std::uint64_t kMaxShm = 16 * kMiB;
constexpr std::uint64_t kMemlock = 64 * 1024;
// With a pids cgroup, RLIMIT_NPROC is only a backstop; leave the cgroup to trip first
// so pids.events counts the hits.
constexpr std::uint64_t kNprocMarginOverCgroup = 16;
constexpr std::uint64_t kMinPids = 4;        // init + runner + a little
constexpr std::uint64_t kMinOpenFiles = 16;  // the runner's fd shuffle needs a dozen
constexpr auto kSelfTestBudget = 15s;

constexpr const char* kFixHint =
    " If namespaces, mounts or procfs are refused: the local sandbox needs to run as root "
    "(CAP_SYS_ADMIN, CAP_SETUID, CAP_SETGID) on a kernel with user, pid, mount and network "
    "namespaces, and must be allowed to mount a fresh procfs. In Docker, start the service with "
    "--security-opt "
    "seccomp=<moby default profile + clone, unshare, mount, umount2, pivot_root, "
    "sethostname, setns allowed> --security-opt apparmor=unconfined --security-opt "
    "systempaths=unconfined (per-sandbox cgroup limits additionally need --cgroupns=private "
    "with a writable cgroupfs, or --privileged); see sandbox-design.md §3.3. Otherwise "
    "configure an E2B API key to use the cloud backend.";

constexpr const char* kHostPathHint =
    " The sandbox's root (an unprivileged uid on the host) could not reach a host path it "
    "binds: every directory on that path must be searchable by others (chmod o+x).";

/// A bind of a host path refused for permissions: the path's modes are at fault, not
/// namespaces or mounts, and the advice for those would send the user the wrong way.
bool is_host_path_denied(const std::string& failure) {
  return failure.find("sandbox setup failed: bind ") != std::string::npos &&
         failure.find("(EACCES)") != std::string::npos;
}

std::uint64_t to_u64(std::string_view s, bool* ok = nullptr) {
  std::uint64_t v = 0;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ok) *ok = r.ec == std::errc() && r.ptr == s.data() + s.size() && !s.empty();
  return v;
}

/// Start time (clock ticks since boot): with the pid, identifies a process across pid reuse.
std::optional<std::uint64_t> start_time_of(pid_t pid) {
  const auto f = stat_fields(pid);
  if (f.size() < 20) return std::nullopt;
  return to_u64(f[19]);
}

/// "<pid>-<start time>-u<uid base>" of this process: the owner part of every sandbox
/// id, so that sweep_stale() can tell a crashed predecessor's cgroups from a live
/// service's. The uid base names the instance where the pid cannot: a service in
/// another pid namespace (a container, a CI root) may share this cgroupfs, and its
/// pid means nothing here; instances on one host never share a uid range.
std::string owner_tag(std::uint32_t uid_base) {
  return std::to_string(::getpid()) + "-" + std::to_string(start_time_of(0).value_or(0)) + "-u" +
         std::to_string(uid_base);
}

/// sbx-<pid>-<start>-u<uid base>-<seq> is stale when its uid base is ours and that
/// exact process no longer runs; another uid base is another instance's to sweep.
/// (sbx-<pid>-<start>-<seq>, from versions without the uid base, by the process alone.)
bool is_stale_cgroup_name(std::string_view name, std::uint32_t uid_base) {
  if (name.substr(0, 4) != "sbx-") return false;
  name.remove_prefix(4);
  const auto d1 = name.find('-');
  const auto d2 = d1 == std::string_view::npos ? d1 : name.find('-', d1 + 1);
  if (d2 == std::string_view::npos) return true;  // not ours in form: leftover
  if (name.substr(d2 + 1, 1) == "u") {
    const auto rest = name.substr(d2 + 2);
    bool ok_base = false;
    const auto base = to_u64(rest.substr(0, rest.find('-')), &ok_base);
    if (ok_base && base != uid_base) return false;
  }
  bool ok_pid = false, ok_start = false;
  const auto pid = to_u64(name.substr(0, d1), &ok_pid);
  const auto start = to_u64(name.substr(d1 + 1, d2 - d1 - 1), &ok_start);
  if (!ok_pid || !ok_start || pid == 0 || pid > 4194304) return true;
  return start_time_of(static_cast<pid_t>(pid)) != start;
}

bool has_nul(const std::string& s) {
  return s.find('\0') != std::string::npos;
}

std::string validate_command(const std::vector<std::string>& argv,
                             const std::map<std::string, std::string>& env) {
  if (argv.empty() || argv[0].empty() || argv[0][0] != '/')
    return "argv[0] must be an absolute path inside the sandbox";
  for (const auto& a : argv)
    if (has_nul(a)) return "argv contains a NUL byte";
  for (const auto& [k, v] : env)
    if (k.empty() || k.find('=') != std::string::npos || has_nul(k) || has_nul(v))
      return "invalid environment variable name or value: '" + k + "'";
  return {};
}

std::string validate(const launch_spec& spec) {
  if (auto bad = validate_command(spec.argv, spec.env); !bad.empty()) return bad;
  if (spec.hostname.empty() || spec.hostname.size() > 64 ||
      !std::all_of(spec.hostname.begin(), spec.hostname.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '-' || c == '.';
      }))
    return "hostname must be 1-64 characters of [A-Za-z0-9.-]";
  if (spec.lim.pids != 0 && spec.lim.pids < kMinPids)
    return "limits.pids must be 0 or at least " + std::to_string(kMinPids);
  if (spec.lim.open_files != 0 && spec.lim.open_files < kMinOpenFiles)
    return "limits.open_files must be 0 or at least " + std::to_string(kMinOpenFiles);
  return {};
}

struct fd_pair {
  unique_fd read;
  unique_fd write;
};

bool make_pipe(fd_pair& p) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return false;
  p.read.reset(fds[0]);
  p.write.reset(fds[1]);
  return true;
}

/// The agent socket of a persistent sandbox: .read = host end, .write = the init's.
/// SEQPACKET: one record per message, and fds travel with their SPAWN.
bool make_agent_socketpair(fd_pair& p) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) != 0) return false;
  p.read.reset(fds[0]);
  p.write.reset(fds[1]);
  return true;
}

int write_proc_file(pid_t pid, const char* name, const std::string& content) {
  const std::string path = "/proc/" + std::to_string(pid) + "/" + name;
  unique_fd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd) return errno;
  const ssize_t n = ::write(fd.get(), content.data(), content.size());
  if (n < 0) return errno;
  return static_cast<std::size_t>(n) == content.size() ? 0 : EIO;
}

/// Reads what is available on `fd` until EOF or the deadline.
std::string read_until_eof(int fd, std::chrono::steady_clock::time_point deadline) {
  std::string text;
  char buf[1024];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd pfd{fd, POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) break;
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  while (!text.empty() && text.back() == '\n') text.pop_back();
  return text;
}

class local_launcher final : public launcher {
 public:
  static make_launcher_result create(const launcher_config& cfg);

  explicit local_launcher(const launcher_config& cfg) : cfg_(cfg) {}

  launch_result launch(const launch_spec& spec) override;
  const std::vector<capability>& capabilities() const override { return caps_; }
  std::size_t live() const override { return live_->load(); }
  std::optional<zygote_status> zygote_state() override {
    if (!zygote_) return std::nullopt;
    return zygote_->status();
  }

 private:
  std::vector<rlimit_setting> rlimits_for(const limits& lim) const;
  std::string self_test();
  void describe_capabilities();

  launcher_config cfg_;
  std::string owner_;
  cgroup_layout cgroups_;
  rootfs_layout rootfs_;
  seccomp_program seccomp_;
  memory_range scrub_[2];
  std::shared_ptr<uid_pool> uids_;
  std::shared_ptr<clone_thread> cloner_;
  std::unique_ptr<zygote> zygote_;
  std::shared_ptr<std::atomic<std::size_t>> live_ = std::make_shared<std::atomic<std::size_t>>(0);
  std::atomic<std::uint64_t> next_seq_{0};
  std::vector<capability> caps_;
};

make_launcher_result local_launcher::create(const launcher_config& cfg) {
  make_launcher_result out;
  const std::uint64_t uid_end = static_cast<std::uint64_t>(cfg.uid_base) + cfg.uid_count;
  if (cfg.uid_count == 0 || cfg.uid_base == 0 || uid_end > 0xfffffffeull ||
      (cfg.uid_base <= kNobodyHostId && kNobodyHostId < uid_end)) {
    out.error =
        "launcher_config: uid_base/uid_count must give a uid range inside [1, 2^32-2) "
        "that does not contain 65534 (the sandbox root's host uid)";
    return out;
  }
  if (cfg.cgroup_prefix.empty() || cfg.cgroup_prefix.find('/') != std::string::npos ||
      cfg.cgroup_prefix[0] == '.') {
    out.error = "launcher_config: cgroup_prefix must be a plain directory name";
    return out;
  }
  auto l = std::make_unique<local_launcher>(cfg);
  l->owner_ = owner_tag(cfg.uid_base);
  std::string error;
  l->rootfs_ = probe_rootfs_layout(cfg.runner_dir, &error);
  if (!error.empty()) {
    out.error = "sandbox root filesystem: " + error;
    return out;
  }
  // The sandbox's root binds these as an unprivileged host uid: a path it cannot reach
  // fails the self-test with a bare EACCES, so say which directory is in the way.
  if (!cfg.runner_dir.empty()) {
    if (auto obstacle = unreachable_by_others(cfg.runner_dir); !obstacle.empty()) {
      out.error = "the sandboxes cannot reach their runners at " + cfg.runner_dir + ": " +
                  obstacle + " (the sandbox's user is host uid " + std::to_string(kNobodyHostId) +
                  " while it mounts, then a uid from " + std::to_string(cfg.uid_base) +
                  "). Make every directory on that path searchable by others (chmod o+x), "
                  "or point RUNTIME_DIR to such a directory.";
      return out;
    }
  }
  l->seccomp_ = seccomp_program::build_deny_list(&error);
  if (l->seccomp_.empty()) {
    out.error = error;
    return out;
  }
  static std::atomic<unsigned> probes{0};  // several launchers in one process
  l->cgroups_ =
      prepare_cgroup_layout(cfg.cgroup_prefix, l->owner_ + "-probe" + std::to_string(probes++));
  find_scrub_ranges(l->scrub_);
  l->uids_ = std::make_shared<uid_pool>(cfg.uid_base, cfg.uid_count);
  l->cloner_ = std::make_shared<clone_thread>();
  if (!l->cloner_->error().empty()) {
    out.error = "sandbox self-test failed: " + l->cloner_->error() + "." + kFixHint;
    return out;
  }
  if (auto failure = l->self_test(); !failure.empty()) {
    out.error = "sandbox self-test failed: " + failure + "." +
                (is_host_path_denied(failure) ? kHostPathHint : kFixHint);
    return out;
  }
  l->describe_capabilities();
  // After the self-test, which must exercise the exec path (the fallback).
  if (cfg.zygote) l->zygote_ = std::make_unique<zygote>(*cfg.zygote, l->cloner_);
  out.value = std::move(l);
  return out;
}

/// Starts a real sandbox running /bin/true: namespaces, mounts, procfs, cgroups and the
/// seccomp filter are all exercised exactly as for a runner.
std::string local_launcher::self_test() {
  launch_spec spec;
  spec.argv = {"/bin/true"};
  auto r = launch(spec);
  if (!r.process) return r.error;
  const auto deadline = std::chrono::steady_clock::now() + kSelfTestBudget;
  const std::string setup_error = read_until_eof(r.process->setup_error_fd(), deadline);
  for (;;) {
    if (auto st = r.process->try_wait()) {
      if (!setup_error.empty()) return setup_error;
      if (st->exit_code != 0)
        return "/bin/true in a test sandbox ended with exit code " + std::to_string(st->exit_code) +
               " signal " + std::to_string(st->signal);
      return {};
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return "the test sandbox did not finish within 15 s";
    pollfd pfd{r.process->exit_fd(), POLLIN, 0};
    ::poll(&pfd, 1, static_cast<int>(left.count()));
  }
}

void local_launcher::describe_capabilities() {
  const std::string uids =
      std::to_string(cfg_.uid_base) + ".." + std::to_string(cfg_.uid_base + cfg_.uid_count - 1);
  caps_ = {
      {"user namespace", true,
       "uid/gid 1000 = a dedicated host uid from " + uids +
           ", root = host 65534, setgroups deny, "
           "no supplementary groups, capabilities dropped"},
      {"pid namespace", true,
       "runner under a reaping, non-dumpable init (pid 1); PDEATHSIG + lifeline pipe"},
      {"mount namespace", true,
       "tmpfs root (read-only), read-only /usr and selected /etc, fresh /proc, minimal /dev, "
       "/home/user and /tmp tmpfs with size=, runner_dir at /opt/runner"},
      {"network namespace", true, "loopback only"},
      {"ipc/uts/cgroup namespaces", true, "private SysV IPC and hostname; cgroup root hidden"},
      {"cgroup v2 kill", cgroups_.v2_kill, cgroups_.v2_detail},
      {"cgroup memory", cgroups_.limits_memory(), cgroups_.memory_detail},
      {"cgroup pids", cgroups_.limits_pids(), cgroups_.pids_detail},
      {"seccomp", true,
       "deny-list (sandbox-design.md Appendix A), " + std::to_string(seccomp_.size()) +
           " BPF instructions, NO_NEW_PRIVS, foreign architectures killed"},
      {"rlimits", true,
       std::string("NPROC, NOFILE, FSIZE, CORE=0, MEMLOCK=64KiB, RTPRIO=0, NICE=0") +
           (cgroups_.limits_memory() ? ""
                                     : ", AS = max(2 x memory, 2 GiB) instead of a memory cgroup")},
  };
}

std::vector<rlimit_setting> local_launcher::rlimits_for(const limits& lim) const {
  std::vector<rlimit_setting> r;
  auto add = [&](int resource, const char* name, std::uint64_t value) {
    r.push_back({resource, name, {static_cast<rlim_t>(value), static_cast<rlim_t>(value)}});
  };
  // RLIMIT_NPROC counts every process of the host uid: it works because that uid is
  // dedicated to this sandbox.
  if (lim.pids)
    add(RLIMIT_NPROC, "NPROC",
        cgroups_.limits_pids() ? lim.pids + kNprocMarginOverCgroup : lim.pids);
  if (lim.open_files) add(RLIMIT_NOFILE, "NOFILE", lim.open_files);
  if (lim.file_size_bytes) add(RLIMIT_FSIZE, "FSIZE", lim.file_size_bytes);
  add(RLIMIT_CORE, "CORE", 0);
  add(RLIMIT_MEMLOCK, "MEMLOCK", kMemlock);
  add(RLIMIT_RTPRIO, "RTPRIO", 0);
  add(RLIMIT_NICE, "NICE", 0);
  if (lim.memory_bytes && !cgroups_.limits_memory())
    add(RLIMIT_AS, "AS", std::max(2 * lim.memory_bytes, kMinAddressSpace));
  return r;
}

launch_result local_launcher::launch(const launch_spec& spec) {
  launch_result out;
  if (auto bad = validate(spec); !bad.empty()) {
    out.error = "invalid launch_spec: " + bad;
    return out;
  }
  auto lease = uids_->acquire();
  if (!lease) {
    out.error = "all " + std::to_string(cfg_.uid_count) + " sandbox uid slots are in use";
    return out;
  }
  const std::string id = owner_ + "-" + std::to_string(next_seq_++);

  std::string error;
  sandbox_cgroups cgroups =
      sandbox_cgroups::create(cgroups_, id, spec.lim.memory_bytes, spec.lim.pids, &error);
  if (!error.empty()) {
    out.error = error;
    return out;
  }

  // --- everything the child will touch, computed now (it may not allocate) ---
  const std::uint64_t shm_bytes =
      spec.lim.workspace_bytes ? std::min(spec.lim.workspace_bytes, kMaxShm) : kMaxShm;
  const rootfs_plan mounts(rootfs_, {.workspace_bytes = spec.lim.workspace_bytes,
                                     .shm_bytes = shm_bytes,
                                     .hostname = spec.hostname,
                                     .sandbox_uid = kSandboxUid,
                                     .sandbox_gid = kSandboxUid});
  const std::vector<rlimit_setting> rlimits = rlimits_for(spec.lim);
  const exec_strings argv(spec.argv);
  const exec_strings envp(env_entries(spec.env));

  fd_pair release, lifeline, agent;
  if (!make_pipe(release) || !make_pipe(lifeline) ||
      (spec.persistent && !make_agent_socketpair(agent))) {
    out.error = errno_text("pipe/socketpair", errno);
    return out;
  }
  runner_fds host_ends, runner_ends;
  if (auto bad = make_runner_fds(lease->uid(), host_ends, runner_ends); !bad.empty()) {
    out.error = bad;
    return out;
  }

  child_plan plan;
  plan.fds.release_read = release.read.get();
  plan.fds.lifeline_read = lifeline.read.get();
  plan.fds.error_write = runner_ends.setup_error.get();
  for (int i = 0; i < 5; ++i) plan.fds.runner[i] = runner_ends.fd[i].get();
  plan.fds.agent = agent.write.get();
  plan.setup_base = rootfs_.setup_base.c_str();
  plan.mount_steps = mounts.steps();
  plan.mount_step_count = mounts.size();
  plan.hostname = spec.hostname.c_str();
  plan.hostname_len = spec.hostname.size();
  plan.sandbox_uid = kSandboxUid;
  plan.sandbox_gid = kSandboxUid;
  plan.rlimits = rlimits.data();
  plan.rlimit_count = rlimits.size();
  plan.seccomp = seccomp_.fprog();
  plan.argv = argv.data();
  plan.envp = envp.data();
  plan.scrub[0] = scrub_[0];
  plan.scrub[1] = scrub_[1];

  unique_fd cgroup_dir;
  if (!cgroups.v2_dir().empty())
    cgroup_dir.reset(::open(cgroups.v2_dir().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  std::optional<clone_thread::result> forked;
  if (zygote_ && zygote_->serves(spec)) {
    zygote_request q;
    q.spec = &spec;
    q.shm_bytes = shm_bytes;
    q.rlimits = rlimits;
    q.release_read = release.read.get();
    q.lifeline_read = lifeline.read.get();
    q.agent = agent.write.get();
    q.cgroup_dir = cgroup_dir.get();
    q.runner = &runner_ends;
    forked = zygote_->spawn(q);  // empty: not ready or failed; the exec path below
  }
  auto cloned =
      forked ? std::move(*forked) : cloner_->clone_child(plan, kNamespaceFlags, cgroup_dir.get());
  if (cloned.pid < 0) {
    out.error =
        errno_text("clone with new user, pid, mount, net, ipc and uts namespaces", cloned.error);
    return out;
  }

  // From here on the handle owns the child: any early return kills and reaps it.
  const std::uint32_t host_uid = lease->uid();
  sandbox_parts parts;
  parts.id = id;
  parts.init_pid = cloned.pid;
  parts.pidfd = std::move(cloned.pidfd);
  parts.first_runner = std::move(host_ends);
  parts.agent = std::move(agent.read);
  parts.lifeline_write = std::move(lifeline.write);
  parts.cgroups = std::move(cgroups);
  parts.uid = std::move(*lease);
  parts.keep_alive = cloner_;
  parts.live_count = live_;
  auto process = std::make_unique<local_sandbox_process>(std::move(parts));

  // The child is blocked on `release`: map its ids, then account it, then let it go.
  const std::string map = "0 " + std::to_string(kNobodyHostId) + " 1\n" +
                          std::to_string(kSandboxUid) + " " + std::to_string(host_uid) + " 1\n";
  int err = write_proc_file(cloned.pid, "uid_map", map);
  if (err == 0) err = write_proc_file(cloned.pid, "setgroups", "deny");
  if (err == 0) err = write_proc_file(cloned.pid, "gid_map", map);
  if (err != 0) {
    out.error = errno_text("write uid_map/gid_map of the sandbox init", err);
    return out;
  }
  if (std::string join_error; !process->join_cgroups(cloned.in_cgroup, &join_error)) {
    out.error = join_error;
    return out;
  }
  if (!process->release(release.write.get())) {
    out.error = errno_text("release the sandbox init", errno);
    return out;
  }
  out.process = std::move(process);
  return out;  // the child's ends of every pipe close here
}

}  // namespace

std::string validate_runner_spec(const runner_spec& spec) {
  if (auto bad = validate_command(spec.argv, spec.env); !bad.empty()) return bad;
  if (spec.workdir.empty() || spec.workdir[0] != '/' || has_nul(spec.workdir))
    return "workdir must be an absolute path inside the sandbox";
  if (spec.argv.size() > agent::kMaxStrings || spec.env.size() > agent::kMaxStrings)
    return "at most " + std::to_string(agent::kMaxStrings) + " argv and " +
           std::to_string(agent::kMaxStrings) + " environment entries";
  std::size_t bytes = sizeof(agent::agent_message) + spec.workdir.size() + 1;
  for (const auto& a : spec.argv) bytes += a.size() + 1;
  for (const auto& [k, v] : spec.env) bytes += k.size() + v.size() + 2;
  if (bytes > agent::kMaxMessageBytes)
    return "argv, environment and workdir take " + std::to_string(bytes) + " bytes; the limit is " +
           std::to_string(agent::kMaxMessageBytes);
  return {};
}

make_launcher_result make_launcher(const launcher_config& cfg) {
  return local_launcher::create(cfg);
}

std::size_t sweep_stale(const launcher_config& cfg) {
  return sweep_sandbox_cgroups(
             cfg.cgroup_prefix,
             [&](std::string_view name) { return is_stale_cgroup_name(name, cfg.uid_base); })
      .size();
}

}  // namespace codeexec::sandbox
