// Tests of the files API into a live sandbox (sandbox/sandbox_files.hpp). They start
// real sandboxes whose runner is a shell fed commands on stdin, which plays the
// hostile code: it plants symlinks, FIFOs and big files, and checks ownership from
// inside. Needs root on a host with user namespaces, like launcher_test.cpp.
// Every wait has a deadline; a files call that hangs aborts the test binary.
#include "sandbox/sandbox_files.hpp"

#include "sandbox/launcher.hpp"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <future>
#include <memory>
#include <optional>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace sbx = codeexec::sandbox;
using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;
using sbx::file_errc;

namespace {

constexpr std::uint64_t kWorkspace = 4 << 20;

/// Host uids of their own (launcher_test.cpp uses 400000 + pid % 8192 * 128 + [0, 128)).
sbx::launcher_config files_config() {
  sbx::launcher_config cfg;
  cfg.uid_base = 1'600'000 + static_cast<std::uint32_t>(::getpid() % 8192) * 32;
  cfg.uid_count = 32;
  cfg.cgroup_prefix = "codeexec-files-test";
  return cfg;
}

sbx::launcher& files_launcher() {
  static std::unique_ptr<sbx::launcher> instance = [] {
    auto r = sbx::make_launcher(files_config());
    if (!r.value) FAIL("make_launcher: " << r.error);
    return std::move(r.value);
  }();
  return *instance;
}

std::string read_host_file(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

bool host_exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

int ms_left(steady::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

/// "Uid:" line of /proc/<pid>/status: the real uid.
std::uint32_t host_uid_of(pid_t pid) {
  std::istringstream status(read_host_file("/proc/" + std::to_string(pid) + "/status"));
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("Uid:", 0) == 0) return static_cast<std::uint32_t>(std::stoul(line.substr(4)));
  return 0;
}

/// Runs `f` on another thread; a call that does not return within `budget` is a hang
/// the tests must not wait out, so the binary aborts.
template <class F>
auto within(F&& f, std::chrono::seconds budget = 10s) {
  auto done = std::async(std::launch::async, std::forward<F>(f));
  if (done.wait_for(budget) != std::future_status::ready) {
    std::fprintf(stderr, "sandbox_files_test: a files call hung for %llds\n",
                 static_cast<long long>(budget.count()));
    std::abort();
  }
  return done.get();
}

/// A host directory with a secret the sandbox must never reveal; removed at exit.
struct host_dir {
  std::string path;
  explicit host_dir(const char* prefix) {
    std::string tmpl = std::string("/tmp/") + prefix + "-XXXXXX";
    path = ::mkdtemp(tmpl.data());
  }
  ~host_dir() {
    const std::string cmd = "rm -rf '" + path + "'";
    if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "cannot remove %s\n", path.c_str());
  }
};

/// A sandbox whose runner is /bin/sh reading commands from its stdin.
struct shell_sandbox {
  std::unique_ptr<sbx::sandbox_process> proc;
  std::uint32_t uid = 0;
  std::optional<sbx::sandbox_files> files;

  explicit shell_sandbox(std::uint64_t workspace = kWorkspace) {
    sbx::launch_spec spec;
    spec.argv = {"/bin/sh"};
    spec.env = {{"PATH", "/usr/bin:/bin"}, {"HOME", "/home/user"}, {"LANG", "C.UTF-8"}};
    spec.lim.workspace_bytes = workspace;
    auto launched = files_launcher().launch(spec);
    REQUIRE_MESSAGE(launched.process, launched.error);
    proc = std::move(launched.process);
    // The setup pipe reaches EOF when the runner is exec'd, i.e. the mounts are done.
    const auto deadline = steady::now() + 20s;
    std::string setup_error;
    char buf[512];
    for (;;) {
      pollfd pfd{proc->setup_error_fd(), POLLIN, 0};
      REQUIRE(::poll(&pfd, 1, ms_left(deadline)) == 1);
      const ssize_t n = ::read(proc->setup_error_fd(), buf, sizeof buf);
      if (n <= 0) break;
      setup_error.append(buf, static_cast<std::size_t>(n));
    }
    REQUIRE_MESSAGE(setup_error.empty(), setup_error);
    REQUIRE(sh("echo ready") == "ready\n");
    uid = host_uid_of(proc->init_pid());
    REQUIRE(uid >= files_config().uid_base);
    files.emplace(proc->init_pid(), sbx::unique_fd(::fcntl(proc->exit_fd(), F_DUPFD_CLOEXEC, 0)),
                  uid, uid);
  }

  /// Sends a line of shell to the runner without waiting.
  void send(const std::string& cmd) {
    const std::string line = "{ " + cmd + "\n} 2>&1; echo \"__END__$?\"\n";
    REQUIRE(::write(proc->stdin_fd(), line.data(), line.size()) ==
            static_cast<ssize_t>(line.size()));
  }
  /// Reads the runner's output until `needle` (a complete line) appears, within `budget`.
  std::string read_until(const std::string& needle, std::chrono::seconds budget = 10s) {
    const auto deadline = steady::now() + budget;
    char buf[4096];
    while (pending_.find(needle) == std::string::npos) {
      pollfd pfd{proc->stdout_fd(), POLLIN, 0};
      REQUIRE_MESSAGE(::poll(&pfd, 1, ms_left(deadline)) == 1, "waiting for " << needle);
      const ssize_t n = ::read(proc->stdout_fd(), buf, sizeof buf);
      REQUIRE(n > 0);
      pending_.append(buf, static_cast<std::size_t>(n));
    }
    const auto end = pending_.find(needle);
    std::string out = pending_.substr(0, end);
    pending_.erase(0, end + needle.size());
    return out;
  }
  /// Runs `cmd` (stdout and stderr merged); returns its output, plus "exit N\n" if it
  /// failed.
  std::string sh(const std::string& cmd, std::chrono::seconds budget = 10s) {
    send(cmd);
    std::string out = read_until("__END__", budget);
    const std::string status = read_until("\n", budget);
    if (status != "0") out += "exit " + status + "\n";
    return out;
  }

  // The files calls, each under a deadline.
  sbx::file_result<std::string> read(const std::string& path, std::uint64_t max = 1 << 20) {
    return within([&] { return files->read(path, max); });
  }
  sbx::file_result<std::uint64_t> write(const std::string& path, const std::string& data) {
    return within([&] { return files->write(path, data); });
  }
  sbx::file_result<sbx::dir_listing> list(const std::string& path) {
    return within([&] { return files->list(path); });
  }

 private:
  std::string pending_;
};

#define CHECK_ERR(expr, expected)                                         \
  do {                                                                    \
    const auto& res_ = (expr);                                            \
    INFO(#expr);                                                          \
    REQUIRE_MESSAGE(!res_.ok(), "expected " << sbx::to_string(expected)); \
    INFO(res_.error().message);                                           \
    CHECK(sbx::to_string(res_.error().code) == sbx::to_string(expected)); \
  } while (0)

std::string binary_blob(std::size_t size) {
  std::string data(size, '\0');
  std::uint32_t x = 2463534242u;
  for (auto& c : data) {
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    c = static_cast<char>(x);
  }
  data[0] = '\0';
  data[1] = '\n';
  data[2] = '\xff';
  return data;
}

}  // namespace

TEST_CASE("sandbox files: write then read round-trips binary data owned by the sandbox user") {
  shell_sandbox s;
  const std::string blob = binary_blob(300'000);
  auto w = s.write("a/b/c/blob.bin", blob);
  REQUIRE_MESSAGE(w.ok(), w.error().message);
  CHECK(w.value() == blob.size());
  auto r = s.read("/home/user/a/b/c/blob.bin", blob.size());
  REQUIRE_MESSAGE(r.ok(), r.error().message);
  CHECK(r.value() == blob);

  // From inside: uid 1000 owns the file and the directories made for it, and can use them.
  CHECK(s.sh("cd /home/user && stat -c '%n %u %g %a %F' a a/b a/b/c a/b/c/blob.bin") ==
        "a 1000 1000 755 directory\n"
        "a/b 1000 1000 755 directory\n"
        "a/b/c 1000 1000 755 directory\n"
        "a/b/c/blob.bin 1000 1000 644 regular file\n");
  CHECK(s.sh("wc -c < /home/user/a/b/c/blob.bin") == std::to_string(blob.size()) + "\n");
  CHECK(s.sh("echo more >> /home/user/a/b/c/blob.bin && mkdir /home/user/a/b/c/mine && "
             "rm /home/user/a/b/c/blob.bin && echo ok") == "ok\n");

  // Overwrite truncates; empty data makes an empty file; /tmp is the other tree.
  REQUIRE(s.write("note.txt", "a long first version").ok());
  REQUIRE(s.write("note.txt", "short").ok());
  CHECK(s.read("note.txt").value() == "short");
  REQUIRE(s.write("/tmp/empty", "").ok());
  CHECK(s.read("/tmp/empty").value().empty());
  CHECK(s.sh("cat /home/user/note.txt; echo; stat -c '%u %a' /tmp/empty") == "short\n1000 644\n");

  // A file the code made is read as is, and rewritten keeping its mode.
  CHECK(s.sh("printf 'from code' > /home/user/code.txt && chmod 600 /home/user/code.txt") == "");
  CHECK(s.read("code.txt").value() == "from code");
  REQUIRE(s.write("code.txt", "from host").ok());
  CHECK(s.sh("cat /home/user/code.txt; echo; stat -c '%u %a' /home/user/code.txt") ==
        "from host\n1000 600\n");
}

TEST_CASE("sandbox files: directories, missing files and non-directory parents") {
  shell_sandbox s;
  CHECK_ERR(s.write("/home/user", "x"), file_errc::is_directory);
  CHECK_ERR(s.write("/tmp/", "x"), file_errc::is_directory);
  CHECK(s.sh("mkdir /home/user/dir && printf x > /home/user/file") == "");
  CHECK_ERR(s.write("dir", "x"), file_errc::is_directory);
  CHECK_ERR(s.read("dir"), file_errc::not_a_file);
  CHECK_ERR(s.write("file/x", "x"), file_errc::not_a_directory);
  CHECK_ERR(s.write("file/x/y", "x"), file_errc::not_a_directory);
  CHECK_ERR(s.read("missing.txt"), file_errc::not_found);
  CHECK_ERR(s.read("missing/deeper.txt"), file_errc::not_found);
  auto r = s.read("/home/user/missing.txt");
  REQUIRE(!r.ok());
  CHECK(r.error().message == "/home/user/missing.txt: no such file or directory");
}

TEST_CASE("sandbox files: invalid paths and paths outside the workspace are refused") {
  shell_sandbox s;
  CHECK_ERR(s.read(""), file_errc::invalid_path);
  CHECK_ERR(s.write(std::string("a\0b", 3), "x"), file_errc::invalid_path);
  CHECK_ERR(s.read(std::string(5000, 'a')), file_errc::invalid_path);
  CHECK_ERR(s.write(std::string(300, 'n'), "x"), file_errc::invalid_path);  // NAME_MAX
  for (const char* path : {"/etc/passwd", "/proc/1/environ", "/", "/home", "/home/username/x",
                           "/tmpfoo", "/usr/bin/sh", "/opt/runner/x"}) {
    INFO(path);
    CHECK_ERR(s.read(path), file_errc::outside_workspace);
    CHECK_ERR(s.write(path, "x"), file_errc::outside_workspace);
    CHECK_ERR(s.list(path), file_errc::outside_workspace);
  }
  for (const char* path : {"../../etc/passwd", "..", "/home/user/../../etc/passwd",
                           "/tmp/../etc/passwd", "../../proc/1/environ"}) {
    INFO(path);
    CHECK_ERR(s.read(path), file_errc::outside_workspace);
    CHECK_ERR(s.write(path, "x"), file_errc::outside_workspace);
  }
  CHECK_ERR(s.list(".."), file_errc::outside_workspace);
  // `..` that stays inside is the kernel's business and fine.
  REQUIRE(s.write("sub/file", "inside").ok());
  CHECK(s.read("sub/../sub/file").value() == "inside");
  CHECK(s.sh("test -e /etc/x || echo no-x") == "no-x\n");
}

TEST_CASE("sandbox files: symlinks planted by the code cannot reach the host or leave the tree") {
  host_dir secret_dir("sbxfiles-secret");
  const std::string secret = "TOPSECRET-" + std::to_string(::getpid());
  std::ofstream(secret_dir.path + "/secret") << secret;
  REQUIRE(read_host_file(secret_dir.path + "/secret") == secret);

  shell_sandbox s;
  const std::string host_secret = secret_dir.path + "/secret";
  CHECK(
      s.sh("cd /home/user && ln -s /etc/shadow shadow && ln -s /etc/passwd passwd && "
           "ln -s /proc/self/root selfroot && ln -s /proc/1/root initroot && "
           "ln -s ../../.. up && ln -s /tmp totmp && echo hi > /tmp/x && "
           "ln -s /proc/self/root" +
           host_secret + " leak1 && ln -s /proc/1/root" + host_secret + " leak2 && ln -s " +
           host_secret +
           " leak3 && ln -s /proc/self/environ env && "
           "ln -s /proc/self/root" +
           host_secret +
           " /tmp/leak4 && printf real > real.txt && ln -s real.txt inside && "
           "mkdir sub && ln -s ../real.txt sub/upone && ln -s loop1 loop2 && ln -s loop2 loop1") ==
      "");

  for (const std::string& path : std::vector<std::string>{
           "shadow", "passwd", "selfroot/etc/passwd", "selfroot" + host_secret,
           "initroot/etc/passwd", "up/etc/passwd", "up" + host_secret, "totmp/x", "leak1", "leak2",
           "leak3", "/tmp/leak4", "env", "/home/user/up/proc/1/environ"}) {
    INFO(path);
    auto r = s.read(path);
    CHECK_ERR(r, file_errc::outside_workspace);
    if (!r.ok()) CHECK(r.error().message.find("TOPSECRET") == std::string::npos);
  }
  for (const char* path : {"selfroot", "initroot", "up", "totmp", "selfroot/tmp"}) {
    INFO(path);
    CHECK_ERR(s.list(path), file_errc::outside_workspace);
  }
  CHECK_ERR(s.read("loop1"), file_errc::invalid_path);

  // Symlinks that stay inside the tree are followed for reading and listing.
  CHECK(s.read("inside").value() == "real");
  CHECK(s.read("sub/upone").value() == "real");
  CHECK(s.list("sub").ok());
  CHECK(read_host_file(host_secret) == secret);
}

TEST_CASE("sandbox files: writing through a planted symlink creates nothing outside") {
  host_dir victim_dir("sbxfiles-victim");
  const std::string victim = victim_dir.path + "/victim";
  std::ofstream(victim) << "original";

  shell_sandbox s;
  CHECK(s.sh("cd /home/user && ln -s /proc/self/root" + victim + " w1 && ln -s /proc/self/root" +
             victim_dir.path + "/new w2 && ln -s /proc/self/root" + victim_dir.path +
             " d && ln -s " + victim_dir.path +
             " d2 && ln -s ../../.. up && ln -s /tmp t && "
             "printf real > real.txt && ln -s real.txt ok && ln -s /home/user/real.txt abs && "
             "ln -s /etc/passwd passwd") == "");

  CHECK_ERR(s.write("w1", "pwned"), file_errc::not_a_file);
  CHECK_ERR(s.write("w2", "pwned"), file_errc::not_a_file);
  CHECK_ERR(s.write("d/created", "pwned"), file_errc::outside_workspace);
  CHECK_ERR(s.write("d/sub/created", "pwned"), file_errc::outside_workspace);
  CHECK_ERR(s.write("d2/created", "pwned"), file_errc::outside_workspace);
  CHECK_ERR(s.write("up/tmp/pwned", "pwned"), file_errc::outside_workspace);
  CHECK_ERR(s.write("up/etc/pwned", "pwned"), file_errc::outside_workspace);
  CHECK_ERR(s.write("t/pwned", "pwned"), file_errc::outside_workspace);
  CHECK_ERR(s.write("t/sub/pwned", "pwned"), file_errc::outside_workspace);
  CHECK_ERR(s.write("passwd", "pwned"), file_errc::not_a_file);
  // Symlinks are not followed when writing, even inside the tree.
  CHECK_ERR(s.write("ok", "pwned"), file_errc::not_a_file);
  CHECK_ERR(s.write("abs", "pwned"), file_errc::not_a_file);

  CHECK(read_host_file(victim) == "original");
  CHECK_FALSE(host_exists(victim_dir.path + "/new"));
  CHECK_FALSE(host_exists(victim_dir.path + "/created"));
  CHECK_FALSE(host_exists(victim_dir.path + "/sub"));
  CHECK_FALSE(host_exists("/tmp/pwned"));
  CHECK(s.sh("cat /home/user/real.txt; echo; ls /tmp; test -e /etc/pwned || echo no-etc") ==
        "real\nno-etc\n");

  // remove() unlinks the symlink, never its target.
  s.files->remove("w1");
  s.files->remove("d/victim");
  CHECK(read_host_file(victim) == "original");
  CHECK(s.sh("test -L /home/user/w1 || echo gone") == "gone\n");
}

TEST_CASE(
    "sandbox files: a FIFO planted by the code is neither read nor written, and nothing hangs") {
  shell_sandbox s;
  CHECK(s.sh("mkfifo /home/user/f /tmp/f && ln -s f /home/user/tofifo") == "");
  CHECK_ERR(s.read("f"), file_errc::not_a_file);
  CHECK_ERR(s.read("/tmp/f"), file_errc::not_a_file);
  CHECK_ERR(s.read("tofifo"), file_errc::not_a_file);
  CHECK_ERR(s.write("f", "x"), file_errc::not_a_file);
  CHECK_ERR(s.write("/tmp/f", "x"), file_errc::not_a_file);

  // With a reader and a writer in the sandbox holding the FIFO open, still refused.
  s.send("cat /home/user/f > /home/user/got & exec 7>/home/user/f; echo opened");
  CHECK(s.read_until("opened\n") == "");
  CHECK(s.read_until("\n").find("__END__") != std::string::npos);
  CHECK_ERR(s.read("f"), file_errc::not_a_file);
  CHECK_ERR(s.write("f", "x"), file_errc::not_a_file);
  CHECK(s.sh("exec 7>&-; wait; wc -c < /home/user/got") == "0\n");
}

TEST_CASE("sandbox files: a file larger than max_bytes is too_large") {
  shell_sandbox s;
  REQUIRE(s.write("k.txt", std::string(1000, 'k')).ok());
  CHECK_ERR(s.read("k.txt", 999), file_errc::too_large);
  CHECK(s.read("k.txt", 1000).value().size() == 1000);
  CHECK_ERR(s.read("k.txt", 0), file_errc::too_large);
  REQUIRE(s.write("zero", "").ok());
  CHECK(s.read("zero", 0).ok());
  // A sparse file beyond the workspace size (under RLIMIT_FSIZE): refused from its size.
  CHECK(s.sh("truncate -s 60M /home/user/sparse") == "");
  CHECK_ERR(s.read("sparse", 1 << 20), file_errc::too_large);
}

TEST_CASE("sandbox files: filling past the workspace size is no_space and leaves no partial file") {
  shell_sandbox s;
  const std::string big(2 * kWorkspace, 'b');
  CHECK_ERR(s.write("big.bin", big), file_errc::no_space);
  CHECK_ERR(s.read("big.bin", big.size()), file_errc::not_found);
  CHECK_ERR(s.write("/tmp/deep/big.bin", big), file_errc::no_space);
  CHECK_ERR(s.read("/tmp/deep/big.bin", big.size()), file_errc::not_found);
  // An existing file overwritten with too much is gone, not half written.
  REQUIRE(s.write("keep.txt", "small").ok());
  CHECK_ERR(s.write("keep.txt", big), file_errc::no_space);
  CHECK_ERR(s.read("keep.txt"), file_errc::not_found);
  // The space is back: a file of half the workspace fits, and the code sees it.
  REQUIRE(s.write("half.bin", std::string(kWorkspace / 2, 'h')).ok());
  CHECK(s.sh("ls /home/user; wc -c < /home/user/half.bin") ==
        "half.bin\n" + std::to_string(kWorkspace / 2) + "\n");
}

TEST_CASE("sandbox files: list marks types, sizes and modes, sorted by name") {
  shell_sandbox s;
  CHECK(s.sh("cd /home/user && mkdir d && chmod 700 d && printf hello > f && chmod 600 f && "
             "ln -s f l && mkfifo p && printf 12 > a") == "");
  auto l = s.list("/home/user");
  REQUIRE_MESSAGE(l.ok(), l.error().message);
  const auto& e = l.value().entries;
  CHECK_FALSE(l.value().truncated);
  REQUIRE(e.size() == 5);
  CHECK(e[0].name == "a");
  CHECK(e[0].path == "/home/user/a");
  CHECK(e[0].type == sbx::entry_type::file);
  CHECK(e[0].size == 2);
  CHECK(e[1].name == "d");
  CHECK(e[1].type == sbx::entry_type::dir);
  CHECK(e[1].mode == 0700);
  CHECK(e[2].name == "f");
  CHECK(e[2].type == sbx::entry_type::file);
  CHECK(e[2].size == 5);
  CHECK(e[2].mode == 0600);
  CHECK(e[3].name == "l");
  CHECK(e[3].type == sbx::entry_type::symlink);
  CHECK(e[4].name == "p");
  CHECK(e[4].type == sbx::entry_type::other);

  // Relative paths are under /home/user; entry paths are absolute.
  REQUIRE(s.write("d/inner.txt", "x").ok());
  auto inner = s.list("d");
  REQUIRE(inner.ok());
  REQUIRE(inner.value().entries.size() == 1);
  CHECK(inner.value().entries[0].path == "/home/user/d/inner.txt");
  auto tmp = s.list("/tmp");
  REQUIRE(tmp.ok());
  CHECK(tmp.value().entries.empty());

  CHECK_ERR(s.list("f"), file_errc::not_a_directory);
  CHECK_ERR(s.list("l"), file_errc::not_a_directory);
  CHECK_ERR(s.list("p"), file_errc::not_a_directory);
  CHECK_ERR(s.list("nope"), file_errc::not_found);

  // More than the cap: capped and marked truncated.
  CHECK(s.sh("mkdir /home/user/many && cd /home/user/many && seq 1 10005 | xargs touch && "
             "ls | wc -l",
             30s) == "10005\n");
  auto many = s.list("many");
  REQUIRE(many.ok());
  CHECK(many.value().truncated);
  CHECK(many.value().entries.size() == sbx::sandbox_files::kMaxListEntries);
}

TEST_CASE("sandbox files: make_stdin_fifo feeds a process in the sandbox, then EOF") {
  shell_sandbox s;
  auto made = within([&] { return s.files->make_stdin_fifo(); });
  REQUIRE_MESSAGE(made.ok(), made.error().message);
  sbx::stdin_fifo fifo = std::move(made).value();
  CHECK(std::regex_match(fifo.path, std::regex("/tmp/\\.stdin-[0-9a-f]{16}")));
  REQUIRE(fifo.writer);
  CHECK((::fcntl(fifo.writer.get(), F_GETFD) & FD_CLOEXEC) != 0);
  CHECK(s.sh("stat -c '%u %g %a %F' " + fifo.path) == "1000 1000 600 fifo\n");

  // Written before the runner opens it: buffered in the FIFO.
  REQUIRE(::write(fifo.writer.get(), "hello\n", 6) == 6);
  s.send("exec 5<" + fifo.path + "; rm " + fifo.path + "; echo opened; cat <&5; exec 5<&-; " +
         "echo catdone");
  CHECK(s.read_until("opened\n") == "");
  REQUIRE(::write(fifo.writer.get(), "world\n", 6) == 6);
  fifo.writer.reset();  // the runner's cat sees EOF
  CHECK(s.read_until("__END__") == "hello\nworld\ncatdone\n");
  CHECK(s.read_until("\n") == "0");
  CHECK(s.sh("ls -a /tmp") == ".\n..\n");

  // Two FIFOs get different names; remove() cleans up one that was never opened.
  auto a = within([&] { return s.files->make_stdin_fifo(); });
  auto b = within([&] { return s.files->make_stdin_fifo(); });
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(a.value().path != b.value().path);
  s.files->remove(a.value().path);
  s.files->remove(b.value().path);
  CHECK(s.sh("ls -a /tmp") == ".\n..\n");
}

TEST_CASE("sandbox files: a sandbox that has exited is sandbox_gone") {
  shell_sandbox s;
  REQUIRE(s.write("x", "x").ok());
  s.proc->kill();
  // Exited but not yet reaped (a zombie): already gone.
  pollfd pfd{s.proc->exit_fd(), POLLIN, 0};
  REQUIRE(::poll(&pfd, 1, 10'000) == 1);
  CHECK_ERR(s.read("x"), file_errc::sandbox_gone);
  const auto deadline = steady::now() + 10s;
  while (!s.proc->try_wait() && steady::now() < deadline) std::this_thread::sleep_for(10ms);
  CHECK_ERR(s.read("x"), file_errc::sandbox_gone);
  CHECK_ERR(s.write("x", "y"), file_errc::sandbox_gone);
  CHECK_ERR(s.list("/tmp"), file_errc::sandbox_gone);
  CHECK_ERR(within([&] { return s.files->make_stdin_fifo(); }), file_errc::sandbox_gone);
  s.files->remove("x");  // no-op, no crash
  s.proc.reset();
  CHECK_ERR(s.read("x"), file_errc::sandbox_gone);
}

TEST_CASE("sandbox files: concurrent calls from several threads") {
  shell_sandbox s;
  constexpr int kThreads = 8, kRounds = 20;
  std::vector<std::future<std::string>> workers;
  for (int t = 0; t < kThreads; ++t)
    workers.push_back(std::async(std::launch::async, [&s, t] {
      for (int i = 0; i < kRounds; ++i) {
        const std::string path = "t" + std::to_string(t) + "/f" + std::to_string(i);
        const std::string data = binary_blob(1000 + static_cast<std::size_t>(t * 100 + i));
        auto w = s.files->write(path, data);
        if (!w.ok()) return path + ": " + w.error().message;
        auto r = s.files->read(path, 1 << 20);
        if (!r.ok() || r.value() != data) return path + ": read back differs";
        auto l = s.files->list("t" + std::to_string(t));
        if (!l.ok() || l.value().entries.size() != static_cast<std::size_t>(i + 1))
          return path + ": listing differs";
      }
      // The files calls switch the thread's fs ids to the sandbox user's and back.
      for (const char* key : {"Uid:", "Gid:"}) {
        std::istringstream status(read_host_file("/proc/thread-self/status"));
        std::string line;
        while (std::getline(status, line))
          if (line.rfind(key, 0) == 0 && line.substr(line.find_last_of(" \t") + 1) != "0")
            return "this thread kept " + line;
      }
      return std::string();
    }));
  for (auto& w : workers) {
    REQUIRE(w.wait_for(30s) == std::future_status::ready);
    CHECK(w.get() == "");
  }
}
