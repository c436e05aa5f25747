// The local sandbox launcher: starts one isolated sandbox (namespaces, tmpfs root,
// dedicated host uid, cgroups, rlimits, seccomp) whose init runs one language runner,
// or, when persistent, up to 32 runners ("kernels") started on request through the
// init's agent socket (agent_protocol.hpp; sandbox_channel.hpp drives it).
//
// This header is the contract between the sandbox backend and the actors that use it.
// Nothing here depends on CAF or RESTinio.
#pragma once

#include "sandbox/unique_fd.hpp"

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace codeexec::sandbox {

/// Per-sandbox resource limits. Zero means "no limit of this kind".
struct limits {
  std::uint64_t memory_bytes = 512ull << 20;    ///< whole tree, swap included (cgroup)
  std::uint64_t pids = 128;                     ///< tasks in the tree (cgroup + RLIMIT_NPROC)
  std::uint64_t workspace_bytes = 64ull << 20;  ///< tmpfs size of /home/user and /tmp each
  std::uint64_t file_size_bytes = 64ull << 20;  ///< RLIMIT_FSIZE
  std::uint64_t open_files = 256;               ///< RLIMIT_NOFILE
};

/// What to start inside a new sandbox.
struct launch_spec {
  /// argv of the runner, absolute paths as seen inside the sandbox.
  std::vector<std::string> argv;
  /// The runner's complete environment (the launcher adds nothing else).
  std::map<std::string, std::string> env;
  limits lim;
  std::string hostname = "sandbox";
  /// false: the init exits with its runner's status (one runner per sandbox).
  /// true: the init outlives its runners and serves the agent socket (agent_fd()):
  /// more runners start on request; the sandbox ends when the host closes the agent.
  bool persistent = false;
};

/// Another runner of a persistent sandbox (sandbox_channel::start_kernel).
struct runner_spec {
  std::vector<std::string> argv;           ///< absolute paths inside the sandbox
  std::map<std::string, std::string> env;  ///< the runner's complete environment
  std::string workdir = "/home/user";      ///< absolute, inside the sandbox
};

/// Empty, or why `spec` cannot be started (relative argv[0], NUL bytes, bad env names,
/// relative workdir, more than 256 argv or env entries, over 64 KiB in all).
std::string validate_runner_spec(const runner_spec& spec);

/// One runner's fds: index i is the runner's fd i (0 stdin, 1 stdout, 2 stderr,
/// 3 requests, 4 events), plus its setup-error pipe. Either the runner's ends or the
/// host's ends (the other end of each pipe or socket).
struct runner_fds {
  unique_fd fd[5];
  unique_fd setup_error;  ///< runner: write end (CLOEXEC: EOF once exec'd); host: read end
};

/// A zygote for one runner command (zygote.hpp).
struct zygote_config {
  /// The runner command this zygote stands in for (exact match, e.g. the Python kernel's);
  /// its argv[0] is the interpreter the zygote runs.
  std::vector<std::string> runner_argv;
  /// The environment it starts with: the runner's (locale and encodings are fixed at
  /// interpreter start, so requests with other LANG/LC_* values take the exec path).
  std::map<std::string, std::string> env;
  std::string script;      ///< host path of python_zygote.py
  std::string library;     ///< host path of libcodeexec_zygote.so
  std::string runner_dir;  ///< host runner directory (bound at /opt/runner)
  /// Forks after which the zygote is replaced by a freshly exec'd one (a new address
  /// layout and hash seed for the sandboxes after).
  std::uint64_t max_forks = 500;
};

/// A zygote's state, for /health.
struct zygote_status {
  std::string state;  ///< "starting", "ready", "down"
  pid_t pid = -1;
  std::uint64_t forks = 0;      ///< sandboxes forked, all generations
  std::uint64_t fallbacks = 0;  ///< launches it could have served that took the exec path
  std::uint64_t starts = 0;     ///< processes started (1 + replacements)
  std::string last_error;
};

/// Server-wide launcher configuration.
struct launcher_config {
  /// Host directory bound read-only at /opt/runner inside every sandbox.
  std::string runner_dir;
  /// First host uid of the dedicated range; slot i uses uid_base + i (uid and gid).
  std::uint32_t uid_base = 200000;
  /// Number of slots, i.e. the maximum number of live sandboxes.
  std::uint32_t uid_count = 1024;
  /// Name of the service's cgroup subtree (under the service's own cgroup).
  std::string cgroup_prefix = "codeexec";
  /// Set: launches of its runner are forked from a zygote (while it is ready).
  std::optional<zygote_config> zygote;
};

/// One mechanism and whether it is enforced here, for start-up logs and /health.
struct capability {
  std::string name;  ///< e.g. "user namespace", "cgroup v1 memory", "seccomp"
  bool available = false;
  std::string detail;  ///< how, or why not
};

/// How a sandbox's init ended.
struct exit_status {
  int exit_code = -1;  ///< when it exited normally
  int signal = 0;      ///< when it was killed by a signal
};

/// Resource usage read from the sandbox's cgroups (zero where unknown).
struct usage {
  std::uint64_t peak_memory_bytes = 0;
  std::uint64_t cpu_ns = 0;
  std::uint64_t oom_kills = 0;
  std::uint64_t pids_limit_hits = 0;
};

/// A running sandbox. Owning: the destructor kills the whole tree (cgroup.kill and
/// SIGKILL of the init), reaps it, removes its cgroups and returns its uid slot.
class sandbox_process {
 public:
  virtual ~sandbox_process() = default;

  /// Host pid of the sandbox's init (pid 1 inside).
  virtual pid_t init_pid() const = 0;
  /// pidfd of the init: becomes readable when the init exits.
  virtual int exit_fd() const = 0;
  /// Host end of the request channel (runner fd 3). Write frames here.
  virtual int control_fd() const = 0;
  /// Host end of the event channel (runner fd 4). Read frames here.
  virtual int events_fd() const = 0;
  /// Read end of the runner's stdout pipe (fd 1) and stderr pipe (fd 2).
  virtual int stdout_fd() const = 0;
  virtual int stderr_fd() const = 0;
  /// Write end of the runner's stdin pipe (fd 0); -1 once closed.
  virtual int stdin_fd() const = 0;
  /// Closes the write end of the runner's stdin: its reads see end-of-file.
  virtual void close_stdin() = 0;
  /// Read end of the setup-error pipe: a one-line reason if setup failed before
  /// the runner was exec'd; EOF otherwise.
  virtual int setup_error_fd() const = 0;

  /// Persistent sandboxes: the host end of the agent socket to the init (SOCK_SEQPACKET,
  /// agent_protocol.hpp); -1 otherwise.
  virtual int agent_fd() const = 0;
  bool persistent() const { return agent_fd() >= 0; }
  /// Shuts the agent socket down (the fd stays valid, so a thread polling it is safe):
  /// a persistent init exits with code 0, and the kernel kills the rest of the
  /// sandbox. Idempotent; no-op for a non-persistent sandbox.
  virtual void close_agent() = 0;
  /// New pipes and sockets for another runner: `runner` gets the ends to pass to the
  /// init, `host` the service's. The runner's stdio belongs to the sandbox user, as for
  /// the first runner. Empty, or why not.
  virtual std::string make_runner_fds(runner_fds& host, runner_fds& runner) = 0;
  /// Host uid (and gid) of the sandbox's processes.
  virtual std::uint32_t host_uid() const = 0;

  /// Forwards SIGINT to the runner (the init relays it; in a persistent sandbox, to the
  /// runner of slot 0 while it runs). Returns false if gone.
  virtual bool interrupt() = 0;
  /// Kills every process of the sandbox now (idempotent, non-blocking).
  virtual void kill() = 0;
  /// Reaps the init if it has exited; empty while it still runs. Non-blocking.
  virtual std::optional<exit_status> try_wait() = 0;
  /// Current resource usage.
  virtual usage read_usage() const = 0;
  /// CPU time of the whole tree so far, in ns (0 where it cannot be measured).
  virtual std::uint64_t read_cpu_ns() const = 0;
  /// Short id used in cgroup and log names.
  virtual const std::string& id() const = 0;
};

/// Result of a launch: a sandbox, or a human-readable reason.
struct launch_result {
  std::unique_ptr<sandbox_process> process;
  std::string error;  ///< set when process is null
};

/// Starts sandboxes. Thread-safe: launch() may be called from several threads.
class launcher {
 public:
  virtual ~launcher() = default;

  /// Starts a sandbox without waiting for the runner to be ready.
  virtual launch_result launch(const launch_spec& spec) = 0;
  /// What this host can enforce (probed once at creation).
  virtual const std::vector<capability>& capabilities() const = 0;
  /// Number of live sandboxes.
  virtual std::size_t live() const = 0;
  /// The zygote's state; empty when there is none.
  virtual std::optional<zygote_status> zygote_state() { return std::nullopt; }
};

/// Probes the host and builds a launcher; on failure `error` says why and how to fix it.
struct make_launcher_result {
  std::unique_ptr<launcher> value;
  std::string error;
};
make_launcher_result make_launcher(const launcher_config& cfg);

/// Removes what a crashed predecessor with the same uid base left behind (stale
/// sandbox cgroups); another instance's, even in another pid namespace, stay. Returns
/// how many were removed.
std::size_t sweep_stale(const launcher_config& cfg);

}  // namespace codeexec::sandbox
