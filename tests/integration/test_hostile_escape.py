"""Hostile programs against the real service, part 3: escape attempts.

Network, secrets, host files, read-only system paths, ptrace, the seccomp
deny-list (sandbox-design.md Appendix A), signals to the host, privilege
escalation, the service's binary and memory, clock and hostname, symlinks.
Each probe prints one JSON object of what it observed (errno names), so a
failure shows everything at once. References: "L#n" = landscape.md §3 item n,
"D#n" = sandbox-design.md §6 row n.
"""

import concurrent.futures
import json
import re
import os
import signal
import socket
import subprocess
import time
import uuid

import pytest

from helpers import assert_contained, binary_path, stdout_of

pytestmark = pytest.mark.isolation  # select with -k hostile

LIMITS = {"memoryMb": 256, "pids": 32, "outputBytes": 1 << 20, "workspaceMb": 16, "fileSizeMb": 8}

# Prepended to every probe: try(name, fn) records "ok: <repr>" or the errno name.
PROBE = r'''
import ctypes, errno, json, os, socket
out = {}
def attempt(name, fn):
    try:
        v = fn()
        out[name] = "ok: " + repr(v)[:300]
    except OSError as e:
        out[name] = errno.errorcode.get(e.errno, str(e.errno))
    except Exception as e:
        out[name] = type(e).__name__ + ": " + str(e)[:200]
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def syscall(nr, *args):
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_long(a) for a in args])
    if r == -1:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r
'''


def probe(service, body, language="python", timeout_ms=10000, limits=None):
    """Runs PROBE + body (which must end with `print(json.dumps(out))`); returns
    (observations dict, result)."""
    code = PROBE + body if language == "python" else body
    r = service.execute(code, language, timeout_ms, http_timeout=60, limits=limits or LIMITS)["result"]
    assert r["status"] == "ok", f"probe failed: {json.dumps(r)[:3000]}"
    lines = stdout_of(r).strip().splitlines()
    assert lines, f"probe printed nothing: {json.dumps(r)[:2000]}"
    return json.loads(lines[-1]), r


def assert_refused(obs: dict, expected: dict):
    """expected: name -> allowed outcome or tuple of outcomes."""
    wrong = {k: obs.get(k) for k, ok in expected.items()
             if obs.get(k) not in (ok if isinstance(ok, tuple) else (ok,))}
    assert not wrong, f"not refused as expected: {json.dumps(wrong, indent=1)}\nexpected: {expected}"


# --------------------------------------------------------------------------
# Network (L#17, L#18, L#20; D#11-14)
# --------------------------------------------------------------------------

def test_hostile_network_only_loopback_and_nothing_reachable(service):
    """L#17, L#18, L#20, D#11-13: only `lo` exists; the service's own port on
    127.0.0.1 and ::1, a host TCP listener, a host abstract unix socket and (only
    because the netns is empty) TEST-NET 192.0.2.1 (TCP and UDP) are all
    unreachable; a port scan of 127.0.0.1:1-1024 finds nothing; nothing reaches
    the host listeners."""
    host_tcp = socket.socket()
    host_tcp.bind(("127.0.0.1", 0))
    host_tcp.listen(8)
    host_tcp.setblocking(False)
    abstract = "codeexec-hostile-" + uuid.uuid4().hex
    host_unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    host_unix.bind("\0" + abstract)
    host_unix.listen(8)
    host_unix.setblocking(False)
    try:
        body = f'''
def connect(addr, family=socket.AF_INET, kind=socket.SOCK_STREAM):
    s = socket.socket(family, kind)
    s.settimeout(2)
    try:
        s.connect(addr)
        return "CONNECTED"
    finally:
        s.close()
names = sorted(n for _, n in socket.if_nameindex())
out["interfaces"] = names
attempt("service_port", lambda: connect(("127.0.0.1", {service.port})))
attempt("service_port_v6", lambda: connect(("::1", {service.port}), socket.AF_INET6))
attempt("host_listener", lambda: connect(("127.0.0.1", {host_tcp.getsockname()[1]})))
attempt("host_abstract_unix", lambda: connect("\\0{abstract}", socket.AF_UNIX))
if names == ["lo"]:  # guard: never send to TEST-NET from a namespace with a real interface
    attempt("testnet_tcp", lambda: connect(("192.0.2.1", 80)))
    attempt("testnet_reverse_shell", lambda: connect(("192.0.2.1", 4444)))
    attempt("testnet_udp", lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("192.0.2.1", 53)))
import threading
open_ports = []
def scan(lo, hi):
    for p in range(lo, hi):
        s = socket.socket()
        s.settimeout(0.5)
        if s.connect_ex(("127.0.0.1", p)) == 0:
            open_ports.append(p)
        s.close()
ts = [threading.Thread(target=scan, args=(i, i + 128)) for i in range(1, 1025, 128)]
[t.start() for t in ts]; [t.join() for t in ts]
out["open_ports"] = open_ports
attempt("raw_icmp", lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP))
attempt("packet", lambda: socket.socket(17, socket.SOCK_RAW, 0))
print(json.dumps(out))
'''
        obs, r = probe(service, body)
        assert obs["interfaces"] == ["lo"], obs
        assert_refused(obs, {
            "service_port": "ECONNREFUSED", "service_port_v6": "ECONNREFUSED",
            "host_listener": "ECONNREFUSED", "host_abstract_unix": "ECONNREFUSED",
            "testnet_tcp": "ENETUNREACH", "testnet_reverse_shell": "ENETUNREACH", "testnet_udp": "ENETUNREACH",
            "raw_icmp": "EPERM", "packet": "EAFNOSUPPORT"})
        assert obs["open_ports"] == [], obs
        for s in (host_tcp, host_unix):
            with pytest.raises(BlockingIOError):
                s.accept()
    finally:
        host_tcp.close()
        host_unix.close()
    assert_contained(service)


def test_hostile_network_configuration_is_refused(service):
    """Netlink works (AF_NETLINK is allowed) but changing the sandbox's network
    (link down, address, route) is refused: no capability in the netns."""
    code = ("for c in 'ip link set lo down' 'ip addr add 10.9.9.9/24 dev lo' 'ip route add default dev lo'; do\n"
            "  if command -v ip >/dev/null; then $c 2>&1 | head -1; echo \"rc=${PIPESTATUS[0]}\"; else echo rc=noip; fi\n"
            "done\ncat /sys/class/net/lo/operstate 2>/dev/null || python3 -c "
            "\"import socket; print([n for _, n in socket.if_nameindex()])\"")
    r = service.execute(code, "bash", 5000, limits=LIMITS)["result"]
    out = stdout_of(r)
    assert "rc=0" not in out, f"a network change succeeded: {out!r}"
    assert_contained(service)


# --------------------------------------------------------------------------
# Secrets and host files (D#15, D#16)
# --------------------------------------------------------------------------

def test_hostile_service_secrets_not_readable(service_factory):
    """D#16: a separate instance started with SECRET_CANARY in its environment:
    the canary is nowhere the code can read — env, /proc/*/environ,
    /proc/*/cmdline, any readable file under /etc /opt /home /tmp /dev/shm /proc/self
    — and /proc/1/environ (the init's) is EACCES."""
    canary = "s3cr3t-" + uuid.uuid4().hex
    svc = service_factory(env={"SECRET_CANARY": canary})
    body = f'''
canary = "{canary[:7]}" + "{canary[7:]}"   # not a literal match of itself in /proc/self/cmdline
found = []
if any(canary in v or canary in k for k, v in os.environ.items()):
    found.append("os.environ")
for pid in [p for p in os.listdir("/proc") if p.isdigit()] + ["self", "thread-self"]:
    for f in ("environ", "cmdline"):
        try:
            if canary.encode() in open(f"/proc/{{pid}}/{{f}}", "rb").read():
                found.append(f"/proc/{{pid}}/{{f}}")
        except OSError:
            pass
for top in ["/etc", "/opt", "/home", "/tmp", "/dev/shm", "/proc/self"]:
    for root, dirs, files in os.walk(top):
        if root.startswith("/proc/self/") and root.count("/") > 3:
            dirs[:] = []
        for f in files:
            p = os.path.join(root, f)
            if not os.path.isfile(p):  # not our own stdio pipes: reading them would block
                continue
            try:
                if canary.encode() in open(p, "rb").read(1 << 20):
                    found.append(p)
            except OSError:
                pass
out["found"] = found
attempt("init_environ", lambda: open("/proc/1/environ", "rb").read())
attempt("init_cmdline", lambda: open("/proc/1/cmdline", "rb").read())
out["own_environ"] = sorted(k for k in os.environ)
print(json.dumps(out))
'''
    obs, r = probe(svc, body)
    assert obs["found"] == [], f"the service's secret is readable in the sandbox at {obs['found']}"
    assert obs["init_environ"] == "EACCES", obs
    # The init's command line is wiped: empty, or (depending on the build) its length in NULs.
    assert obs["init_cmdline"] == "EACCES" or re.fullmatch(r"ok: b'(\\x00)*'", obs["init_cmdline"]), obs
    assert set(obs["own_environ"]) <= {"PATH", "HOME", "USER", "LOGNAME", "LANG", "TERM", "MPLBACKEND",
                                       "MPLCONFIGDIR", "PWD", "SHLVL", "_"}, obs
    raw = json.dumps(r)
    assert canary not in raw, "the canary appeared in the response"
    assert_contained(svc)


def test_hostile_host_files_not_visible(service):
    """D#15: /etc/shadow, /root, /work, /var/lib, /sys/fs/cgroup, the host's
    /home and the service binary are not there (ENOENT) or not readable (EACCES);
    /etc holds only the sandbox's handful of files."""
    body = f'''
attempt("shadow", lambda: open("/etc/shadow").read())
attempt("gshadow", lambda: open("/etc/gshadow").read())
attempt("root", lambda: os.listdir("/root"))
attempt("work", lambda: os.listdir("/work"))
attempt("var_lib", lambda: os.listdir("/var/lib"))
attempt("sys_cgroup", lambda: os.listdir("/sys/fs/cgroup"))
attempt("service_binary", lambda: open({str(binary_path())!r}, "rb").read(4))
attempt("home", lambda: sorted(os.listdir("/home")))
attempt("ssh", lambda: os.listdir("/etc/ssh"))
attempt("kcore", lambda: open("/proc/kcore", "rb").read(4))
attempt("kallsyms_addr", lambda: open("/proc/kallsyms").readline().split()[0])
out["etc"] = sorted(os.listdir("/etc"))
codeexec_files = []
for root, dirs, files in os.walk("/"):
    if root == "/":  # /usr is the host's, read-only: a packaged codeexec there is no leak
        dirs[:] = [d for d in dirs if d not in ("proc", "sys", "usr")]
    codeexec_files += [os.path.join(root, f) for f in files if f == "codeexec"]
out["codeexec_files"] = codeexec_files
print(json.dumps(out))
'''
    obs, r = probe(service, body)
    gone = ("ENOENT", "EACCES")
    assert_refused(obs, {k: gone for k in ("shadow", "gshadow", "root", "work", "var_lib", "sys_cgroup",
                                           "service_binary", "ssh", "kcore")})
    assert obs["home"] == "ok: ['user']", obs
    assert obs["kallsyms_addr"] in ("ENOENT", "EACCES", "ok: '0000000000000000'"), obs
    assert obs["codeexec_files"] == [], obs
    assert "shadow" not in obs["etc"] and "sudoers" not in obs["etc"] and len(obs["etc"]) < 25, obs
    assert_contained(service)


# --------------------------------------------------------------------------
# Read-only system, runner dir (L#16; D#17)
# --------------------------------------------------------------------------

def test_hostile_writes_to_system_paths_refused(service):
    """L#16, D#17: writes to /usr, /etc, /, /opt/runner (dir and runner files),
    /bin/bash, deleting /etc/hosts, chmod of the interpreter, /proc/sys, remounting
    / read-write — EROFS/EACCES/EPERM; /home/user and /tmp are writable."""
    body = '''
attempt("usr", lambda: open("/usr/evil", "w"))
attempt("usr_bin", lambda: open("/usr/bin/evil", "w"))
attempt("etc", lambda: open("/etc/evil", "w"))
attempt("etc_passwd", lambda: open("/etc/passwd", "a"))
attempt("etc_hosts_rm", lambda: os.remove("/etc/hosts"))
attempt("root_dir", lambda: open("/evil", "w"))
attempt("mkdir_root", lambda: os.mkdir("/var"))
attempt("opt_runner", lambda: open("/opt/runner/evil", "w"))
attempt("runner_file", lambda: open("/opt/runner/python_runner.py", "a"))
attempt("runner_rename", lambda: os.rename("/opt/runner/python_runner.py", "/opt/runner/x"))
attempt("bash", lambda: open("/usr/bin/bash", "r+b"))
attempt("bash_rm", lambda: os.remove("/usr/bin/bash"))
attempt("chmod_python", lambda: os.chmod("/usr/bin/python3", 0o777))
attempt("proc_hostname", lambda: open("/proc/sys/kernel/hostname", "w").write("evil"))
attempt("sysrq", lambda: open("/proc/sysrq-trigger", "w").write("h"))
attempt("core_pattern", lambda: open("/proc/sys/kernel/core_pattern", "w").write("|/tmp/x"))
attempt("oom_score_adj_lower", lambda: open("/proc/self/oom_score_adj", "w").write("-1000"))
out["oom_score_adj"] = open("/proc/self/oom_score_adj").read().strip()
attempt("dev_null_replace", lambda: os.remove("/dev/null"))
attempt("mknod", lambda: os.mknod("/home/user/mem", 0o600 | 0o020000, os.makedev(1, 1)))
attempt("home", lambda: open("/home/user/ok", "w").write("x"))
attempt("tmp", lambda: open("/tmp/ok", "w").write("x"))
print(json.dumps(out))
'''
    obs, r = probe(service, body)
    denied = ("EROFS", "EACCES", "EPERM")
    assert_refused(obs, {k: denied for k in (
        "usr", "usr_bin", "etc", "etc_passwd", "etc_hosts_rm", "root_dir", "mkdir_root", "opt_runner",
        "runner_file", "runner_rename", "bash", "bash_rm", "chmod_python", "proc_hostname", "sysrq",
        "core_pattern", "dev_null_replace", "mknod")} | {"sysrq": denied + ("ENOENT",)})
    # Opting out of the OOM killer must not work (the write may "succeed" without effect).
    assert obs["oom_score_adj_lower"] in denied or int(obs["oom_score_adj"]) >= 0, obs
    assert obs["home"] == "ok: 1" and obs["tmp"] == "ok: 1", obs
    r = service.execute("mount -o remount,rw / 2>&1; echo rc=$?", "bash", 5000, limits=LIMITS)["result"]
    assert "rc=0" not in stdout_of(r), r
    assert not os.path.exists("/usr/evil") and not os.path.exists("/evil")
    assert_contained(service)


# --------------------------------------------------------------------------
# ptrace, seccomp deny-list (D#18-20, D#14, D#25; sandbox-design §7, Appendix A)
# --------------------------------------------------------------------------

def test_hostile_ptrace_refused(service):
    """D#18: PTRACE_ATTACH to its own child and to the init (pid 1), PTRACE_TRACEME,
    process_vm_readv of pid 1, /proc/1/mem — all refused."""
    body = '''
import time, signal
pid = os.fork()
if pid == 0:
    time.sleep(30)
    os._exit(0)
attempt("attach_child", lambda: syscall(101, 16, pid, 0, 0))
attempt("seize_child", lambda: syscall(101, 0x4206, pid, 0, 0))
attempt("attach_init", lambda: syscall(101, 16, 1, 0, 0))
attempt("traceme", lambda: syscall(101, 0, 0, 0, 0))
attempt("vm_readv_init", lambda: syscall(310, 1, 0, 0, 0, 0, 0))
attempt("vm_writev_child", lambda: syscall(311, pid, 0, 0, 0, 0, 0))
attempt("init_mem", lambda: open("/proc/1/mem", "rb"))
attempt("child_mem", lambda: open(f"/proc/{pid}/mem", "rb").read(1))
os.kill(pid, signal.SIGKILL)
os.waitpid(pid, 0)
print(json.dumps(out))
'''
    obs, r = probe(service, body)
    assert_refused(obs, {"attach_child": "EPERM", "seize_child": "EPERM", "attach_init": "EPERM",
                         "traceme": "EPERM", "vm_readv_init": "EPERM", "vm_writev_child": "EPERM",
                         "init_mem": "EACCES", "child_mem": ("EACCES", "EIO", "EPERM")})
    assert_contained(service)


# (name, syscall number, args, expected errno). Arguments are chosen so that a
# call that got past the filter would fail differently (EINVAL/EFAULT/EBADF...)
# or harm nothing but the sandbox itself.
CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWNET, CLONE_NEWPID = 0x20000, 0x10000000, 0x40000000, 0x20000000
CLONE_NEWIPC, CLONE_NEWUTS, CLONE_NEWCGROUP, CLONE_THREAD = 0x8000000, 0x4000000, 0x2000000, 0x10000
DENIED_SYSCALLS = [
    ("unshare_user", 272, [CLONE_NEWUSER], "EPERM"),
    ("unshare_mount", 272, [CLONE_NEWNS], "EPERM"),
    ("unshare_net", 272, [CLONE_NEWNET], "EPERM"),
    ("unshare_pid", 272, [CLONE_NEWPID], "EPERM"),
    ("unshare_cgroup", 272, [CLONE_NEWCGROUP], "EPERM"),
    ("clone_newuser", 56, [CLONE_NEWUSER | CLONE_THREAD, 0, 0, 0, 0], "EPERM"),
    ("clone_newnet", 56, [CLONE_NEWNET | CLONE_THREAD, 0, 0, 0, 0], "EPERM"),
    ("clone3", 435, [0, 0], "ENOSYS"),
    ("mount", 165, [0, 0, 0, 0, 0], "EPERM"),
    ("umount2", 166, [0, 0], "EPERM"),
    ("pivot_root", 155, [0, 0], "EPERM"),
    ("chroot", 161, [0], "EPERM"),
    ("setns", 308, [-1, 0], "EPERM"),
    ("open_tree", 428, [-1, 0, 0], "EPERM"),
    ("fsopen", 430, [0, 0], "EPERM"),
    ("move_mount", 429, [-1, 0, -1, 0, 0], "EPERM"),
    ("keyctl", 250, [0, 0, 0, 0, 0], "EPERM"),
    ("add_key", 248, [0, 0, 0, 0, 0], "EPERM"),
    ("request_key", 249, [0, 0, 0, 0], "EPERM"),
    ("bpf", 321, [0, 0, 0], "EPERM"),
    ("perf_event_open", 298, [0, 0, -1, -1, 0], "EPERM"),
    ("userfaultfd", 323, [0], "EPERM"),
    ("io_uring_setup", 425, [1, 0], "EPERM"),
    ("io_uring_enter", 426, [-1, 0, 0, 0, 0, 0], "EPERM"),
    ("io_uring_register", 427, [-1, 0, 0, 0], "EPERM"),
    ("kcmp", 312, [1, 1, 0, 0, 0], "EPERM"),
    ("pidfd_getfd", 438, [-1, 0, 0], "EPERM"),
    ("process_madvise", 440, [-1, 0, 0, 0, 0], "EPERM"),
    ("settimeofday", 164, [0, 0], "EPERM"),
    ("clock_settime", 227, [0, 0], "EPERM"),
    ("clock_adjtime", 305, [0, 0], "EPERM"),
    ("adjtimex", 159, [0], "EPERM"),
    ("reboot", 169, [0, 0, 0, 0], "EPERM"),
    ("init_module", 175, [0, 0, 0], "EPERM"),
    ("finit_module", 313, [-1, 0, 0], "EPERM"),
    ("delete_module", 176, [0, 0], "EPERM"),
    ("kexec_load", 246, [0, 0, 0, 0], "EPERM"),
    ("kexec_file_load", 320, [-1, -1, 0, 0, 0], "EPERM"),
    ("syslog", 103, [3, 0, 0], "EPERM"),
    ("acct", 163, [0], "EPERM"),
    ("swapon", 167, [0, 0], "EPERM"),
    ("swapoff", 168, [0], "EPERM"),
    ("quotactl", 179, [0, 0, 0, 0], "EPERM"),
    ("open_by_handle_at", 304, [-1, 0, 0], "EPERM"),
    ("name_to_handle_at", 303, [-1, 0, 0, 0, 0], "EPERM"),
    ("fanotify_init", 300, [0, 0], "EPERM"),
    ("iopl", 172, [3], "EPERM"),
    ("ioperm", 173, [0, 1, 1], "EPERM"),
    ("vhangup", 153, [], "EPERM"),
    ("mbind", 237, [0, 0, 0, 0, 0, 0], "EPERM"),
    ("set_mempolicy", 238, [0, 0, 0], "EPERM"),
    ("migrate_pages", 256, [0, 0, 0, 0], "EPERM"),
    ("move_pages", 279, [0, 0, 0, 0, 0, 0], "EPERM"),
    ("setuid0", 105, [0], "EPERM"),
    ("setgid0", 106, [0], "EPERM"),
    ("sethostname", 170, [0, 0], "EPERM"),
]


def test_hostile_seccomp_denied_syscalls(service):
    """D#19, D#20, D#25, §7/Appendix A: every syscall on the deny-list is refused
    with the policy's errno (EPERM; clone3 ENOSYS), including clone/unshare with a
    namespace flag; no_new_privs is set, seccomp is in filter mode and there are
    no capabilities."""
    body = "calls = " + json.dumps([(n, nr, a) for n, nr, a, _ in DENIED_SYSCALLS]) + '''
for name, nr, args in calls:
    attempt(name, lambda: syscall(nr, *args))
status = dict(l.split(":", 1) for l in open("/proc/self/status") if ":" in l)
out["status"] = {k: status[k].strip() for k in ("NoNewPrivs", "Seccomp", "CapEff", "CapPrm", "CapBnd", "CapAmb")}
print(json.dumps(out))
'''
    obs, r = probe(service, body)
    assert_refused(obs, {n: e for n, _, _, e in DENIED_SYSCALLS})
    assert obs["status"] == {"NoNewPrivs": "1", "Seccomp": "2", "CapEff": "0000000000000000",
                             "CapPrm": "0000000000000000", "CapBnd": "0000000000000000",
                             "CapAmb": "0000000000000000"}, obs["status"]
    assert_contained(service)


def test_hostile_socket_families_and_terminal_injection(service):
    """D#14, §7: socket(AF_VSOCK) (vsock is not network-namespaced; the VM's host
    side listens there), AF_ALG, AF_PACKET, AF_BLUETOOTH and families >= 17 fail with
    EAFNOSUPPORT (created, never connected); AF_UNIX/INET/INET6/NETLINK work;
    ioctl(TIOCSTI) is EPERM (the filter: fd 0 is a pipe, the kernel would say ENOTTY)."""
    body = '''
for fam, name in [(40, "vsock"), (38, "alg"), (17, "packet"), (31, "bluetooth"), (44, "xdp"),
                  (4, "ipx"), (9, "x25"), (5, "appletalk"), (3, "ax25"), (1 << 32 | 40, "vsock_high_bits")]:
    attempt("af_" + name, lambda: syscall(41, fam, 1, 0))
for fam, name in [(1, "unix"), (2, "inet"), (10, "inet6"), (16, "netlink")]:
    attempt("af_" + name, lambda: os.close(syscall(41, fam, 2 if fam != 16 else 3, 0)))
attempt("tiocsti", lambda: syscall(16, 0, 0x5412, ctypes.addressof(ctypes.c_char(b"x"))))
attempt("tioclinux", lambda: syscall(16, 0, 0x541C, 0))
print(json.dumps(out))
'''
    obs, r = probe(service, body)
    expected = {f"af_{n}": "EAFNOSUPPORT" for n in ("vsock", "alg", "packet", "bluetooth", "xdp", "ipx", "x25",
                                                    "appletalk", "ax25")}
    expected.update({f"af_{n}": "ok: None" for n in ("unix", "inet", "inet6", "netlink")})
    expected["tiocsti"] = "EPERM"
    expected["tioclinux"] = "EPERM"
    expected["af_vsock_high_bits"] = ("EAFNOSUPPORT", "EINVAL")
    assert_refused(obs, expected)
    assert_contained(service)


INT80_GETPID = r"""
import ctypes, mmap
code = bytes([0xb8, 20, 0, 0, 0, 0xcd, 0x80, 0xc3])   # mov eax, 20 (getpid); int 0x80; ret
m = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
m.write(code)
f = ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(m)))
print("int80 returned", f())
"""


def test_hostile_foreign_syscall_abi_is_killed(service):
    """§7: syscalls through a foreign ABI (i386 `int 0x80`, x32 numbers) are not a
    way around the filter: the process is killed (SCMP_FLTATR_ACT_BADARCH =
    KILL_PROCESS, SIGSYS). Each attempt runs in a child process. A kernel built
    without IA32 emulation (or booted with ia32_emulation=0) refuses `int 0x80`
    itself with SIGSEGV before any filter runs: there, the sandbox must see exactly
    that, and the host shows which kernel this is."""
    host = subprocess.run(["/usr/bin/python3", "-c", INT80_GETPID], capture_output=True, text=True)
    int80_expected = -signal.SIGSEGV if host.returncode == -signal.SIGSEGV else -signal.SIGSYS
    body = r'''
import subprocess, sys
int80 = ''' + repr(INT80_GETPID) + r'''
x32 = r"""
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
print("x32 returned", libc.syscall(ctypes.c_long(0x40000000 | 39)))
"""
for name, src in [("int80", int80), ("x32", x32)]:
    p = subprocess.run([sys.executable, "-c", src], capture_output=True, text=True)
    out[name] = [p.returncode, p.stdout.strip()]
print(json.dumps(out))
'''
    obs, r = probe(service, body)
    for name, expected in (("int80", int80_expected), ("x32", -signal.SIGSYS)):
        rc, printed = obs[name]
        assert rc == expected and not printed, f"{name}: expected signal {-expected}, got {obs[name]}"
    assert_contained(service)


# --------------------------------------------------------------------------
# Signals to the host, privileges (D#21)
# --------------------------------------------------------------------------

def test_hostile_kill_host_processes(service):
    """D#21: kill(<host pid>, 9) of a root `sleep` started by the test, of the
    service and of pytest, killpg of the victim, and kill(-1, 9) — all ESRCH (the
    pid namespace hides them); the victim survives."""
    victim = subprocess.Popen(["sleep", "60"])
    try:
        body = f'''
for name, pid in [("victim", {victim.pid}), ("service", {service.proc.pid}), ("pytest", {os.getpid()})]:
    attempt(name, lambda: os.kill(pid, 9))
    attempt(name + "_group", lambda: os.killpg(pid, 9))
    attempt(name + "_pidfd", lambda: syscall(434, pid, 0))
attempt("all", lambda: os.kill(-1, 9))
print(json.dumps(out))
'''
        obs, r = probe(service, body)
        assert_refused(obs, {k: "ESRCH" for k in obs if k != "all"} | {"all": "ESRCH"})
        assert victim.poll() is None, "the host victim died"
        # bash's kill -9 -1 takes down the sandbox's own tree only.
        r = service.execute("kill -9 -1; echo rc=$?", "bash", 5000, limits=LIMITS)["result"]
        assert r["status"] in ("killed", "error", "ok"), r
        time.sleep(0.1)
        assert victim.poll() is None, "the host victim died after kill -9 -1 in the sandbox"
        assert service.running
    finally:
        victim.kill()
        victim.wait()
    assert_contained(service)


def test_hostile_privilege_escalation_attempts(service):
    """setuid(0)/setresuid/setgid(0), su (setuid-root on the host, owned by
    nobody here and on a nosuid mount, with no_new_privs), sudo (absent),
    newgrp; none of them gives uid 0 or any capability."""
    body = '''
import subprocess
attempt("setuid", lambda: os.setuid(0))
attempt("setresuid", lambda: os.setresuid(0, 0, 0))
attempt("setgid", lambda: os.setgid(0))
attempt("setgroups", lambda: os.setgroups([0]))
attempt("seteuid_other", lambda: os.seteuid(1001))
def run(cmd):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=5, stdin=subprocess.DEVNULL)
    return [p.returncode, (p.stdout + p.stderr).strip()[:100]]
attempt("su", lambda: run(["su", "-c", "id -u", "root"]))
attempt("sudo", lambda: run(["sudo", "id", "-u"]))
attempt("newgrp", lambda: run(["newgrp", "root"]))
out["ids"] = [os.getuid(), os.geteuid(), os.getgid(), os.getegid(), os.getgroups()]
print(json.dumps(out))
'''
    obs, r = probe(service, body)
    assert_refused(obs, {"setuid": "EPERM", "setresuid": "EPERM", "setgid": "EPERM", "setgroups": "EPERM",
                         "seteuid_other": ("EPERM", "EINVAL")})
    for cmd in ("su", "sudo", "newgrp"):
        v = obs[cmd]
        assert v == "ENOENT" or (v.startswith("ok: [") and not v.startswith("ok: [0")), f"{cmd}: {v}"
        assert "'0'" not in v and ", '0']" not in v, f"{cmd} printed uid 0: {v}"
    assert obs["ids"] == [1000, 1000, 1000, 1000, []], obs
    assert_contained(service)


def test_hostile_service_memory_and_init_not_accessible(service):
    """The sandbox init (pid 1) is non-dumpable: its exe, root, cwd, fd, maps,
    mem, environ are EACCES; the service process is not visible at all."""
    body = f'''
for f in ("exe", "root", "cwd"):
    attempt("init_" + f, lambda: os.readlink(f"/proc/1/{{f}}"))
for f in ("fd", "map_files"):
    attempt("init_" + f, lambda: os.listdir(f"/proc/1/{{f}}"))
for f in ("maps", "mem", "environ", "auxv", "stack", "syscall"):
    attempt("init_" + f, lambda: open(f"/proc/1/{{f}}", "rb").read(16))
attempt("service_proc", lambda: os.listdir("/proc/{service.proc.pid}"))
out["pids"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
print(json.dumps(out))
'''
    obs, r = probe(service, body)
    assert_refused(obs, {f"init_{f}": "EACCES" for f in ("exe", "root", "cwd", "fd", "map_files", "maps", "mem",
                                                          "environ", "auxv", "stack", "syscall")}
                   | {"service_proc": "ENOENT"})
    assert obs["pids"] == [1, 2], f"only the init and the runner should exist: {obs['pids']}"
    assert_contained(service)


def test_hostile_clock_and_hostname_changes_refused(service):
    """The clock (settimeofday, clock_settime, `date -s`) and the hostname
    (sethostname, /proc/sys/kernel/hostname, `hostname evil`) cannot be changed;
    the host's clock and hostname are untouched."""
    host_name = socket.gethostname()
    t_host = time.time()
    body = '''
import time
class timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]
ts = timespec(int(time.time()) + 86400 * 365, 0)
attempt("clock_settime", lambda: syscall(227, 0, ctypes.addressof(ts)))
attempt("settimeofday", lambda: syscall(164, ctypes.addressof(ts), 0))
attempt("sethostname", lambda: socket.sethostname("evil"))
attempt("setdomainname", lambda: syscall(171, ctypes.addressof(ctypes.create_string_buffer(b"evil")), 4))
attempt("proc_hostname", lambda: open("/proc/sys/kernel/hostname", "w").write("evil"))
import subprocess
out["date_s"] = subprocess.run(["date", "-s", "2030-01-01"], capture_output=True).returncode
out["hostname"] = socket.gethostname()
print(json.dumps(out))
'''
    obs, r = probe(service, body)
    assert_refused(obs, {"clock_settime": "EPERM", "settimeofday": "EPERM", "sethostname": "EPERM",
                         "setdomainname": "EPERM", "proc_hostname": ("EROFS", "EACCES")})
    assert obs["date_s"] != 0 and obs["hostname"] == "sandbox", obs
    assert socket.gethostname() == host_name
    assert abs(time.time() - t_host) < 60
    assert_contained(service)


# --------------------------------------------------------------------------
# Symlinks, scanner evasion (L#21, L#22)
# --------------------------------------------------------------------------

def test_hostile_symlink_tricks_stay_inside(service):
    """L#22: a symlink in /home/user to /etc/passwd reads the sandbox's own passwd
    (not the host's); links through /proc/1/root, `..` chains and a hard link to
    /etc/passwd get nowhere; the host never opens sandbox files (code and env go
    over the control socket)."""
    body = '''
os.symlink("/etc/passwd", "/home/user/p")
out["via_link"] = open("/home/user/p").read()
out["direct"] = open("/etc/passwd").read()
os.symlink("/proc/1/root/etc/shadow", "/home/user/s")
attempt("via_init_root", lambda: open("/home/user/s").read())
os.symlink("../../../../../../../..", "/home/user/up")
attempt("dotdot_work", lambda: os.listdir("/home/user/up/work"))
attempt("dotdot_root", lambda: sorted(os.listdir("/home/user/up")))
attempt("hardlink_passwd", lambda: os.link("/etc/passwd", "/home/user/h"))
attempt("hardlink_runner", lambda: os.link("/opt/runner/python_runner.py", "/tmp/r"))
attempt("symlink_over_runner", lambda: os.symlink("/tmp/x", "/opt/runner/x"))
print(json.dumps(out))
'''
    obs, r = probe(service, body)
    host_passwd = open("/etc/passwd").read()
    assert obs["via_link"] == obs["direct"], obs
    assert "user:x:1000:1000:" in obs["via_link"] and obs["via_link"] != host_passwd, obs
    assert_refused(obs, {"via_init_root": "EACCES", "dotdot_work": "ENOENT", "hardlink_passwd": "EXDEV",
                         "hardlink_runner": "EXDEV", "symlink_over_runner": ("EROFS", "EACCES")})
    assert "work" not in obs["dotdot_root"], obs
    assert_contained(service)


def test_hostile_static_scanner_evasion_is_harmless(service):
    """L#21: obfuscated calls (`getattr(__import__('o'+'s'), 'sys'+'tem')`, base64 +
    exec, builtins lookup) run — isolation, not code scanning, is the boundary —
    and only ever as uid 1000 in the sandbox."""
    code = ("import base64\n"
            "getattr(__import__('o' + 's'), 'sys' + 'tem')('id -u; hostname')\n"
            "exec(base64.b64decode(b'aW1wb3J0IG9zOyBwcmludChvcy5nZXR1aWQoKSk='))\n"
            "import builtins\ngetattr(builtins, 'ev' + 'al')(\"print('ok')\")\n")
    r = service.execute(code, "python", 5000, limits=LIMITS)["result"]
    assert r["status"] == "ok", r
    assert stdout_of(r) == "1000\nsandbox\n1000\nok\n", r
    assert_contained(service)


# --------------------------------------------------------------------------
# Concurrency (L#28)
# --------------------------------------------------------------------------

def test_hostile_concurrent_sandboxes_do_not_collide(service):
    """L#28: six identical requests at once, each binding 127.0.0.1:8080 and
    writing /home/user/id and /tmp/id: all succeed, each sees only its own files
    and port, with a distinct host uid each."""
    code = r"""
import os, socket, time, sys
me = os.environ["ME"]
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 8080)); s.listen(1)
for p in ("/home/user/id", "/tmp/id"):
    open(p, "w").write(me)
time.sleep(0.5)
c = socket.create_connection(("127.0.0.1", 8080))
print(me, open("/home/user/id").read(), open("/tmp/id").read(), open("/proc/self/uid_map").read().split()[4])
"""
    def one(i):
        return service.execute(code, "python", 10000, limits=LIMITS, env_vars={"ME": f"job{i}"})["result"]
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        results = list(pool.map(one, range(6)))
    uids = set()
    for i, r in enumerate(results):
        assert r["status"] == "ok", r
        me, home, tmp, uid = stdout_of(r).split()
        assert me == home == tmp == f"job{i}", stdout_of(r)
        uids.add(uid)
    assert len(uids) == 6, f"concurrent sandboxes shared a host uid: {uids}"
    assert_contained(service)
