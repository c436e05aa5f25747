// Tests of sandbox_channel (sandbox/sandbox_channel.hpp) and of the persistent init's
// agent behind it (sandbox/agent_protocol.hpp). Real sandboxes, tiny Python and Node
// kernels speaking the runner protocol; every wait has a deadline.
#include "sandbox/sandbox_channel.hpp"

#include "sandbox/sandbox_test_support.hpp"

#include <doctest/doctest.h>

#include <elf.h>
#include <link.h>
#include <signal.h>

#include <condition_variable>
#include <functional>
#include <mutex>

using namespace sandbox_test;

namespace {

/// A minimal kernel: "ready" with its pid and $NAME, then runs each exec request's
/// code (which may call send(event)) and answers "end".
constexpr const char* kPythonKernel = R"(
import json, os, signal, struct, sys
def send(ev):
    b = json.dumps(ev).encode()
    os.write(4, struct.pack('>I', len(b)) + b)
def read_exact(n):
    b = b''
    while len(b) < n:
        c = os.read(3, n - len(b))
        if not c:
            sys.exit(0)
        b += c
    return b
send({'type': 'ready', 'pid': os.getpid(), 'name': os.environ.get('NAME', '')})
while True:
    r = json.loads(read_exact(struct.unpack('>I', read_exact(4))[0]))
    exec(r['code'])
    send({'type': 'end', 'id': r.get('id', ''), 'status': 'ok'})
)";

sbx::runner_spec python_kernel(const std::string& name) {
  sbx::runner_spec spec;
  spec.argv = {"/usr/bin/python3", "-I", "-S", "-u", "-c", kPythonKernel};
  spec.env = python_env();
  spec.env["NAME"] = name;
  return spec;
}

sbx::launch_spec launch_of(const sbx::runner_spec& runner, bool persistent = true) {
  sbx::launch_spec spec;
  spec.argv = runner.argv;
  spec.env = runner.env;
  spec.persistent = persistent;
  return spec;
}

nlohmann::json exec_request(const std::string& code) {
  return {{"op", "exec"}, {"id", "cell"}, {"code", code}};
}

struct kernel_exit {
  unsigned kernel = 0;
  sbx::exit_status status;
  std::string setup_error;
};

/// Collects what the channel's thread reports; waits with a deadline.
class recorder {
 public:
  sbx::sandbox_callbacks callbacks() {
    sbx::sandbox_callbacks c;
    c.on_event = [this](unsigned k, nlohmann::json event) {
      record([&] { events_.emplace_back(k, std::move(event)); });
    };
    c.on_output_limit = [this](unsigned k, std::string_view stream) {
      record([&] { limits_.emplace_back(k, std::string{stream}); });
    };
    c.on_protocol_error = [this](unsigned k, std::string reason) {
      record([&] { protocol_errors_.emplace_back(k, std::move(reason)); });
    };
    c.on_kernel_exit = [this](unsigned k, sbx::exit_status status, std::string setup_error) {
      record([&] {
        exits_.push_back({k, status, std::move(setup_error)});
        order_.push_back("exit " + std::to_string(k));
      });
    };
    c.on_exit = [this](sbx::exit_status status, std::string setup_error) {
      record([&] {
        sandbox_exit_ = kernel_exit{0, status, std::move(setup_error)};
        order_.push_back("sandbox exit");
      });
    };
    return c;
  }

  /// The first event of `kernel` of `type` after the `skip` first ones, within 20 s.
  std::optional<nlohmann::json> event(unsigned kernel, const std::string& type,
                                      std::size_t skip = 0) {
    std::optional<nlohmann::json> found;
    wait([&] {
      std::size_t seen = 0;
      for (const auto& [k, e] : events_)
        if (k == kernel && e.value("type", "") == type && seen++ == skip) {
          found = e;
          return true;
        }
      return false;
    });
    return found;
  }
  /// The `nth` exit of `kernel`, within 20 s.
  std::optional<kernel_exit> exit_of(unsigned kernel, std::size_t nth = 0) {
    std::optional<kernel_exit> found;
    wait([&] {
      std::size_t seen = 0;
      for (const auto& e : exits_)
        if (e.kernel == kernel && seen++ == nth) {
          found = e;
          return true;
        }
      return false;
    });
    return found;
  }
  std::optional<kernel_exit> sandbox_exit() {
    std::optional<kernel_exit> found;
    wait([&] { return (found = sandbox_exit_).has_value(); });
    return found;
  }
  /// Everything kernel `kernel` sent on `type` ("stdout"/"stderr"), joined.
  std::string text(unsigned kernel, const std::string& type) {
    std::lock_guard lock{mutex_};
    std::string joined;
    for (const auto& [k, e] : events_)
      if (k == kernel && e.value("type", "") == type) joined += e.value("text", "");
    return joined;
  }
  std::size_t exit_count() {
    std::lock_guard lock{mutex_};
    return exits_.size();
  }
  std::vector<std::string> order() {
    std::lock_guard lock{mutex_};
    return order_;
  }
  std::vector<std::pair<unsigned, std::string>> limits() {
    std::lock_guard lock{mutex_};
    return limits_;
  }
  bool wait_protocol_error(unsigned kernel) {
    return wait([&] {
      for (const auto& e : protocol_errors_)
        if (e.first == kernel) return true;
      return false;
    });
  }
  std::vector<std::pair<unsigned, std::string>> protocol_errors() {
    std::lock_guard lock{mutex_};
    return protocol_errors_;
  }
  /// Waits until `pred` (run under the lock) holds, at most `budget`.
  bool wait(const std::function<bool()>& pred, steady::duration budget = 20s) {
    std::unique_lock lock{mutex_};
    return cv_.wait_for(lock, budget, pred);
  }

 private:
  template <typename F>
  void record(F f) {
    {
      std::lock_guard lock{mutex_};
      f();
    }
    cv_.notify_all();
  }

  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<std::pair<unsigned, nlohmann::json>> events_;
  std::vector<std::pair<unsigned, std::string>> limits_;
  std::vector<std::pair<unsigned, std::string>> protocol_errors_;
  std::vector<kernel_exit> exits_;
  std::optional<kernel_exit> sandbox_exit_;
  std::vector<std::string> order_;
};

/// A persistent sandbox running kernel 0 (`python_kernel("k0")` unless given), with
/// its channel; destroyed channel first, then the process.
struct persistent_sandbox {
  recorder rec;
  std::unique_ptr<sbx::sandbox_process> process;
  std::unique_ptr<sbx::sandbox_channel> channel;

  explicit persistent_sandbox(const sbx::runner_spec& first = python_kernel("k0"),
                              std::uint64_t max_output = 1 << 20, bool persistent = true) {
    auto launched = shared_launcher().launch(launch_of(first, persistent));
    REQUIRE_MESSAGE(launched.process, launched.error);
    process = std::move(launched.process);
    process->close_stdin();
    channel = std::make_unique<sbx::sandbox_channel>(*process, max_output, rec.callbacks());
  }
  ~persistent_sandbox() {
    channel.reset();
    process.reset();
  }
  /// Starts `spec` in `kernel` and waits for its ready event (the `nth` one of that slot).
  nlohmann::json start(unsigned kernel, const sbx::runner_spec& spec, std::size_t nth = 0) {
    const auto error = channel->start_kernel(kernel, spec);
    REQUIRE_MESSAGE(error.empty(), error);
    auto ready = rec.event(kernel, "ready", nth);
    REQUIRE_MESSAGE(ready, "kernel " << kernel << " did not get ready");
    return *ready;
  }
  /// Runs `code` in `kernel` and waits for its `nth` end.
  void exec(unsigned kernel, const std::string& code, std::size_t nth = 0) {
    channel->send(kernel, exec_request(code));
    REQUIRE_MESSAGE(rec.event(kernel, "end", nth), "kernel " << kernel << " did not end the cell");
  }
};

int count_fds() {
  int n = 0;
  DIR* d = ::opendir("/proc/self/fd");
  while (d && ::readdir(d)) ++n;
  if (d) ::closedir(d);
  return n;
}

}  // namespace

TEST_CASE("the persistent init survives its first runner's exit and reports it") {
  persistent_sandbox s;
  REQUIRE(s.rec.event(0, "ready"));
  s.channel->send(0, exec_request("os._exit(7)"));
  const auto exited = s.rec.exit_of(0);
  REQUIRE(exited);
  CHECK(exited->status.exit_code == 7);
  CHECK(exited->status.signal == 0);
  CHECK(exited->setup_error.empty());
  CHECK_FALSE(s.process->try_wait());  // the init lives on
  // The agent still serves: a new kernel, and a new runner in slot 0.
  CHECK(s.start(1, python_kernel("k1"))["name"] == "k1");
  CHECK(s.start(0, python_kernel("k0 again"), 1)["name"] == "k0 again");
  s.exec(0, "send({'type': 'stdout', 'text': 'still here'})");
  CHECK(s.rec.text(0, "stdout") == "still here");
}

TEST_CASE("kernels of one sandbox share /home/user, whatever their language") {
  persistent_sandbox s;
  REQUIRE(s.rec.event(0, "ready"));
  s.exec(0, "open('/home/user/shared.txt', 'w').write('from kernel 0')");

  const auto t0 = steady::now();
  s.start(1, python_kernel("k1"));
  const auto python_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - t0).count();
  s.exec(1, "send({'type': 'stdout', 'text': open('/home/user/shared.txt').read()})");
  CHECK(s.rec.text(1, "stdout") == "from kernel 0");

  // A JavaScript kernel: one event with the file's content, then it waits for EOF on fd 3.
  sbx::runner_spec node;
  node.argv = {"/usr/bin/node", "-e",
               "const fs = require('fs');"
               "const b = Buffer.from(JSON.stringify({type: 'stdout', text: "
               "fs.readFileSync('/home/user/shared.txt', 'utf8') + ' seen by node'}));"
               "const h = Buffer.alloc(4); h.writeUInt32BE(b.length);"
               "fs.writeSync(4, Buffer.concat([h, b]));"
               "fs.writeSync(1, process.cwd() + '\\n');"};
  node.env = python_env();
  node.workdir = "/tmp";
  const auto t1 = steady::now();
  REQUIRE(s.channel->start_kernel(2, node).empty());
  const auto node_exit = s.rec.exit_of(2);
  const auto node_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - t1).count();
  REQUIRE(node_exit);
  CHECK(node_exit->status.exit_code == 0);
  CHECK(s.rec.text(2, "stdout") == "from kernel 0 seen by node/tmp\n");
  MESSAGE("second kernel (python) ready after " << python_ms << " ms; node kernel ran in "
                                                << node_ms << " ms");

  // A third Python kernel, restarting the node kernel's slot.
  s.start(2, python_kernel("k2"));
  s.exec(2, "send({'type': 'stdout', 'text': str(os.getuid()) + ' ' + os.getcwd()})");
  CHECK(s.rec.text(2, "stdout").find("1000 /home/user") != std::string::npos);
}

TEST_CASE("a started kernel is confined exactly like the first runner") {
  persistent_sandbox s;
  REQUIRE(s.rec.event(0, "ready"));
  const std::string probe =
      "import resource, stat\n"
      "status = dict(l.split(':\\t', 1) for l in open('/proc/self/status').read().splitlines())\n"
      "extra = []\n"
      "for fd in range(5, 1024):\n"
      "    try:\n"
      "        os.fstat(fd); extra.append(fd)\n"
      "    except OSError:\n"
      "        pass\n"
      "kinds = ['pipe' if stat.S_ISFIFO(os.fstat(fd).st_mode) else\n"
      "         'sock' if stat.S_ISSOCK(os.fstat(fd).st_mode) else '?' for fd in range(5)]\n"
      "send({'type': 'stdout', 'text': ' '.join(str(x) for x in [\n"
      "    status['Uid'].split()[0], status['Seccomp'].strip(), status['NoNewPrivs'].strip(),\n"
      "    status['CapEff'].strip(), resource.getrlimit(resource.RLIMIT_NOFILE)[0],\n"
      "    os.getsid(0) == os.getpid(), os.getpgid(0) == os.getpid(), extra, kinds,\n"
      "    os.read(0, 10), os.getppid()])})\n";
  s.exec(0, probe);
  s.start(1, python_kernel("k1"));
  s.exec(1, probe);
  const auto first = s.rec.text(0, "stdout");
  CHECK(first ==
        "1000 2 1 0000000000000000 256 True True [] ['pipe', 'pipe', 'pipe', 'sock', "
        "'sock'] b'' 1");
  CHECK(s.rec.text(1, "stdout") == first);
}

TEST_CASE("a kernel killed by SIGKILL reports signal 9 and can be restarted in its slot") {
  persistent_sandbox s;
  REQUIRE(s.rec.event(0, "ready"));
  const auto first = s.start(3, python_kernel("k3"));
  s.channel->signal(3, SIGKILL);
  const auto exited = s.rec.exit_of(3);
  REQUIRE(exited);
  CHECK(exited->status.signal == SIGKILL);
  CHECK(exited->setup_error.empty());
  const auto second = s.start(3, python_kernel("k3 again"), 1);
  CHECK(second["pid"] != first["pid"]);
  // Kernel 0 never noticed.
  s.exec(0, "send({'type': 'stdout', 'text': 'k0 alive'})");
  CHECK(s.rec.text(0, "stdout") == "k0 alive");
}

TEST_CASE("SIGINT reaches only the kernel it is sent to") {
  persistent_sandbox s;
  REQUIRE(s.rec.event(0, "ready"));
  const std::string count_sigints =
      "interrupts = [0]\n"
      "signal.signal(signal.SIGINT, lambda *_: (interrupts.__setitem__(0, interrupts[0] + 1),"
      " send({'type': 'stdout', 'text': 'SIGINT'})))\n";
  for (unsigned k : {1u, 2u}) {
    s.start(k, python_kernel("k" + std::to_string(k)));
    s.exec(k, count_sigints);
  }
  s.channel->signal(1, SIGINT);
  REQUIRE(s.rec.event(1, "stdout"));
  CHECK(s.rec.text(1, "stdout") == "SIGINT");
  // The signal was sent (synchronously) before kernel 2 is asked: it would have it by now.
  s.exec(2, "send({'type': 'stdout', 'text': 'count %d' % interrupts[0]})", 1);
  CHECK(s.rec.text(2, "stdout") == "count 0");
  // Kernel 0's SIGINT still comes through the init's relay too.
  s.exec(0, count_sigints);
  CHECK(s.process->interrupt());
  REQUIRE(s.rec.event(0, "stdout"));
  CHECK(s.rec.text(0, "stdout") == "SIGINT");
}

TEST_CASE("a signal to the whole group also reaches the kernel's children") {
  persistent_sandbox s;
  REQUIRE(s.rec.event(0, "ready"));
  s.start(1, python_kernel("k1"));
  // The kernel survives SIGTERM (a handler); its child (same process group) does not.
  s.exec(1,
         "import subprocess, threading\n"
         "signal.signal(signal.SIGTERM, lambda *_: send({'type': 'stdout', 'text': 'TERM'}))\n"
         "def start_child():\n"
         "    p = subprocess.Popen(['/bin/sleep', '60'])\n"
         "    send({'type': 'child', 'pid': p.pid})\n"
         "    threading.Thread(target=lambda: send({'type': 'child_ended', 'rc': p.wait()}),"
         " daemon=True).start()\n"
         "start_child()\n");
  const auto child = s.rec.event(1, "child");
  REQUIRE(child);
  s.channel->signal(1, SIGTERM, true);
  const auto ended = s.rec.event(1, "child_ended");
  REQUIRE(ended);
  CHECK((*ended)["rc"] == -SIGTERM);
  REQUIRE(s.rec.event(1, "stdout"));
  CHECK(s.rec.text(1, "stdout") == "TERM");

  // SIGKILL to the group: the kernel and its new child end.
  s.exec(1, "start_child()", 1);
  const auto second_child = s.rec.event(1, "child", 1);
  REQUIRE(second_child);
  const int pid = (*second_child)["pid"].get<int>();
  s.channel->signal(1, SIGKILL, true);
  const auto exited = s.rec.exit_of(1);
  REQUIRE(exited);
  CHECK(exited->status.signal == SIGKILL);
  // Seen from another kernel of the sandbox (same pid namespace): the child is gone
  // once the init has reaped it.
  s.exec(0,
         "import time\n"
         "deadline = time.monotonic() + 10\n"
         "while os.path.exists('/proc/" +
             std::to_string(pid) +
             "') and time.monotonic() < deadline:\n"
             "    time.sleep(0.01)\n"
             "send({'type': 'stdout', 'text': 'gone' if not os.path.exists('/proc/" +
             std::to_string(pid) + "') else 'alive'})\n");
  CHECK(s.rec.text(0, "stdout") == "gone");
}

TEST_CASE("a kernel that cannot start reports why, and start_kernel refuses what it must") {
  persistent_sandbox s;
  REQUIRE(s.rec.event(0, "ready"));

  SUBCASE("a missing binary: execve") {
    sbx::runner_spec spec = python_kernel("missing");
    spec.argv = {"/nonexistent/prog", "arg"};
    REQUIRE(s.channel->start_kernel(4, spec).empty());
    const auto exited = s.rec.exit_of(4);
    REQUIRE(exited);
    INFO(exited->setup_error);
    CHECK(exited->status.exit_code == 125);
    CHECK(exited->setup_error.find("execve /nonexistent/prog") != std::string::npos);
    CHECK(exited->setup_error.find("No such file or directory (ENOENT)") != std::string::npos);
    // The slot is free again.
    s.start(4, python_kernel("k4"));
  }
  SUBCASE("a missing workdir: chdir") {
    sbx::runner_spec spec = python_kernel("bad cwd");
    spec.workdir = "/home/user/nope";
    REQUIRE(s.channel->start_kernel(5, spec).empty());
    const auto exited = s.rec.exit_of(5);
    REQUIRE(exited);
    CHECK(exited->status.exit_code == 125);
    CHECK(exited->setup_error.find("chdir /home/user/nope") != std::string::npos);
  }
  SUBCASE("refusals") {
    CHECK(s.channel->start_kernel(0, python_kernel("x")).find("busy") != std::string::npos);
    CHECK(s.channel->start_kernel(32, python_kernel("x")).find("does not exist") !=
          std::string::npos);
    sbx::runner_spec relative = python_kernel("x");
    relative.argv = {"python3"};
    CHECK(s.channel->start_kernel(1, relative).find("absolute") != std::string::npos);
    sbx::runner_spec huge = python_kernel("x");
    huge.env["BIG"] = std::string(70000, 'x');
    CHECK(s.channel->start_kernel(1, huge).find("limit") != std::string::npos);
    REQUIRE(s.channel->start_kernel(1, python_kernel("k1")).empty());
    CHECK(s.channel->start_kernel(1, python_kernel("again")).find("busy") != std::string::npos);
    REQUIRE(s.rec.event(1, "ready"));
  }
}

TEST_CASE("32 kernels run at once in one sandbox") {
  // A shell kernel: "ready", then it waits for a request line on fd 3 until killed.
  sbx::runner_spec sleeper;
  sleeper.argv = {"/bin/sh", "-c",
                  "printf '\\000\\000\\000\\020{\"type\":\"ready\"}' >&4; read x <&3"};
  sleeper.env = python_env();
  persistent_sandbox s(sleeper);
  const auto t0 = steady::now();
  for (unsigned k = 1; k < sbx::sandbox_channel::max_kernels; ++k)
    REQUIRE(s.channel->start_kernel(k, sleeper).empty());
  for (unsigned k = 0; k < sbx::sandbox_channel::max_kernels; ++k)
    REQUIRE_MESSAGE(s.rec.event(k, "ready"), "kernel " << k);
  MESSAGE("31 shell kernels started and ready in "
          << std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - t0).count()
          << " ms");
  for (unsigned k = 0; k < sbx::sandbox_channel::max_kernels; ++k) s.channel->signal(k, SIGKILL);
  for (unsigned k = 0; k < sbx::sandbox_channel::max_kernels; ++k) {
    const auto exited = s.rec.exit_of(k);
    REQUIRE_MESSAGE(exited, "kernel " << k);
    CHECK(exited->status.signal == SIGKILL);
  }
  CHECK_FALSE(s.process->try_wait());
}

TEST_CASE("closing the agent ends the persistent sandbox and leaves nothing behind") {
  auto& launcher = shared_launcher();
  const int fds_before = count_fds();
  std::uint32_t uid = 0;
  std::string id;
  {
    persistent_sandbox s;
    REQUIRE(s.rec.event(0, "ready"));
    s.start(1, python_kernel("k1"));
    // Something that outlives its kernel's request loop: a setsid daemon.
    s.exec(1,
           "if os.fork() == 0:\n"
           "    os.setsid()\n"
           "    import time\n"
           "    time.sleep(60)\n");
    uid = host_uid_of(s.process->init_pid());
    id = s.process->id();
    CHECK(processes_of_uid(uid).size() >= 4);  // init, two kernels, the daemon
    s.process->close_agent();
    const auto ended = s.rec.sandbox_exit();
    REQUIRE(ended);
    CHECK(ended->status.exit_code == 0);
    CHECK(ended->setup_error.empty());
    for (unsigned k : {0u, 1u}) {
      const auto exited = s.rec.exit_of(k);
      REQUIRE(exited);
      CHECK(exited->status.signal == SIGKILL);
    }
    const auto order = s.rec.order();
    REQUIRE(!order.empty());
    CHECK(order.back() == "sandbox exit");
    // The init has exited: the kernel killed its pid namespace.
    CHECK(s.process->try_wait());
  }
  CHECK(processes_of_uid(uid).empty());
  CHECK(cgroup_dirs_of(id, "codeexec-test").empty());
  CHECK(count_fds() == fds_before);
  CHECK(launcher.live() == 0);
}

TEST_CASE("a non-persistent sandbox behaves as before through the channel") {
  SUBCASE("kernel 0's exit ends the sandbox") {
    persistent_sandbox s(python_kernel("k0"), 1 << 20, false);
    REQUIRE(s.rec.event(0, "ready"));
    CHECK(s.channel->start_kernel(1, python_kernel("k1")).find("not persistent") !=
          std::string::npos);
    s.channel->send(0, exec_request("print('bye'); os._exit(3)"));
    const auto ended = s.rec.sandbox_exit();
    REQUIRE(ended);
    CHECK(ended->status.exit_code == 3);
    const auto exited = s.rec.exit_of(0);
    REQUIRE(exited);
    CHECK(exited->status.exit_code == 3);
    CHECK(s.rec.text(0, "stdout") == "bye\n");
    CHECK(s.rec.order() == std::vector<std::string>{"exit 0", "sandbox exit"});
  }
  SUBCASE("a setup error reaches both callbacks") {
    sbx::runner_spec missing;
    missing.argv = {"/nonexistent/prog"};
    persistent_sandbox s(missing, 1 << 20, false);
    const auto ended = s.rec.sandbox_exit();
    REQUIRE(ended);
    CHECK(ended->status.exit_code == 125);
    CHECK(ended->setup_error.find("execve /nonexistent/prog") != std::string::npos);
    const auto exited = s.rec.exit_of(0);
    REQUIRE(exited);
    CHECK(exited->setup_error == ended->setup_error);
  }
  SUBCASE("SIGINT through the relay, SIGKILL kills the sandbox") {
    persistent_sandbox s(python_kernel("k0"), 1 << 20, false);
    REQUIRE(s.rec.event(0, "ready"));
    s.exec(0,
           "signal.signal(signal.SIGINT, lambda *_: send({'type': 'stdout', 'text': 'SIGINT'}))");
    s.channel->signal(0, SIGINT);
    REQUIRE(s.rec.event(0, "stdout"));
    s.channel->signal(0, SIGKILL);
    const auto ended = s.rec.sandbox_exit();
    REQUIRE(ended);
    CHECK(ended->status.signal == SIGKILL);
    const auto exited = s.rec.exit_of(0);
    REQUIRE(exited);
    CHECK(exited->status.signal == SIGKILL);
  }
}

TEST_CASE("protocol errors and output caps are per kernel") {
  persistent_sandbox s(python_kernel("k0"), 4096);
  REQUIRE(s.rec.event(0, "ready"));
  s.start(1, python_kernel("k1"));
  s.start(2, python_kernel("k2"));
  s.channel->send(1, exec_request("os.write(4, b'\\0\\0\\0\\x03{x}')"));
  REQUIRE(s.rec.wait_protocol_error(1));
  s.exec(2, "print('x' * 10000, flush=True)");
  // The same frame drains the raw pipes first: the cap is reported with kernel 2's end.
  const auto limits = s.rec.limits();
  REQUIRE(limits.size() == 1);
  CHECK(limits[0] == std::pair<unsigned, std::string>{2, "stdout"});
  CHECK(s.rec.text(2, "stdout").size() == 4096);
  const auto errors = s.rec.protocol_errors();
  REQUIRE(errors.size() == 1);
  CHECK(errors[0].first == 1);
  CHECK(errors[0].second == "runner sent invalid JSON");
  // Kernel 0's budget is its own, and a new cell on kernel 2 starts counting anew.
  s.exec(0, "print('y' * 3000, flush=True)");
  CHECK(s.rec.text(0, "stdout") == std::string(3000, 'y') + "\n");
  s.channel->reset_output_counters(2);
  s.exec(2, "print('z' * 100, flush=True)", 1);
  CHECK(s.rec.text(2, "stdout").substr(4096) == std::string(100, 'z') + "\n");
}

TEST_CASE("the binary is linked without lazy binding") {
  // A persistent init forks runners after it dropped the service's heap; a lazily bound
  // PLT entry would then run the dynamic linker on memory that is gone.
  bool now = false;
  for (const ElfW(Dyn)* d = _DYNAMIC; d->d_tag != DT_NULL; ++d) {
    if (d->d_tag == DT_FLAGS && (d->d_un.d_val & DF_BIND_NOW)) now = true;
    if (d->d_tag == DT_FLAGS_1 && (d->d_un.d_val & DF_1_NOW)) now = true;
    if (d->d_tag == DT_BIND_NOW) now = true;
  }
  CHECK(now);
}
