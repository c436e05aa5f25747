// Tests of the local sandbox launcher (sandbox/launcher.hpp). They start real sandboxes,
// so they need root on a host with user namespaces (like the service itself).
// Every wait has a deadline; nothing sleeps and hopes.
#include "sandbox/launcher.hpp"

#include "sandbox/sandbox_test_support.hpp"

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace sandbox_test;

TEST_CASE("make_launcher reports every mechanism as a capability") {
  auto& l = shared_launcher();
  for (const char* name :
       {"user namespace", "pid namespace", "mount namespace", "network namespace", "cgroup v2 kill",
        "cgroup memory", "cgroup pids", "seccomp", "rlimits"}) {
    const auto* c = find_capability(l, name);
    REQUIRE_MESSAGE(c != nullptr, name);
    CHECK_MESSAGE(!c->detail.empty(), name);
    const std::string line =
        std::string(name) + ": " + (c->available ? "yes" : "no") + " - " + c->detail;
    MESSAGE(line);
  }
  CHECK(find_capability(l, "user namespace")->available);
  CHECK(find_capability(l, "seccomp")->available);
  CHECK(l.live() == 0);
}

TEST_CASE("make_launcher rejects a runner_dir that does not exist") {
  auto cfg = test_config();
  cfg.runner_dir = "/nonexistent/runner-dir";
  auto r = sbx::make_launcher(cfg);
  CHECK_FALSE(r.value);
  CHECK(r.error.find("runner_dir") != std::string::npos);
}

TEST_CASE("make_launcher names the directory that keeps the sandbox from its runners") {
  // As a clone under /root (0700 on Debian) was: the sandbox's root, an unprivileged
  // host uid, cannot search the path. The message must say where, not blame namespaces.
  char tmpl[] = "/tmp/launcher-test-closed-XXXXXX";
  const std::string closed = ::mkdtemp(tmpl);
  const std::string inner = closed + "/runners";
  REQUIRE(::mkdir(inner.c_str(), 0755) == 0);
  REQUIRE(::chmod(closed.c_str(), 0700) == 0);
  auto cfg = test_config();
  cfg.runner_dir = inner;
  auto r = sbx::make_launcher(cfg);
  ::rmdir(inner.c_str());
  ::rmdir(closed.c_str());
  CHECK_FALSE(r.value);
  INFO(r.error);
  CHECK(r.error.find(closed + " is mode 0700: others cannot search it") != std::string::npos);
  CHECK(r.error.find("chmod o+x") != std::string::npos);
  CHECK(r.error.find("--security-opt") == std::string::npos);
}

TEST_CASE("make_launcher explains how to fix a host that blocks namespaces") {
  // Emulates Docker's default seccomp profile: clone with CLONE_NEWUSER gets EPERM and
  // clone3 ENOSYS.
  const auto child = in_child_process([](int report) {
    sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone3, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, args[0])),
        BPF_JUMP(BPF_JMP | BPF_JSET | BPF_K, CLONE_NEWUSER, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    sock_fprog prog{static_cast<unsigned short>(sizeof filter / sizeof filter[0]), filter};
    if (::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) return 2;
    auto r = sbx::make_launcher(test_config(2 * kUidsPerLauncher));
    child_say(report, r.error);
    return r.value ? 1 : 0;
  });
  const int code = child.first;
  const std::string message = child.second;
  CHECK(code == 0);
  INFO(message);
  CHECK(message.find("self-test failed") != std::string::npos);
  CHECK(message.find("Operation not permitted") != std::string::npos);
  CHECK(message.find("--security-opt") != std::string::npos);
}

TEST_CASE("the runner runs as uid 1000 inside and as a dedicated host uid outside") {
  auto& l = shared_launcher();
  auto launched = l.launch(python_spec(
      "import os, sys\n"
      "print('ids', os.getuid(), os.geteuid(), os.getgid(), os.getgroups(), flush=True)\n"
      "print('ready', flush=True)\n"
      "sys.stdin.read()\n"));
  REQUIRE_MESSAGE(launched.process, launched.error);
  auto& p = *launched.process;
  const auto deadline = steady::now() + 20s;
  const std::string out = read_until(p.stdout_fd(), "ready", deadline);
  CHECK(out.find("ids 1000 1000 1000 []") != std::string::npos);

  const pid_t runner = child_of(p.init_pid(), deadline);
  REQUIRE(runner > 0);
  const auto base = test_uid_base();
  for (pid_t pid : {p.init_pid(), runner}) {
    const auto uids = status_ids(pid, "Uid");
    const auto gids = status_ids(pid, "Gid");
    REQUIRE(uids.size() == 4);
    REQUIRE(gids.size() == 4);
    CHECK(uids[0] >= base);
    CHECK(uids[0] < base + kUidsPerLauncher);
    for (auto id : uids) CHECK(id == uids[0]);
    for (auto id : gids) CHECK(id == uids[0]);
    CHECK(status_ids(pid, "Groups").empty());
  }
  CHECK(l.live() == 1);
  ::close(::dup(p.stdin_fd()));
  launched.process.reset();
  CHECK(l.live() == 0);
}

TEST_CASE("concurrent launches from several threads get distinct host uids") {
  auto& l = shared_launcher();
  constexpr int kCount = 4;
  std::vector<std::unique_ptr<sbx::sandbox_process>> procs(kCount);
  std::vector<std::string> errors(kCount);
  {
    std::vector<std::thread> threads;
    for (int i = 0; i < kCount; ++i)
      threads.emplace_back([&, i] {
        auto r = l.launch(python_spec("import sys\nsys.stdin.read()\n"));
        procs[i] = std::move(r.process);
        errors[i] = r.error;
      });
    for (auto& t : threads) t.join();
  }
  std::set<std::uint32_t> uids;
  for (int i = 0; i < kCount; ++i) {
    REQUIRE_MESSAGE(procs[i], errors[i]);
    // Setup is over (runner exec'd) once the error pipe reaches EOF; before that the
    // init may not have switched to its uid yet.
    CHECK(read_to_eof(procs[i]->setup_error_fd(), steady::now() + 20s).empty());
    uids.insert(host_uid_of(procs[i]->init_pid()));
  }
  CHECK(uids.size() == kCount);
  CHECK(l.live() == kCount);
  procs.clear();
  CHECK(l.live() == 0);
}

TEST_CASE("the hostname is sandbox") {
  auto r = run(shared_launcher(), python_spec("import socket\nprint(socket.gethostname())\n"));
  CHECK(r.setup_error.empty());
  CHECK(r.out == "sandbox\n");
}

TEST_CASE("the runner environment is exactly the spec env") {
  sbx::launch_spec spec;
  spec.argv = {"/usr/bin/env"};
  spec.env = {{"A", "1"}, {"B", "two words"}, {"PATH", "/usr/bin:/bin"}};
  auto r = run(shared_launcher(), spec);
  CHECK(r.setup_error.empty());
  CHECK(r.out == "A=1\nB=two words\nPATH=/usr/bin:/bin\n");
  REQUIRE(r.status);
  CHECK(r.status->exit_code == 0);
}

TEST_CASE("the runner gets fds 0 to 4 wired to the host and nothing else") {
  auto& l = shared_launcher();
  auto launched = l.launch(python_spec(
      "import os, stat, struct\n"
      "extra = []\n"
      "for fd in range(5, 4096):\n"
      "    try:\n"
      "        os.fstat(fd); extra.append(fd)\n"
      "    except OSError:\n"
      "        pass\n"
      "kinds = ['pipe' if stat.S_ISFIFO(os.fstat(fd).st_mode) else\n"
      "         'sock' if stat.S_ISSOCK(os.fstat(fd).st_mode) else '?' for fd in range(5)]\n"
      "print('extra', extra, 'kinds', kinds, 'cwd', os.getcwd(), flush=True)\n"
      "line = os.read(0, 100)\n"
      "os.write(1, b'stdin:' + line)\n"
      "os.write(2, b'to stderr\\n')\n"
      "n = struct.unpack('>I', os.read(3, 4))[0]\n"
      "body = os.read(3, n)\n"
      "os.write(4, struct.pack('>I', len(body)) + body)\n"));
  REQUIRE_MESSAGE(launched.process, launched.error);
  auto& p = *launched.process;
  const auto deadline = steady::now() + 20s;
  CHECK(read_to_eof(p.setup_error_fd(), deadline).empty());
  const std::string first = read_until(p.stdout_fd(), "\n", deadline);
  CHECK(first == "extra [] kinds ['pipe', 'pipe', 'pipe', 'sock', 'sock'] cwd /home/user\n");
  REQUIRE(write_all(p.stdin_fd(), "hi\n"));
  CHECK(read_until(p.stdout_fd(), "\n", deadline) == "stdin:hi\n");
  CHECK(read_until(p.stderr_fd(), "\n", deadline) == "to stderr\n");
  const std::string frame = std::string("\0\0\0\x07{\"a\":1}", 11);
  REQUIRE(write_all(p.control_fd(), frame));
  CHECK(read_until(p.events_fd(), "}", deadline) == frame);
  const auto st = wait_exit(p, deadline);
  REQUIRE(st);
  CHECK(st->exit_code == 0);
}

TEST_CASE("the workspace is writable and size limited") {
  sbx::limits lim;
  lim.workspace_bytes = 4 << 20;
  auto r = run(shared_launcher(),
               python_spec("import os, errno\n"
                           "st = os.stat('/home/user')\n"
                           "print('home', st.st_uid, st.st_gid, oct(st.st_mode & 0o7777))\n"
                           "print('tmp', oct(os.stat('/tmp').st_mode & 0o7777))\n"
                           "for d in ['/home/user', '/tmp']:\n"
                           "    try:\n"
                           "        with open(d + '/big', 'wb') as f:\n"
                           "            for _ in range(8):\n"
                           "                f.write(b'x' * (1 << 20))\n"
                           "        print(d, 'no error')\n"
                           "    except OSError as e:\n"
                           "        print(d, errno.errorcode[e.errno])\n",
                           lim));
  INFO(r.err);
  CHECK(r.out == "home 1000 1000 0o755\ntmp 0o1777\n/home/user ENOSPC\n/tmp ENOSPC\n");
}

TEST_CASE("the root and /usr are read-only and host secrets are absent") {
  auto r = run(shared_launcher(),
               python_spec("import os, errno\n"
                           "def probe(what, fn):\n"
                           "    try:\n"
                           "        fn(); print(what, 'OK')\n"
                           "    except OSError as e:\n"
                           "        print(what, errno.errorcode[e.errno])\n"
                           "for p in ['/evil', '/usr/evil', '/etc/evil', '/dev/evil', "
                           "'/opt/runner/evil', '/proc/sys/kernel/hostname']:\n"
                           "    probe('write ' + p, lambda: open(p, 'w').close())\n"
                           "for p in ['/etc/shadow', '/root', '/work', '/sys/fs/cgroup']:\n"
                           "    probe('stat ' + p, lambda: os.stat(p))\n"
                           "print(open('/opt/runner/hello.txt').read(), end='')\n"
                           "print(open('/etc/passwd').read(), end='')\n"));
  INFO(r.err);
  CHECK(r.out ==
        "write /evil EROFS\n"
        "write /usr/evil EROFS\n"
        "write /etc/evil EROFS\n"
        "write /dev/evil EROFS\n"
        "write /opt/runner/evil EROFS\n"
        "write /proc/sys/kernel/hostname EROFS\n"
        "stat /etc/shadow ENOENT\n"
        "stat /root ENOENT\n"
        "stat /work ENOENT\n"
        "stat /sys/fs/cgroup ENOENT\n"
        "hello from the runner dir\n"
        "root:x:0:0:root:/root:/usr/sbin/nologin\n"
        "user:x:1000:1000:user:/home/user:/bin/bash\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n");
}

TEST_CASE("only lo exists and host listeners are unreachable") {
  // A TCP listener on the host's loopback and an abstract unix socket.
  const int tcp = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(tcp, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(tcp, 4) == 0);
  socklen_t len = sizeof addr;
  ::getsockname(tcp, reinterpret_cast<sockaddr*>(&addr), &len);
  const int port = ntohs(addr.sin_port);

  const std::string abstract_name = "codeexec-launcher-test-" + std::to_string(::getpid());
  const int unix_fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un ua{};
  ua.sun_family = AF_UNIX;
  std::memcpy(ua.sun_path + 1, abstract_name.data(), abstract_name.size());
  const auto ua_len =
      static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + abstract_name.size());
  REQUIRE(::bind(unix_fd, reinterpret_cast<sockaddr*>(&ua), ua_len) == 0);
  REQUIRE(::listen(unix_fd, 4) == 0);

  auto r = run(shared_launcher(),
               python_spec("import socket, errno\n"
                           "print('ifaces', [n for _, n in socket.if_nameindex()])\n"
                           "def probe(what, family, addr):\n"
                           "    s = socket.socket(family, socket.SOCK_STREAM)\n"
                           "    s.settimeout(3)\n"
                           "    try:\n"
                           "        s.connect(addr); print(what, 'CONNECTED')\n"
                           "    except OSError as e:\n"
                           "        print(what, errno.errorcode.get(e.errno, e))\n"
                           "probe('host tcp', socket.AF_INET, ('127.0.0.1', " +
                           std::to_string(port) +
                           "))\n"
                           "probe('host abstract', socket.AF_UNIX, '\\0" +
                           abstract_name +
                           "')\n"
                           "srv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen()\n"
                           "probe('own lo', socket.AF_INET, srv.getsockname())\n"));
  ::close(tcp);
  ::close(unix_fd);
  INFO(r.err);
  CHECK(r.out ==
        "ifaces ['lo']\nhost tcp ECONNREFUSED\nhost abstract ECONNREFUSED\nown lo CONNECTED\n");
}

TEST_CASE("the init environment and command line are not readable by the runner") {
  ::setenv("LAUNCHER_TEST_CANARY", "host-secret", 1);
  auto r = run(shared_launcher(),
               python_spec("import errno\n"
                           "for f in ['/proc/1/environ', '/proc/1/mem', '/proc/1/maps']:\n"
                           "    try:\n"
                           "        open(f, 'rb').read(); print(f, 'READ')\n"
                           "    except OSError as e:\n"
                           "        print(f, errno.errorcode[e.errno])\n"
                           "print('cmdline', open('/proc/1/cmdline', 'rb').read().strip(b'\\0'))\n"
                           "print('comm', open('/proc/1/comm').read().strip())\n"));
  ::unsetenv("LAUNCHER_TEST_CANARY");
  INFO(r.err);
  CHECK(r.out ==
        "/proc/1/environ EACCES\n/proc/1/mem EACCES\n/proc/1/maps EACCES\ncmdline b''\n"
        "comm sandbox-init\n");
  CHECK(r.out.find("host-secret") == std::string::npos);
}

TEST_CASE("seccomp refuses new user namespaces and vsock sockets") {
  auto r =
      run(shared_launcher(),
          python_spec("import ctypes, errno, os, socket\n"
                      "libc = ctypes.CDLL(None, use_errno=True)\n"
                      "for name, flag in [('user', 0x10000000), ('mount', 0x20000), "
                      "('net', 0x40000000)]:\n"
                      "    rc = libc.unshare(flag)\n"
                      "    print('unshare', name, rc, errno.errorcode.get(ctypes.get_errno()))\n"
                      "try:\n"
                      "    socket.socket(40, socket.SOCK_STREAM); print('vsock CREATED')\n"
                      "except OSError as e:\n"
                      "    print('vsock', errno.errorcode[e.errno])\n"
                      "rc = libc.mount(b'none', b'/tmp', b'tmpfs', 0, None)\n"
                      "print('mount', rc, errno.errorcode.get(ctypes.get_errno()))\n"
                      "try:\n"
                      "    os.setuid(0); print('setuid OK')\n"
                      "except OSError as e:\n"
                      "    print('setuid', errno.errorcode[e.errno])\n"));
  INFO(r.err);
  CHECK(r.out ==
        "unshare user -1 EPERM\nunshare mount -1 EPERM\nunshare net -1 EPERM\n"
        "vsock EAFNOSUPPORT\nmount -1 EPERM\nsetuid EPERM\n");
}

TEST_CASE("a fork loop is stopped by the pids limit") {
  auto& l = shared_launcher();
  sbx::limits lim;
  lim.pids = 16;
  auto r = run(l, python_spec("import os, time, errno\n"
                              "n = 0\n"
                              "while True:\n"
                              "    try:\n"
                              "        pid = os.fork()\n"
                              "    except OSError as e:\n"
                              "        print('stopped', n, errno.errorcode[e.errno], flush=True)\n"
                              "        break\n"
                              "    if pid == 0:\n"
                              "        time.sleep(60)\n"
                              "        os._exit(0)\n"
                              "    n += 1\n"
                              "os._exit(0)\n",
                              lim));
  INFO(r.out << r.err);
  int forked = -1;
  std::istringstream(r.out.substr(r.out.find(' ') + 1)) >> forked;
  CHECK(r.out.rfind("stopped ", 0) == 0);
  CHECK(r.out.find("EAGAIN") != std::string::npos);
  CHECK(forked >= 4);
  CHECK(forked < 16);
  if (find_capability(l, "cgroup pids")->available) CHECK(r.use.pids_limit_hits >= 1);
}

TEST_CASE("a big allocation is killed or refused under the memory limit") {
  auto& l = shared_launcher();
  sbx::limits lim;
  lim.memory_bytes = 64 << 20;
  auto r = run(l, python_spec("try:\n"
                              "    b = b'x' * (4 << 30)\n"
                              "    print('allocated', len(b))\n"
                              "except MemoryError:\n"
                              "    print('MemoryError')\n",
                              lim));
  REQUIRE(r.status);
  INFO(r.out << r.err << " exit " << r.status->exit_code << " signal " << r.status->signal);
  CHECK(r.out.find("allocated") == std::string::npos);
  if (find_capability(l, "cgroup memory")->available) {
    // The OOM killer takes the biggest process of the cgroup: the runner, which the init
    // reports as 128 + SIGKILL; under ASan the init (a clone of the instrumented test
    // binary) can be bigger and is taken itself.
    const bool runner_killed = r.status->exit_code == 128 + SIGKILL;
    const bool init_killed = r.status->signal == SIGKILL;
    CHECK((runner_killed || init_killed));
    CHECK(r.use.oom_kills >= 1);
    CHECK(r.use.peak_memory_bytes > 0);
    CHECK(r.use.peak_memory_bytes <= (64u << 20));
  } else {
    CHECK(r.out == "MemoryError\n");
  }
  CHECK(r.use.cpu_ns > 0);
}

TEST_CASE("without writable cgroups the limits fall back to rlimits") {
  // A private mount namespace in which every cgroup mount is read-only (default Docker).
  const auto child = in_child_process([](int report) {
    if (::unshare(CLONE_NEWNS) != 0) return 2;
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return 3;
    std::istringstream lines(read_file("/proc/self/mountinfo"));
    std::string line;
    while (std::getline(lines, line)) {
      std::istringstream f(line);
      std::string id, parent, dev, root, mount_point;
      f >> id >> parent >> dev >> root >> mount_point;
      if (mount_point.rfind("/sys/fs/cgroup", 0) == 0 &&
          ::mount(nullptr, mount_point.c_str(), nullptr, MS_REMOUNT | MS_BIND | MS_RDONLY,
                  nullptr) != 0)
        return 4;
    }
    auto made = sbx::make_launcher(test_config(3 * kUidsPerLauncher));
    if (!made.value) {
      child_say(report, "make_launcher: " + made.error);
      return 5;
    }
    auto& l = *made.value;
    for (const auto& c : l.capabilities())
      child_say(report, c.name + "=" + (c.available ? "yes" : "no") + " " + c.detail);
    sbx::limits lim;
    lim.memory_bytes = 64 << 20;
    lim.pids = 16;
    auto r = run(l, python_spec("try:\n"
                                "    b = b'x' * (4 << 30)\n"
                                "    print('allocated')\n"
                                "except MemoryError:\n"
                                "    print('MemoryError')\n",
                                lim));
    child_say(report, "python: " + r.out);
    sbx::launch_spec node;
    node.argv = {"/usr/bin/node", "-e", "console.log('node ok')"};
    node.lim = lim;
    auto n = run(l, node);
    child_say(report, "node: " + n.out + n.err);
    return r.out == "MemoryError\n" && n.out == "node ok\n" ? 0 : 6;
  });
  const int code = child.first;
  const std::string message = child.second;
  INFO(message);
  CHECK(code == 0);
  CHECK(message.find("cgroup memory=no") != std::string::npos);
  CHECK(message.find("cgroup pids=no") != std::string::npos);
  CHECK(message.find("RLIMIT_AS") != std::string::npos);
}

TEST_CASE("interrupt delivers SIGINT to the runner") {
  auto launched = shared_launcher().launch(
      python_spec("import signal, time\n"
                  "signal.signal(signal.SIGINT, lambda s, f: print('SIGINT', flush=True))\n"
                  "print('ready', flush=True)\n"
                  "while True:\n"
                  "    time.sleep(0.05)\n"));
  REQUIRE_MESSAGE(launched.process, launched.error);
  auto& p = *launched.process;
  const auto deadline = steady::now() + 20s;
  REQUIRE(read_until(p.stdout_fd(), "ready\n", deadline).find("ready") != std::string::npos);
  CHECK(p.interrupt());
  CHECK(read_until(p.stdout_fd(), "SIGINT\n", deadline) == "SIGINT\n");
  CHECK(p.interrupt());
  CHECK(read_until(p.stdout_fd(), "SIGINT\n", deadline) == "SIGINT\n");
  p.kill();
  const auto st = wait_exit(p, deadline);
  REQUIRE(st);
  CHECK(st->signal == SIGKILL);
  CHECK_FALSE(p.interrupt());
}

TEST_CASE("kill leaves no process of the sandbox uid and no cgroup dir behind") {
  auto launched =
      shared_launcher().launch(python_spec("import os, time\n"
                                           "if os.fork() == 0:\n"
                                           "    os.setsid()\n"
                                           "    if os.fork() == 0:\n"
                                           "        while True: time.sleep(1)\n"
                                           "    os._exit(0)\n"
                                           "print('ready', flush=True)\n"
                                           "while True: pass\n"));
  REQUIRE_MESSAGE(launched.process, launched.error);
  auto& p = *launched.process;
  const auto deadline = steady::now() + 20s;
  REQUIRE(read_until(p.stdout_fd(), "ready\n", deadline).find("ready") != std::string::npos);
  const std::uint32_t uid = host_uid_of(p.init_pid());
  REQUIRE(uid >= test_uid_base());
  CHECK(processes_of_uid(uid).size() >= 3);  // init, runner, daemon (+ zombie)
  const std::string id = p.id();
  CHECK_FALSE(cgroup_dirs_of(id, "codeexec-test").empty());

  p.kill();
  launched.process.reset();  // destructor: reap, rmdir cgroups, release the uid
  CHECK(processes_of_uid(uid).empty());
  CHECK(cgroup_dirs_of(id, "codeexec-test").empty());
}

TEST_CASE("setup failures are reported through setup_error_fd") {
  SUBCASE("an argv[0] that does not exist") {
    sbx::launch_spec spec;
    spec.argv = {"/nonexistent/prog", "arg"};
    auto r = run(shared_launcher(), spec);
    INFO(r.setup_error);
    CHECK(r.setup_error.find("execve /nonexistent/prog") != std::string::npos);
    CHECK(r.setup_error.find("No such file or directory") != std::string::npos);
    CHECK(std::count(r.setup_error.begin(), r.setup_error.end(), '\n') == 1);
    REQUIRE(r.status);
    CHECK(r.status->exit_code == 125);
  }
  SUBCASE("an invalid spec is refused before anything starts") {
    sbx::launch_spec spec;
    spec.argv = {"python3"};
    auto r = shared_launcher().launch(spec);
    CHECK_FALSE(r.process);
    CHECK(r.error.find("absolute") != std::string::npos);
  }
  SUBCASE("a successful exec closes the pipe without a message") {
    sbx::launch_spec spec;
    spec.argv = {"/bin/sh", "-c", "exit 3"};
    auto r = run(shared_launcher(), spec);
    CHECK(r.setup_error.empty());
    REQUIRE(r.status);
    CHECK(r.status->exit_code == 3);
    CHECK(r.status->signal == 0);
  }
}

TEST_CASE("the sandbox dies with the launching process and sweep_stale cleans up") {
  // A live sandbox of this process: sweep_stale must leave it alone.
  auto live = shared_launcher().launch(python_spec("import sys\nsys.stdin.read()\n"));
  REQUIRE_MESSAGE(live.process, live.error);

  int fds[2];
  REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
  const pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    ::close(fds[0]);
    auto made = sbx::make_launcher(test_config(kUidsPerLauncher));
    if (!made.value) ::_exit(2);
    auto r = made.value->launch(python_spec("import time\nwhile True: time.sleep(1)\n"));
    if (!r.process) ::_exit(3);
    read_to_eof(r.process->setup_error_fd(), steady::now() + 20s);
    child_say(fds[1], std::to_string(host_uid_of(r.process->init_pid())) + " " + r.process->id());
    for (;;) ::pause();  // until SIGKILLed
  }
  ::close(fds[1]);
  // Whatever fails below, the child (paused forever) must not outlive the test: it
  // would hold the test's output open and hang the runner.
  struct reap_child {
    pid_t pid;
    void reap() {
      if (pid <= 0) return;
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
      pid = -1;
    }
    ~reap_child() { reap(); }
  } guard{child};
  std::istringstream report(read_until(fds[0], "\n", steady::now() + 30s));
  ::close(fds[0]);
  std::uint32_t uid = 0;
  std::string id;
  report >> uid >> id;
  REQUIRE(uid >= test_uid_base() + kUidsPerLauncher);
  CHECK_FALSE(processes_of_uid(uid).empty());

  guard.reap();
  const auto deadline = steady::now() + 5s;
  while (!processes_of_uid(uid).empty() && ms_left(deadline) > 0) std::this_thread::sleep_for(10ms);
  CHECK(processes_of_uid(uid).empty());

  // The dead launcher could not remove its cgroups. Another instance (another uid
  // base: it cannot tell a dead owner from one in another pid namespace) leaves
  // them; the next start with the same uid base sweeps them.
  CHECK_FALSE(cgroup_dirs_of(id, "codeexec-test").empty());
  sbx::sweep_stale(test_config());
  CHECK_FALSE(cgroup_dirs_of(id, "codeexec-test").empty());
  CHECK(sbx::sweep_stale(test_config(kUidsPerLauncher)) >= 1);
  CHECK(cgroup_dirs_of(id, "codeexec-test").empty());
  CHECK_FALSE(cgroup_dirs_of(live.process->id(), "codeexec-test").empty());
  CHECK_FALSE(live.process->try_wait());
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define LAUNCHER_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(memory_sanitizer)
#define LAUNCHER_TEST_SANITIZED 1
#endif
#endif

TEST_CASE("the sandbox init does not pin the launching process memory") {
  // The init is a fork of the service: it must drop its copy of the service's heap
  // (not done in sanitizer builds, whose shadow memory looks like that heap).
#ifdef LAUNCHER_TEST_SANITIZED
  return;
#endif
  std::vector<char> heap(256u << 20, 1);
  auto launched = shared_launcher().launch(python_spec("import sys\nsys.stdin.read()\n"));
  REQUIRE_MESSAGE(launched.process, launched.error);
  auto& p = *launched.process;
  const auto deadline = steady::now() + 20s;
  CHECK(read_to_eof(p.setup_error_fd(), deadline).empty());
  std::uint32_t rss_anon_kib = 0;
  do {
    const auto v = status_ids(p.init_pid(), "RssAnon");
    rss_anon_kib = v.empty() ? 0 : v[0];
    if (rss_anon_kib < (16u << 10)) break;
    std::this_thread::sleep_for(5ms);
  } while (ms_left(deadline) > 0);
  INFO("init RssAnon kB: " << rss_anon_kib);
  CHECK(rss_anon_kib < (16u << 10));
  CHECK(heap[heap.size() / 2] == 1);
}

TEST_CASE("a destroyed sandbox leaves no fd and no mount in the launching process") {
  auto count_fds = [] {
    int n = 0;
    DIR* d = ::opendir("/proc/self/fd");
    while (d && ::readdir(d)) ++n;
    if (d) ::closedir(d);
    return n;
  };
  auto& l = shared_launcher();
  const int fds_before = count_fds();
  const std::string mounts_before = read_file("/proc/self/mountinfo");
  for (int i = 0; i < 3; ++i) {
    auto r = run(l, python_spec("print('hi')\n"));
    CHECK(r.out == "hi\n");
  }
  CHECK(count_fds() == fds_before);
  CHECK(read_file("/proc/self/mountinfo") == mounts_before);
  CHECK(l.live() == 0);
}

namespace {

/// True when /proc/<pid>/cgroup puts the process in sbx-<id> in every hierarchy that
/// has one (cgroup2, memory, pids), and there is at least one.
bool in_sandbox_cgroups(pid_t pid, const std::string& id, std::string* listing) {
  *listing = read_file("/proc/" + std::to_string(pid) + "/cgroup");
  std::istringstream lines(*listing);
  std::string line;
  int matched = 0;
  bool all = true;
  while (std::getline(lines, line)) {
    const auto c1 = line.find(':'), c2 = line.find(':', c1 + 1);
    const std::string controllers = line.substr(c1 + 1, c2 - c1 - 1);
    if (!controllers.empty() && controllers != "memory" && controllers != "pids") continue;
    const bool here = line.find("/codeexec-test/sbx-" + id) != std::string::npos;
    matched += here;
    all = all && here;
  }
  return matched > 0 && all;
}

}  // namespace

TEST_CASE("the sandbox init is in its own cgroups from the start") {
  SUBCASE("clone3 with CLONE_INTO_CGROUP") {
    auto launched = shared_launcher().launch(python_spec("import sys\nsys.stdin.read()\n"));
    REQUIRE_MESSAGE(launched.process, launched.error);
    std::string listing;
    CHECK_MESSAGE(
        in_sandbox_cgroups(launched.process->init_pid(), launched.process->id(), &listing),
        listing);
  }
  SUBCASE("clone where clone3 is refused") {
    const auto child = in_child_process([](int report) {
      sock_filter filter[] = {
          BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
          BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_clone3, 0, 1),
          BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
          BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      };
      sock_fprog prog{static_cast<unsigned short>(sizeof filter / sizeof filter[0]), filter};
      if (::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) return 2;
      auto made = sbx::make_launcher(test_config(2 * kUidsPerLauncher));
      if (!made.value) {
        child_say(report, made.error);
        return 3;
      }
      auto launched = made.value->launch(python_spec("import sys\nsys.stdin.read()\n"));
      if (!launched.process) return 4;
      std::string listing;
      const bool ok =
          in_sandbox_cgroups(launched.process->init_pid(), launched.process->id(), &listing);
      child_say(report, listing);
      return ok ? 0 : 5;
    });
    INFO(child.second);
    CHECK(child.first == 0);
  }
}

TEST_CASE("the runner has the configured rlimits") {
  auto& l = shared_launcher();
  sbx::limits lim;
  lim.pids = 32;
  lim.open_files = 100;
  lim.file_size_bytes = 1 << 20;
  lim.workspace_bytes = 8 << 20;
  auto r = run(l, python_spec("import resource as r, errno\n"
                              "for n in ['NPROC', 'NOFILE', 'FSIZE', 'CORE', 'MEMLOCK']:\n"
                              "    print(n, *r.getrlimit(getattr(r, 'RLIMIT_' + n)))\n"
                              "try:\n"
                              "    with open('/home/user/f', 'wb') as f:\n"
                              "        f.write(b'x' * (2 << 20))\n"
                              "    print('write OK')\n"
                              "except OSError as e:\n"
                              "    print('write', errno.errorcode[e.errno])\n",
                              lim));
  INFO(r.err);
  const bool pids_cgroup = find_capability(l, "cgroup pids")->available;
  const std::string nproc = pids_cgroup ? "48" : "32";  // a backstop above pids.max
  CHECK(r.out == "NPROC " + nproc + " " + nproc +
                     "\nNOFILE 100 100\nFSIZE 1048576 1048576\nCORE 0 0\nMEMLOCK 65536 65536\n"
                     "write EFBIG\n");
}

TEST_CASE("when the runner exits the rest of the sandbox is killed") {
  auto launched =
      shared_launcher().launch(python_spec("import os, time\n"
                                           "if os.fork() == 0:\n"
                                           "    os.setsid()\n"
                                           "    time.sleep(60)\n"
                                           "    os._exit(0)\n"
                                           "print('forked', flush=True)\n"
                                           "os._exit(7)\n"));
  REQUIRE_MESSAGE(launched.process, launched.error);
  auto& p = *launched.process;
  const auto deadline = steady::now() + 20s;
  CHECK(read_until(p.stdout_fd(), "forked\n", deadline) == "forked\n");
  const std::uint32_t uid = host_uid_of(p.init_pid());
  const auto st = wait_exit(p, deadline);
  REQUIRE(st);
  CHECK(st->exit_code == 7);
  // The init has been reaped: the pid namespace (and the daemon) died with it.
  CHECK(processes_of_uid(uid).empty());
}

TEST_CASE("kill and try_wait may run on different threads") {
  // The service's I/O thread waits for the exit while the actor kills.
  auto launched = shared_launcher().launch(python_spec("import time\ntime.sleep(60)\n"));
  REQUIRE_MESSAGE(launched.process, launched.error);
  auto& p = *launched.process;
  std::optional<sbx::exit_status> seen;
  std::thread waiter([&] { seen = wait_exit(p, steady::now() + 20s); });
  CHECK(read_to_eof(p.setup_error_fd(), steady::now() + 20s).empty());
  p.kill();
  p.kill();  // idempotent
  waiter.join();
  REQUIRE(seen);
  CHECK(seen->signal == SIGKILL);
  CHECK_FALSE(p.interrupt());
}

TEST_CASE("on a host with only cgroup2 mounted the v2 cgroup tracks and kills the sandbox") {
  // A private mount namespace where /sys/fs/cgroup is the cgroup2 hierarchy itself and
  // no v1 hierarchy is visible (the layout of a pure v2 host).
  const auto child = in_child_process([](int report) {
    if (::unshare(CLONE_NEWNS) != 0) return 2;
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) return 3;
    if (::mount("cgroup2", "/sys/fs/cgroup", "cgroup2", 0, nullptr) != 0) return 4;
    auto made = sbx::make_launcher(test_config(3 * kUidsPerLauncher));
    if (!made.value) {
      child_say(report, "make_launcher: " + made.error);
      return 5;
    }
    for (const auto& c : made.value->capabilities())
      child_say(report, c.name + "=" + (c.available ? "yes" : "no") + " " + c.detail);
    auto launched = made.value->launch(python_spec("import time\ntime.sleep(60)\n"));
    if (!launched.process) return 6;
    const std::string v2_dir = "/sys/fs/cgroup/codeexec-test/sbx-" + launched.process->id();
    read_to_eof(launched.process->setup_error_fd(), steady::now() + 20s);
    const bool populated =
        read_file(v2_dir + "/cgroup.events").find("populated 1") != std::string::npos;
    launched.process.reset();
    struct stat st {};
    const bool removed = ::stat(v2_dir.c_str(), &st) != 0;
    child_say(report, std::string("populated=") + (populated ? "yes" : "no") +
                          " removed=" + (removed ? "yes" : "no"));
    return populated && removed ? 0 : 7;
  });
  INFO(child.second);
  CHECK(child.first == 0);
  CHECK(child.second.find("cgroup v2 kill=yes tracking cgroup /sys/fs/cgroup/codeexec-test") !=
        std::string::npos);
  CHECK(child.second.find("cgroup memory=no") != std::string::npos);
}
