// Helpers shared by the sandbox tests (launcher_test.cpp, sandbox_channel_test.cpp): one
// launcher per test process, its uid range and runner dir, deadline-bound reads, and the
// leak checks (processes of a uid, cgroup directories). They start real sandboxes, so
// they need root on a host with user namespaces (like the service itself).
#pragma once

#include "sandbox/launcher.hpp"
#include "sandbox/runner_stage.hpp"

#include <doctest/doctest.h>

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace sandbox_test {

namespace sbx = codeexec::sandbox;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

inline constexpr std::uint32_t kUidsPerLauncher = 32;

/// A uid range per test process, so concurrent test runs never share a host uid.
inline std::uint32_t test_uid_base() {
  // Fixed at the first call: a forked test child keeps its parent's range.
  static const std::uint32_t base = 400000 + static_cast<std::uint32_t>(::getpid() % 8192) * 128;
  return base;
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

/// Host directory bound at /opt/runner; removed at exit.
struct runner_dir {
  std::string path;
  runner_dir() {
    char tmpl[] = "/tmp/launcher-test-XXXXXX";
    path = ::mkdtemp(tmpl);
    std::ofstream(path + "/hello.txt") << "hello from the runner dir\n";
    ::chmod(path.c_str(), 0755);
    ::chmod((path + "/hello.txt").c_str(), 0644);
  }
  ~runner_dir() {
    ::unlink((path + "/hello.txt").c_str());
    ::rmdir(path.c_str());
  }
};

inline const runner_dir& test_runner_dir() {
  static runner_dir dir;
  return dir;
}

/// The real runners of the source tree, staged as the service stages them: the
/// sandbox's user could not reach the clone itself where it lives under /root (0700
/// on Debian). Removed at exit.
struct staged_runner_dir {
  runner_dir runtime;  ///< the RUNTIME_DIR of this test process
  std::optional<sbx::runner_stage> stage;
  staged_runner_dir() { stage.emplace(CODEEXEC_SOURCE_DIR "/sandbox/runners", runtime.path); }
  ~staged_runner_dir() {
    stage.reset();
    ::unlink((runtime.path + "/.sweep.lock").c_str());
  }
};

inline const std::string& staged_runners() {
  static const staged_runner_dir dir;
  return dir.stage->path();
}

inline sbx::launcher_config test_config(std::uint32_t uid_offset = 0) {
  sbx::launcher_config cfg;
  cfg.runner_dir = test_runner_dir().path;
  cfg.uid_base = test_uid_base() + uid_offset;
  cfg.uid_count = kUidsPerLauncher;
  cfg.cgroup_prefix = "codeexec-test";
  return cfg;
}

/// One launcher for the tests that do not need their own.
inline sbx::launcher& shared_launcher() {
  static std::unique_ptr<sbx::launcher> instance = [] {
    auto r = sbx::make_launcher(test_config());
    if (!r.value) FAIL("make_launcher: " << r.error);
    return std::move(r.value);
  }();
  return *instance;
}

inline const sbx::capability* find_capability(const sbx::launcher& l, const std::string& name) {
  for (const auto& c : l.capabilities())
    if (c.name == name) return &c;
  return nullptr;
}

inline std::map<std::string, std::string> python_env() {
  return {{"PATH", "/usr/bin:/bin"}, {"LANG", "C.UTF-8"}, {"HOME", "/home/user"}};
}

inline sbx::launch_spec python_spec(const std::string& code, sbx::limits lim = {}) {
  sbx::launch_spec spec;
  spec.argv = {"/usr/bin/python3", "-I", "-u", "-c", code};
  spec.env = python_env();
  spec.lim = lim;
  return spec;
}

inline int ms_left(steady::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

/// Reads until `needle` appears, EOF or the deadline. Returns everything read.
inline std::string read_until(int fd, const std::string& needle, steady::time_point deadline) {
  std::string text;
  char buf[4096];
  while (needle.empty() || text.find(needle) == std::string::npos) {
    pollfd pfd{fd, POLLIN, 0};
    if (::poll(&pfd, 1, ms_left(deadline)) <= 0) break;
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n <= 0) break;
    text.append(buf, static_cast<std::size_t>(n));
  }
  return text;
}

inline std::string read_to_eof(int fd, steady::time_point deadline) {
  return read_until(fd, "", deadline);
}

inline bool write_all(int fd, const std::string& data) {
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

inline std::optional<sbx::exit_status> wait_exit(sbx::sandbox_process& p,
                                                 steady::time_point deadline) {
  for (;;) {
    if (auto st = p.try_wait()) return st;
    if (ms_left(deadline) == 0) return std::nullopt;
    pollfd pfd{p.exit_fd(), POLLIN, 0};
    ::poll(&pfd, 1, ms_left(deadline));
  }
}

struct run_result {
  std::string setup_error, out, err;
  std::optional<sbx::exit_status> status;
  sbx::usage use;
};

/// Launches, collects stdout/stderr to EOF and the exit status, within `budget`.
inline run_result run(sbx::launcher& l, const sbx::launch_spec& spec,
                      std::chrono::seconds budget = 20s) {
  run_result r;
  auto launched = l.launch(spec);
  REQUIRE_MESSAGE(launched.process, launched.error);
  auto& p = *launched.process;
  const auto deadline = steady::now() + budget;
  r.setup_error = read_to_eof(p.setup_error_fd(), deadline);
  ::close(::dup(p.stdin_fd()));  // (keep stdin open: the runner decides when to read)
  bool out_open = true, err_open = true;
  char buf[65536];
  while ((out_open || err_open) && ms_left(deadline) > 0) {
    pollfd fds[2] = {{out_open ? p.stdout_fd() : -1, POLLIN, 0},
                     {err_open ? p.stderr_fd() : -1, POLLIN, 0}};
    if (::poll(fds, 2, ms_left(deadline)) <= 0) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].revents == 0) continue;
      const ssize_t n = ::read(fds[i].fd, buf, sizeof buf);
      if (n <= 0) {
        (i == 0 ? out_open : err_open) = false;
        continue;
      }
      (i == 0 ? r.out : r.err).append(buf, static_cast<std::size_t>(n));
    }
  }
  r.status = wait_exit(p, deadline);
  r.use = p.read_usage();
  return r;
}

/// Host pids whose real, effective, saved or fs uid is `uid`.
inline std::vector<pid_t> processes_of_uid(std::uint32_t uid) {
  std::vector<pid_t> pids;
  DIR* d = ::opendir("/proc");
  if (!d) return pids;
  while (const dirent* e = ::readdir(d)) {
    char* end = nullptr;
    const long pid = std::strtol(e->d_name, &end, 10);
    if (pid <= 0 || *end != '\0') continue;
    std::istringstream status(read_file("/proc/" + std::string(e->d_name) + "/status"));
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("Uid:", 0) != 0) continue;
      std::istringstream ids(line.substr(4));
      std::uint32_t id = 0;
      bool match = false;
      while (ids >> id) match |= id == uid;
      if (match) pids.push_back(static_cast<pid_t>(pid));
      break;
    }
  }
  ::closedir(d);
  return pids;
}

/// "Uid:" (or another key) line of /proc/<pid>/status, values only.
inline std::vector<std::uint32_t> status_ids(pid_t pid, const std::string& key) {
  std::istringstream status(read_file("/proc/" + std::to_string(pid) + "/status"));
  std::string line;
  std::vector<std::uint32_t> ids;
  while (std::getline(status, line)) {
    if (line.rfind(key + ":", 0) != 0) continue;
    std::istringstream in(line.substr(key.size() + 1));
    std::uint32_t id = 0;
    while (in >> id) ids.push_back(id);
  }
  return ids;
}

inline std::uint32_t host_uid_of(pid_t pid) {
  const auto ids = status_ids(pid, "Uid");
  return ids.empty() ? 0 : ids[0];
}

/// The runner: the init's only direct child right after start.
inline pid_t child_of(pid_t parent, steady::time_point deadline) {
  do {
    DIR* d = ::opendir("/proc");
    while (const dirent* e = d ? ::readdir(d) : nullptr) {
      char* end = nullptr;
      const long pid = std::strtol(e->d_name, &end, 10);
      if (pid <= 0 || *end != '\0') continue;
      const std::string stat = read_file("/proc/" + std::string(e->d_name) + "/stat");
      const auto paren = stat.rfind(')');
      if (paren == std::string::npos) continue;
      std::istringstream rest(stat.substr(paren + 1));
      std::string state;
      long ppid = 0;
      rest >> state >> ppid;
      if (ppid == parent) {
        ::closedir(d);
        return static_cast<pid_t>(pid);
      }
    }
    if (d) ::closedir(d);
    std::this_thread::sleep_for(5ms);
  } while (ms_left(deadline) > 0);
  return -1;
}

/// Every directory named sbx-<id> in this process's cgroup hierarchies (the layout the
/// launcher documents: <own cgroup>/<prefix>/sbx-<id>).
inline std::vector<std::string> cgroup_dirs_of(const std::string& id, const std::string& prefix) {
  std::vector<std::string> found;
  std::istringstream lines(read_file("/proc/self/cgroup"));
  std::string line;
  while (std::getline(lines, line)) {
    const auto c1 = line.find(':'), c2 = line.find(':', c1 + 1);
    const std::string controllers = line.substr(c1 + 1, c2 - c1 - 1);
    std::string own = line.substr(c2 + 1);
    if (own == "/") own.clear();
    std::vector<std::string> mounts;
    if (controllers.empty())
      mounts = {"/sys/fs/cgroup/unified", "/sys/fs/cgroup"};
    else if (controllers == "memory" || controllers == "pids")
      mounts = {"/sys/fs/cgroup/" + controllers};
    for (const auto& m : mounts) {
      const std::string dir = m + own + "/" + prefix + "/sbx-" + id;
      struct stat st {};
      if (::stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) found.push_back(dir);
    }
  }
  return found;
}

/// Runs `body` in a forked child (own process: may change its mount namespace, install
/// seccomp filters or be SIGKILLed). The child's exit code is the result; `body`
/// reports details through the pipe. Returns {exit code, message}.
template <typename Body>
inline std::pair<int, std::string> in_child_process(Body body, std::chrono::seconds budget = 60s) {
  test_runner_dir();  // created (and later removed) by this process, not the child
  int fds[2];
  REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    int code = 99;
    try {
      code = body(fds[1]);
    } catch (...) {
    }
    ::_exit(code);
  }
  ::close(fds[1]);
  const std::string message = read_to_eof(fds[0], steady::now() + budget);
  ::close(fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), message};
}

inline void child_say(int fd, const std::string& text) {
  write_all(fd, text + "\n");
}

}  // namespace sandbox_test
