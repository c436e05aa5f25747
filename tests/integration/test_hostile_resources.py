"""Hostile programs against the real service, part 1: resource exhaustion.

Each test runs one hostile program and asserts (a) its specific verdict, (b)
that nothing is left behind (processes of the sandbox uids, sbx-* cgroups,
sandboxes.live) and (c) that the next request on the same service works; the
storm tests also measure GET /health latency while the attack runs.

References in the docstrings: "L#n" = landscape.md §3 item n, "D#n" =
sandbox-design.md §6 row n. Small limits keep every case fast.

Leak checks are scoped to the instance under test (own_leftovers): other
service instances may run on the same host at the same time.
"""

import json
import time

import pytest

from helpers import HealthProbe, MIB, assert_contained, run_hostile, stderr_of, stdout_of

pytestmark = pytest.mark.lifecycle  # select with -k hostile

# Small limits: every bomb hits its wall quickly.
LIMITS = {"memoryMb": 128, "pids": 32, "outputBytes": 65536, "workspaceMb": 16, "fileSizeMb": 8}
# /health must keep answering while a sandbox attacks the host.
HEALTH_MAX_LATENCY = 1.0
# A killed execution must be answered promptly after its deadline.
DEADLINE_SLACK = 1.5


def hostile(service, code, language="python", timeout_ms=3000, limits=None, **limit_overrides):
    """Runs one hostile program under LIMITS (or `limits`), with overrides."""
    lim = dict(LIMITS if limits is None else limits)
    lim.update(limit_overrides)
    return run_hostile(service, code, language, timeout_ms, lim)


def describe(r) -> str:
    short = {k: r.get(k) for k in ("status", "error", "exitCode", "signal", "truncated", "usage")}
    short["stdout"] = stdout_of(r)[-400:]
    short["stderr"] = stderr_of(r)[-400:]
    return json.dumps(short)


def assert_verdict(r, status, error_name=None):
    assert r["status"] == status, f"expected status {status!r}: {describe(r)}"
    if error_name is not None:
        assert r["error"] and r["error"]["name"] == error_name, f"expected error {error_name}: {describe(r)}"


def assert_api_kept_answering(probe: HealthProbe):
    print(f"health during the attack: {probe.summary()}")  # shown with -s
    assert probe.latencies, "the health probe made no request"
    assert not probe.failures and probe.max_latency < HEALTH_MAX_LATENCY, \
        f"GET /health must keep answering within {HEALTH_MAX_LATENCY}s during the attack: {probe.summary()}"


# --------------------------------------------------------------------------
# Fork bombs, pids (L#1, L#2, L#29, L#30; D#1-4)
# --------------------------------------------------------------------------

PY_FORK_BOMB = r"""
import os
root = os.getpid()
reported = False
while True:
    try:
        os.fork()
    except OSError as e:
        if os.getpid() == root and not reported:
            print("fork failed:", e, flush=True)
            reported = True
"""


def test_hostile_python_fork_bomb(service):
    """L#1, L#29, D#1-2: `while True: os.fork()` hits the pids cap (EAGAIN, seen by
    the code), the run ends with a timeout verdict (wall or CPU time) and the whole
    tree is killed; /health keeps answering meanwhile."""
    with HealthProbe(service) as probe:
        r, took = hostile(service, PY_FORK_BOMB, timeout_ms=2000)
    assert_verdict(r, "timeout", "TimeoutError")
    assert "Resource temporarily unavailable" in stdout_of(r), describe(r)
    assert took < 2 + DEADLINE_SLACK, f"took {took:.1f}s for a 2 s timeout"
    assert_api_kept_answering(probe)
    assert_contained(service)


def test_hostile_bash_fork_bomb(service):
    """L#1, D#3-4: `:(){ :|:& };:` — bash reports the fork failure, the run ends
    (the shell goes on: verdict ok, or timeout) and every bomb process is killed
    with the sandbox."""
    with HealthProbe(service) as probe:
        r, took = hostile(service, ":(){ :|:& };:\nsleep 1\necho survived", "bash", timeout_ms=3000)
    assert r["status"] in ("ok", "timeout"), describe(r)
    assert "Resource temporarily unavailable" in stderr_of(r), describe(r)
    assert_api_kept_answering(probe)
    assert_contained(service)


def test_hostile_node_spawn_loop(service):
    """L#1: a node child_process.spawn loop — spawn fails with EAGAIN at the pids
    cap (asynchronously, as an 'error' event), the cell is stopped by its timeout
    and every child is killed."""
    code = r"""
const cp = require('child_process');
let started = 0, failed = null;
function more() {
  for (let i = 0; i < 4 && !failed; i++) {
    const c = cp.spawn('/bin/sleep', ['100'], {stdio: 'ignore'});
    c.on('spawn', () => { started++; });
    c.on('error', (e) => { if (!failed) { failed = e; process.stdout.write(`spawn failed after ${started}: ${e.code}\n`); } });
  }
  if (!failed) setTimeout(more, 1);
}
more();
await new Promise(() => {});
"""
    r, took = hostile(service, code, "javascript", timeout_ms=1500)
    assert_verdict(r, "timeout", "TimeoutError")
    assert "spawn failed after" in stdout_of(r) and "EAGAIN" in stdout_of(r), describe(r)
    assert_contained(service)


def test_hostile_spawn_up_to_pids_limit_keeps_earlier_output(service):
    """L#2: a loop of subprocess.Popen(sleep) — the Nth spawn fails cleanly with
    EAGAIN, the code goes on and its earlier output is preserved."""
    code = r"""
import subprocess
print("start", flush=True)
procs = []
try:
    while True:
        procs.append(subprocess.Popen(["/bin/sleep", "100"]))
except OSError as e:
    print(f"spawned {len(procs)} then: {e}")
"""
    r, took = hostile(service, code, pids=16)
    assert_verdict(r, "ok")
    out = stdout_of(r)
    assert out.startswith("start\n") and "Resource temporarily unavailable" in out, describe(r)
    spawned = int(out.split("spawned ")[1].split()[0])
    assert 5 <= spawned < 16, f"the pids cap of 16 should stop the loop below 16 children: {out!r}"
    assert_contained(service)


def test_hostile_thread_bomb(service):
    """L#1 (threads): a pthread spawn loop — thread creation fails at the pids cap
    (threads are tasks), Python raises RuntimeError, the run ends normally."""
    code = r"""
import threading, time
threads = []
try:
    while True:
        t = threading.Thread(target=time.sleep, args=(100,), daemon=True)
        t.start()
        threads.append(t)
except RuntimeError as e:
    print(f"threads {len(threads)}: {e}")
"""
    r, took = hostile(service, code)
    assert_verdict(r, "ok")
    assert "can't start new thread" in stdout_of(r), describe(r)
    assert int(stdout_of(r).split()[1].rstrip(":")) < LIMITS["pids"], describe(r)
    assert_contained(service)


def test_hostile_benign_thread_heavy_runtimes_still_work(service):
    """L#30: benign thread-heavy code under a tight pids limit (32) and 128 MiB
    still runs: 16 Python threads, and node with 4 worker threads."""
    r, _ = hostile(service, "import threading\nts=[threading.Thread(target=sum, args=([1]*1000,)) for _ in range(16)]\n"
                            "[t.start() for t in ts]; [t.join() for t in ts]\nprint('threads ok')")
    assert_verdict(r, "ok")
    assert stdout_of(r) == "threads ok\n", describe(r)
    code = r"""
const { Worker } = require('worker_threads');
const ws = [];
for (let i = 0; i < 4; i++) ws.push(new Promise((res, rej) => {
  const w = new Worker('require("worker_threads").parentPort.postMessage(6*7)', { eval: true });
  w.on('message', res); w.on('error', rej);
}));
const got = await Promise.all(ws);
process.stdout.write(got.join(',') + '\n');
"""
    r, _ = hostile(service, code, "javascript", timeout_ms=10000)
    assert_verdict(r, "ok")
    assert stdout_of(r) == "42,42,42,42\n", describe(r)
    assert_contained(service)


# --------------------------------------------------------------------------
# Memory (L#12, L#13, L#29; D#5-8)
# --------------------------------------------------------------------------

MEMORY_BOMBS = {
    "python-huge-string": ("python", "a = 'x' * 10**10"),
    "python-growing-list": ("python", "import time\nl = []\nwhile True:\n    l.append(bytearray(1 << 20))\n"
                                      "    time.sleep(0.001)"),
    "python-bytearray": ("python", "b = bytearray(10**10)"),
    "node-buffer-loop": ("javascript", "const a = []; for (;;) a.push(Buffer.alloc(1 << 20, 1));"),
    "bash-variable": ("bash", "x=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx; while :; do x=$x$x; done"),
}

@pytest.mark.parametrize("name", list(MEMORY_BOMBS))
def test_hostile_memory_bomb(service, name):
    """L#12, L#13, D#6, D#8: memory bombs are OOM-killed by the memory cgroup at the
    limit (128 MiB) — a distinct `memory_limit` verdict with MemoryError — and the
    peak stays at the limit (swap is counted: no escape hatch)."""
    language, code = MEMORY_BOMBS[name]
    r, took = hostile(service, code, language, timeout_ms=10000)
    assert_verdict(r, "memory_limit", "MemoryError")
    peak = r["usage"]["peakMemoryBytes"]
    limit = LIMITS["memoryMb"] * MIB
    assert limit * 0.7 <= peak <= limit + MIB, f"peak {peak} for a limit of {limit}: {describe(r)}"
    assert took < 8, f"took {took:.1f}s"
    assert_contained(service)


def test_hostile_memory_storm_keeps_api_responsive(service):
    """L#29: eight processes allocating as fast as they can against a 512 MiB
    limit: OOM kills happen inside the sandbox only and /health keeps answering."""
    code = r"""
import os
for i in range(8):
    if os.fork() == 0:
        l = []
        while True:
            l.append(bytearray(1 << 20))
while True:
    try:
        os.wait()
    except ChildProcessError:
        break
print("all children gone")
"""
    with HealthProbe(service) as probe:
        r, took = hostile(service, code, timeout_ms=4000, memoryMb=512, pids=64)
    # The children are the ones OOM-killed; the parent may survive them.
    assert r["status"] in ("memory_limit", "ok", "timeout"), describe(r)
    assert r["usage"]["peakMemoryBytes"] <= 512 * MIB + MIB, describe(r)
    assert_api_kept_answering(probe)
    assert_contained(service)


def test_hostile_workspace_larger_than_memory_is_bounded_by_memory(service):
    """L#14 (twist): tmpfs pages are charged to the sandbox's memory cgroup, so a
    workspace (512 MiB) larger than the memory limit (64 MiB) cannot be used to
    hold more memory than the limit: the writer is OOM-killed."""
    code = ("n = 0\nwith open('/home/user/f', 'wb') as f:\n    while True:\n"
            "        f.write(b'x' * (1 << 20)); f.flush(); n += 1\n")
    r, took = hostile(service, code, memoryMb=64, workspaceMb=512, fileSizeMb=1024)
    assert_verdict(r, "memory_limit", "MemoryError")
    assert_contained(service)


def test_hostile_sysv_shared_memory_is_charged(service):
    """L#12 via SysV shm: a 512 MiB shm segment touched page by page is charged to
    the sandbox (memory_limit at 128 MiB); the segment dies with the IPC namespace."""
    code = r"""
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
shmid = libc.shmget(0, 512 << 20, 0o1600)
print("shmid", shmid, flush=True)
p = libc.shmat(shmid, None, 0)
ctypes.memset(p, 1, 512 << 20)
print("touched 512 MiB")
"""
    r, took = hostile(service, code, timeout_ms=5000)
    assert_verdict(r, "memory_limit", "MemoryError")
    assert "touched" not in stdout_of(r), describe(r)
    assert_contained(service)


def test_hostile_kernel_buffers_are_charged(service):
    """Kernel memory held in socket buffers (700 filled socketpairs ~ 150 MiB) is
    charged to the sandbox: memory_limit at 128 MiB, not host memory."""
    code = r"""
import socket
pairs, total = [], 0
for i in range(700):
    a, b = socket.socketpair()
    a.setblocking(False)
    try:
        while True:
            total += a.send(b'x' * 65536)
    except BlockingIOError:
        pass
    pairs.append((a, b))
print("filled MiB", total >> 20)
"""
    r, took = hostile(service, code, timeout_ms=8000, openFiles=2048)
    assert_verdict(r, "memory_limit", "MemoryError")
    assert_contained(service)


# --------------------------------------------------------------------------
# CPU, wall clock, signals (L#8, L#9, L#29, L#32; D#24)
# --------------------------------------------------------------------------

def test_hostile_cpu_spin_wall_timeout(service):
    """L#8, L#32: `while True: pass` with no cpuMs: killed at the 1 s wall-clock
    deadline, TimeoutError naming the timeout, answered promptly."""
    r, took = hostile(service, "print('spinning', flush=True)\nwhile True: pass", timeout_ms=1000)
    assert_verdict(r, "timeout", "TimeoutError")
    assert "1000 ms" in r["error"]["value"], describe(r)
    assert stdout_of(r) == "spinning\n", f"partial output must be kept: {describe(r)}"
    assert 1.0 <= took < 1 + DEADLINE_SLACK, f"took {took:.2f}s for a 1 s timeout"
    assert_contained(service)


def test_hostile_cpu_spin_cpu_limit(service):
    """L#8, D#24: with cpuMs 300 and a 10 s timeout, the spin is stopped for its
    CPU time: TimeoutError whose value mentions CPU time, long before the wall."""
    r, took = hostile(service, "while True: pass", timeout_ms=10000, cpuMs=300)
    assert_verdict(r, "timeout", "TimeoutError")
    assert "CPU" in r["error"]["value"], describe(r)
    assert r["usage"]["cpuMs"] >= 300, describe(r)
    assert took < 4, f"took {took:.1f}s: the CPU limit must end it well before the 10 s timeout"
    assert_contained(service)


def test_hostile_many_cpu_spinners_keep_api_responsive(service):
    """L#29: sixty spinning processes (more than the 2 vCPUs can run) — the CPU-time
    limit of the tree ends them all; /health answers within 1 s meanwhile."""
    code = "import os\nfor i in range(60):\n    if os.fork() == 0:\n        while True: pass\nwhile True: pass"
    with HealthProbe(service) as probe:
        r, took = hostile(service, code, timeout_ms=3000, pids=64)
    assert_verdict(r, "timeout", "TimeoutError")
    assert took < 3 + DEADLINE_SLACK, f"took {took:.1f}s"
    assert_api_kept_answering(probe)
    assert_contained(service)


@pytest.mark.parametrize("language,code", [
    ("python", "import time\nprint('before', flush=True)\ntime.sleep(100)\nprint('after')"),
    ("bash", "echo before\nsleep 100\necho after"),
    ("javascript", "process.stdout.write('before\\n');\n"
                   "Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100000);\n"
                   "process.stdout.write('after\\n');"),
])
def test_hostile_sleep_past_timeout_keeps_partial_output(service, language, code):
    """L#9, L#8: sleeping past the timeout (no CPU used) — the wall clock fires,
    TimeoutError, the output written before the deadline is kept."""
    r, took = hostile(service, code, language, timeout_ms=1000)
    assert_verdict(r, "timeout", "TimeoutError")
    assert stdout_of(r) == "before\n", describe(r)
    assert 1.0 <= took < 1 + DEADLINE_SLACK, f"took {took:.2f}s"
    assert_contained(service)


@pytest.mark.parametrize("language,code", [
    ("python", "import sys\nprint('reading', flush=True)\nprint(sys.stdin.read())"),
    ("bash", "echo reading; read x; echo got $x"),
])
def test_hostile_read_stdin_forever(service, language, code):
    """L#9: read() on stdin with no input: stdin is at end-of-file, so the read
    returns at once instead of hanging until the wall clock."""
    r, took = hostile(service, code, language, timeout_ms=5000)
    assert_verdict(r, "ok", None)
    assert stdout_of(r) in ("reading\n\n", "reading\ngot\n"), describe(r)
    assert took < 2, f"took {took:.2f}s: stdin did not read as end-of-file"
    assert_contained(service)


@pytest.mark.parametrize("language,code", [
    ("python", "import signal\nfor s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):\n"
               "    signal.signal(s, signal.SIG_IGN)\nprint('ignoring', flush=True)\nwhile True: pass"),
    ("bash", "trap '' INT TERM HUP QUIT\necho ignoring\nwhile :; do :; done"),
    ("javascript", "for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(s, () => {});\n"
                   "process.stdout.write('ignoring\\n');\nfor (;;) {}"),
])
def test_hostile_ignores_signals_and_spins(service, language, code):
    """L#8, L#32: a program that ignores SIGINT/SIGTERM/SIGHUP and spins is still
    killed at its timeout (one authoritative server-side deadline)."""
    r, took = hostile(service, code, language, timeout_ms=1000)
    assert_verdict(r, "timeout", "TimeoutError")
    assert stdout_of(r) == "ignoring\n", describe(r)
    assert took < 1 + DEADLINE_SLACK, f"took {took:.2f}s for a 1 s timeout"
    assert_contained(service)


@pytest.mark.parametrize("language,code", [
    ("python", "import os, signal\nprint('stopping', flush=True)\nos.kill(os.getpid(), signal.SIGSTOP)"),
    ("bash", "echo stopping\nkill -STOP $$"),
    ("bash", "echo stopping\nkill -STOP $PPID\nsleep 100"),
])
def test_hostile_sigstop_self_or_runner(service, language, code):
    """A program that SIGSTOPs itself (python: the runner is the code's own
    process) or its runner (bash: $$, $PPID): the deadline still fires and the
    stopped tree is killed (SIGKILL works on stopped tasks)."""
    r, took = hostile(service, code, language, timeout_ms=1000)
    assert_verdict(r, "timeout", "TimeoutError")
    assert stdout_of(r) == "stopping\n", describe(r)
    assert took < 1 + DEADLINE_SLACK
    assert_contained(service)


# --------------------------------------------------------------------------
# Daemons and zombies (L#10, L#11; D#10)
# --------------------------------------------------------------------------

PY_DAEMON = r"""
import os, time
r, w = os.pipe()
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.write(w, str(os.getpid()).encode())
        os.close(w)
        time.sleep(300)
        os._exit(0)
    os._exit(0)
os.wait()
os.close(w)
pid = int(os.read(r, 32))
os.kill(pid, 0)  # the daemon is alive, reparented to the sandbox init
print("daemon", pid, "ppid", open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[1], flush=True)
"""


def test_hostile_daemon_outlives_normal_end(service):
    """L#10, D#10: a double-forked, setsid'd daemon outlives the cell, which ends
    normally (verdict ok): the sandbox is destroyed with the execution and the
    daemon is killed with it — nothing is left."""
    r, took = hostile(service, PY_DAEMON)
    assert_verdict(r, "ok")
    assert stdout_of(r).startswith("daemon ") and stdout_of(r).endswith(" ppid 1\n"), describe(r)
    assert_contained(service, timeout=5)


def test_hostile_daemon_outlives_timeout(service):
    """L#10, D#10: the same daemon plus a spinning main process: killed at the
    timeout, nothing left."""
    r, took = hostile(service, PY_DAEMON + "while True: pass\n", timeout_ms=1000)
    assert_verdict(r, "timeout", "TimeoutError")
    assert stdout_of(r).startswith("daemon "), describe(r)
    assert_contained(service, timeout=5)


def test_hostile_bash_background_nohup_setsid_disown(service):
    """L#10: `sleep &`, nohup, setsid and disown from bash — the cell ends (ok)
    and every background process dies with the sandbox."""
    code = ("sleep 300 &\nnohup sleep 300 >/dev/null 2>&1 &\nsetsid sleep 300 &\n"
            "(setsid sh -c 'sleep 300 &' &)\ndisown -a\nsleep 0.2\n"
            "echo started $(pgrep -c sleep || ls /proc | grep -c '^[0-9]')")
    r, took = hostile(service, code, "bash")
    assert_verdict(r, "ok")
    assert stdout_of(r).startswith("started"), describe(r)
    assert_contained(service, timeout=5)


def test_hostile_node_detached_child(service):
    """L#10: node spawns a detached, unref'd child and returns: killed with the sandbox."""
    code = ("const cp = require('child_process');\n"
            "const c = cp.spawn('/bin/sleep', ['300'], {detached: true, stdio: 'ignore'}); c.unref();\n"
            "process.stdout.write('child ' + c.pid + '\\n');")
    r, took = hostile(service, code, "javascript")
    assert_verdict(r, "ok")
    assert stdout_of(r).startswith("child "), describe(r)
    assert_contained(service, timeout=5)


def test_hostile_orphan_zombies_are_reaped(service):
    """L#11: 20 orphans that exit at once are reparented to the sandbox init, which
    reaps them (no zombies with ppid 1); un-waited children of the code itself
    (zombies of the runner, if any) are its own business and die with the sandbox."""
    code = r"""
import os, time
for i in range(20):
    if os.fork() == 0:
        if os.fork() == 0:
            os._exit(0)
        os._exit(0)
    os.wait()
for i in range(10):          # direct children never waited for: zombies of the runner
    if os.fork() == 0:
        os._exit(0)
def zombies():
    out = []
    for p in os.listdir('/proc'):
        if p.isdigit():
            try:
                fields = open(f'/proc/{p}/stat').read().rsplit(')', 1)[1].split()
            except OSError:
                continue
            if fields[0] == 'Z':
                out.append(int(fields[1]))
    return out
deadline = time.monotonic() + 2
while [pp for pp in zombies() if pp == 1] and time.monotonic() < deadline:
    time.sleep(0.02)
z = zombies()
print("orphan zombies", sum(1 for pp in z if pp == 1), "own zombies", sum(1 for pp in z if pp != 1))
"""
    r, took = hostile(service, code)
    assert_verdict(r, "ok")
    assert stdout_of(r).startswith("orphan zombies 0 own zombies "), describe(r)
    assert_contained(service)


# --------------------------------------------------------------------------
# Disk, file size, open files (L#14, L#15; D#22-23)
# --------------------------------------------------------------------------

def test_hostile_disk_fill_workspace_tmp_and_shm(service):
    """L#14, D#23: filling /home/user, /tmp and /dev/shm stops with ENOSPC at the
    workspace size (16 MiB each; /dev/shm is at most 16 MiB) — the code sees the
    error and goes on (verdict ok); the space goes with the sandbox."""
    code = r"""
import errno, json
out = {}
for path in ['/home/user/fill', '/tmp/fill', '/dev/shm/fill']:
    n = 0
    try:
        for i in range(100):
            with open(f'{path}{i}', 'wb') as f:
                for _ in range(4):
                    f.write(b'x' * (1 << 20)); f.flush(); n += 1
        out[path] = ['no error', n]
    except OSError as e:
        out[path] = [errno.errorcode.get(e.errno), n]
print(json.dumps(out))
"""
    r, took = hostile(service, code, timeout_ms=10000)
    assert_verdict(r, "ok")
    got = json.loads(stdout_of(r))
    for path, (err, mib) in got.items():
        assert err == "ENOSPC" and 12 <= mib <= 16, f"{path}: expected ENOSPC near 16 MiB, got {err} after {mib} MiB"
    assert_contained(service)


def test_hostile_fallocate_huge_file(service):
    """L#14: fallocate of 10 GiB in /home/user fails (EFBIG from RLIMIT_FSIZE or
    ENOSPC from the tmpfs) without taking anything from the host."""
    code = ("import os, errno\nfd = os.open('/home/user/huge', os.O_CREAT | os.O_WRONLY)\n"
            "try:\n    os.posix_fallocate(fd, 0, 10 << 30)\n    print('allocated')\n"
            "except OSError as e:\n    print(errno.errorcode.get(e.errno))")
    r, took = hostile(service, code)
    assert_verdict(r, "ok")
    assert stdout_of(r).strip() in ("EFBIG", "ENOSPC"), describe(r)
    assert_contained(service)


def test_hostile_file_bigger_than_file_size_limit_python(service):
    """L#14, D#22: writing past fileSizeMb (8 MiB) fails with EFBIG (Python ignores
    SIGXFSZ); caught, the program reports it (ok); uncaught, it is the cell's
    OSError (error)."""
    code = ("import errno\nn = 0\ntry:\n    with open('/home/user/big', 'wb') as f:\n        while True:\n"
            "            f.write(b'x' * (1 << 20)); f.flush(); n += 1\n"
            "except OSError as e:\n    print(n, errno.errorcode.get(e.errno))")
    r, took = hostile(service, code, workspaceMb=64)
    assert_verdict(r, "ok")
    assert stdout_of(r) == "8 EFBIG\n", describe(r)
    r, took = hostile(service, "f = open('/tmp/big', 'wb')\nwhile True:\n    f.write(b'x' * (1 << 20)); f.flush()",
                      workspaceMb=64)
    assert_verdict(r, "error", "OSError")
    assert "File too large" in r["error"]["value"], describe(r)
    assert_contained(service)


def test_hostile_file_bigger_than_file_size_limit_bash(service):
    """L#14, D#22: `dd` past fileSizeMb is killed by SIGXFSZ (exit 153); the shell
    reports it and goes on."""
    r, took = hostile(service, "dd if=/dev/zero of=/home/user/big bs=1M count=100 2>/dev/null; echo rc=$?\n"
                               "stat -c %s /home/user/big", "bash", workspaceMb=64)
    assert_verdict(r, "ok")
    assert stdout_of(r) == f"rc=153\n{8 * MIB}\n", describe(r)
    assert "File size limit exceeded" in stderr_of(r), describe(r)
    assert_contained(service)


def test_hostile_too_many_open_files(service):
    """EMFILE at openFiles (64): the open loop stops below the limit, the code
    goes on."""
    code = ("import errno\nfs = []\ntry:\n    while True:\n        fs.append(open('/dev/null'))\n"
            "except OSError as e:\n    print(len(fs), errno.errorcode.get(e.errno))")
    r, took = hostile(service, code, openFiles=64)
    assert_verdict(r, "ok")
    n, err = stdout_of(r).split()
    assert err == "EMFILE" and 40 <= int(n) < 64, describe(r)
    assert_contained(service)


def test_hostile_nothing_persists_between_runs(service):
    """L#15: files in /home/user, /tmp, /dev/shm and a SysV shm segment (IPC
    namespace) written by one run are gone in the next."""
    first = r"""
import ctypes
for p in ['/home/user/persist', '/tmp/persist', '/dev/shm/persist']:
    open(p, 'w').write('x')
libc = ctypes.CDLL(None, use_errno=True)
print(libc.shmget(0x5eed, 4096, 0o1600 | 0o666) >= 0)
"""
    r, _ = hostile(service, first)
    assert_verdict(r, "ok")
    assert stdout_of(r) == "True\n", describe(r)
    second = r"""
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
print([os.path.exists(p) for p in ['/home/user/persist', '/tmp/persist', '/dev/shm/persist']],
      libc.shmget(0x5eed, 0, 0), os.path.exists('/var/tmp'), os.path.exists('/run/lock'))
"""
    r, _ = hostile(service, second)
    assert_verdict(r, "ok")
    assert stdout_of(r) == "[False, False, False] -1 False False\n", describe(r)
    assert_contained(service)


# --------------------------------------------------------------------------
# Environment, argv, priorities, own limits
# --------------------------------------------------------------------------

def test_hostile_huge_environment_and_argv(service):
    """A 900 KiB environment value (envVars), 20 000 variables, a 200 KiB single
    argument and 10 MB of arguments: the cell sees its environment, exec fails
    cleanly with E2BIG, the service is unaffected."""
    code = ("import os, subprocess\nprint(len(os.environ['BIG']))\n"
            "for argv in (['/bin/true', 'x' * (200 << 10)], ['/bin/true'] + ['y' * 1000] * 10000, ['/bin/true']):\n"
            "    try:\n        print(subprocess.run(argv).returncode)\n"
            "    except OSError as e:\n        print(e.strerror)\n")
    t0 = time.monotonic()
    r = service.execute(code, "python", 10000, limits=LIMITS, env_vars={"BIG": "v" * (900 << 10)})["result"]
    assert_verdict(r, "ok")
    # With a 900 KiB variable in the environment even /bin/true cannot be exec'd.
    assert stdout_of(r) == f"{900 << 10}\nArgument list too long\nArgument list too long\nArgument list too long\n", \
        describe(r)
    many = {f"K{i}": "v" * 100 for i in range(20000)}
    r = service.execute("import os\nprint(sum(1 for k in os.environ if k.startswith('K')))", "python", 10000,
                        limits=LIMITS, env_vars=many)["result"]
    assert_verdict(r, "ok")
    assert stdout_of(r) == "20000\n", describe(r)
    assert time.monotonic() - t0 < 10
    assert_contained(service)


def test_hostile_priority_and_own_limits_cannot_be_raised(service):
    """A spinner that could make itself real-time (SCHED_FIFO/RR), raise its nice
    level, take real-time I/O priority, lock memory, or raise its own hard
    rlimits (NPROC, NOFILE, FSIZE) would escape its limits or starve the host: all
    refused."""
    code = r"""
import ctypes, errno, json, os, resource
out = {}
def attempt(name, fn):
    try:
        fn(); out[name] = "ok"
    except OSError as e:
        out[name] = errno.errorcode.get(e.errno, str(e.errno))
    except ValueError as e:  # resource.setrlimit reports EPERM this way
        out[name] = "EPERM" if "not allowed to raise" in str(e) else "ValueError: " + str(e)
attempt("sched_fifo", lambda: os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1)))
attempt("sched_rr", lambda: os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(1)))
attempt("nice_down", lambda: os.setpriority(os.PRIO_PROCESS, 0, -5))
libc = ctypes.CDLL(None, use_errno=True)
def ioprio_rt():
    if libc.syscall(251, 1, 0, (1 << 13) | 0) != 0:   # ioprio_set(WHO_PROCESS, self, CLASS_RT)
        raise OSError(ctypes.get_errno(), "ioprio_set")
attempt("ioprio_rt", ioprio_rt)
def mlock_big():
    buf = ctypes.create_string_buffer(16 << 20)
    if libc.mlock(buf, 16 << 20) != 0:
        raise OSError(ctypes.get_errno(), "mlock")
attempt("mlock_16m", mlock_big)
for name in ("RLIMIT_NPROC", "RLIMIT_NOFILE", "RLIMIT_FSIZE", "RLIMIT_MEMLOCK"):
    res = getattr(resource, name)
    soft, hard = resource.getrlimit(res)
    attempt("raise_" + name, lambda: resource.setrlimit(res, (hard + 1, hard + 1)))
attempt("prlimit_init", lambda: resource.prlimit(1, resource.RLIMIT_NOFILE, (1 << 20, 1 << 20)))
print(json.dumps(out))
"""
    r, took = hostile(service, code)
    assert_verdict(r, "ok")
    obs = json.loads(stdout_of(r))
    wrong = {k: v for k, v in obs.items() if v not in ("EPERM", "EACCES", "ENOMEM", "EAGAIN")}
    assert not wrong, f"allowed: {wrong} (all: {obs})"
    assert_contained(service)
