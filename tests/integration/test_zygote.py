"""Python kernels forked from the zygote (ZYGOTE=auto; README "Zygote").

Each pitfall of forking a pre-initialised interpreter (reference/zygote.md) has a
test: the sandbox's isolation is the exec path's, field by field; RNGs differ
across sandboxes; no descriptor or memory of the service reaches the kernel; the
zygote has one thread; a killed zygote is replaced while requests keep succeeding
on the exec path.
"""

import json
import os
import secrets
import signal
from pathlib import Path

import pytest

from helpers import Service, stdout_of, wait_until
from sandbox_helpers import create_sandbox, delete_sandbox, sexec

from helpers import SANITIZED

# A sanitizer build's module links libasan, which an uninstrumented python3 cannot load.
pytestmark = [pytest.mark.isolation,
              pytest.mark.skipif(SANITIZED, reason="the zygote's module is not loadable in ASan builds")]

ZYGOTE_ENV = {"ZYGOTE": "auto", "WARM_POOL_SIZE": "0"}


def zygote_of(service) -> dict:
    z = service.health().get("zygote")
    assert isinstance(z, dict), f"/health has no zygote: {service.health()!r}"
    return z


def wait_ready(service, other_than=None) -> dict:
    return wait_until(
        lambda: (lambda z: z if z["state"] == "ready" and z["pid"] != other_than else None)(
            zygote_of(service)),
        60, message=lambda _: f"the zygote never became ready: {zygote_of(service)!r}\n"
                              + service.log_tail(30))


def run_ok(service, code: str) -> str:
    r = service.execute(code, "python", 20000, http_timeout=60)["result"]
    assert r["status"] == "ok", f"{code!r} failed: {r!r}"
    return stdout_of(r)


@pytest.fixture
def zygote_service(service_factory):
    svc = service_factory(env=ZYGOTE_ENV)
    wait_ready(svc)
    return svc


def test_one_shots_are_forked_from_the_zygote(zygote_service):
    before = zygote_of(zygote_service)
    for i in range(3):
        assert run_ok(zygote_service, f"print({i} * 7)") == f"{i * 7}\n"
    after = zygote_of(zygote_service)
    assert after["forks"] == before["forks"] + 3, (before, after)
    assert after["fallbacks"] == before["fallbacks"], (before, after)
    assert after["pid"] == before["pid"]


# What a sandbox's kernel sees of its own isolation; everything that must not differ
# between an exec'd and a forked kernel. Mount and device ids vary per mount.
ISOLATION_PROBE = r'''
import json, os, resource, signal, socket, sys
status = dict(l.split(":", 1) for l in open("/proc/self/status").read().splitlines())
keys = ["Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb",
        "NoNewPrivs", "Seccomp", "Seccomp_filters", "SigBlk", "SigIgn", "SigCgt"]
mounts = []
for line in open("/proc/self/mountinfo"):
    left, right = line.split(" - ")
    f = left.split()
    mounts.append([f[4], f[5], right.split()[0], right.split()[2]])
limits = {n: resource.getrlimit(getattr(resource, n)) for n in dir(resource) if n.startswith("RLIMIT_")}
fds = {}
for fd in os.listdir("/proc/self/fd"):
    try:
        fds[fd] = os.readlink(f"/proc/self/fd/{fd}").split(":")[0]
    except OSError:
        pass  # the listing's own fd, closed by now
umask = os.umask(0); os.umask(umask)
print(json.dumps({
    "status": {k: status.get(k, "").strip() for k in keys},
    "ids": [os.getpid(), os.getppid(), os.getuid(), os.geteuid(), os.getgid(), os.getgroups()],
    "sid": os.getsid(0) == os.getpid(), "pgid": os.getpgid(0) == os.getpid(),
    "host": socket.gethostname(), "cwd": os.getcwd(), "umask": umask,
    "root": sorted(os.listdir("/")), "mounts": mounts, "limits": limits, "fds": fds,
    "cgroup": open("/proc/self/cgroup").read(), "env": dict(os.environ),
    "argv": sys.argv, "orig_argv": sys.orig_argv, "path": sys.path, "flags": list(sys.flags),
    "tz": __import__("time").tzname,
    "net": sorted(os.listdir("/sys/class/net")) if os.path.isdir("/sys/class/net") else None,
    "dumpable": os.stat("/proc/self/mem").st_uid,
    "nice": os.nice(0), "oom": open("/proc/self/oom_score_adj").read(),
    "stdio": [sys.stdin.encoding, sys.stdout.encoding, sys.getfilesystemencoding()],
}, sort_keys=True))
'''


def test_a_forked_kernel_has_exactly_the_exec_paths_isolation(service_factory):
    exec_svc = service_factory(env={"ZYGOTE": "off", "WARM_POOL_SIZE": "0"}, name="exec-path")
    execd = json.loads(run_ok(exec_svc, ISOLATION_PROBE))
    assert "zygote" not in exec_svc.health()
    exec_svc.stop(timeout=30)
    zyg_svc = service_factory(env=ZYGOTE_ENV, name="zygote-path")
    wait_ready(zyg_svc)
    before = zygote_of(zyg_svc)["forks"]
    forked = json.loads(run_ok(zyg_svc, ISOLATION_PROBE))
    assert zygote_of(zyg_svc)["forks"] == before + 1, "the probe did not run in a forked kernel"
    for key in execd:
        assert forked[key] == execd[key], f"{key}: forked {forked[key]!r} != exec'd {execd[key]!r}"
    assert forked["fds"] == {str(i): v for i, v in enumerate(["pipe", "pipe", "pipe", "socket", "socket"])}


def test_random_values_differ_across_forked_sandboxes(zygote_service):
    code = ("import random, os, uuid, tempfile\n"
            "print(random.random(), random.getrandbits(64), os.urandom(8).hex(), uuid.uuid4(),"
            " tempfile.mktemp())")
    outputs = [run_ok(zygote_service, code) for _ in range(4)]
    for column in range(5):
        values = [o.split()[column] for o in outputs]
        assert len(set(values)) == len(values), f"column {column} repeats across sandboxes: {outputs}"


def test_no_memory_of_the_service_or_zygote_reaches_a_kernel(service_factory):
    secret = "zyg" + secrets.token_hex(16)
    svc = service_factory(env={**ZYGOTE_ENV, "CODEEXEC_TEST_SECRET": secret})
    wait_ready(svc)
    head, tail = secret[:12], secret[12:]
    # The cell holds the two halves apart (the tail reversed), so only a copy of the
    # whole secret in the process's memory can match.
    code = f'''
import re
head, tail = {head.encode()!r}, {tail[::-1].encode()!r}[::-1]
found = []
with open("/proc/self/maps") as maps, open("/proc/self/mem", "rb", 0) as mem:
    for line in maps:
        start, end = (int(x, 16) for x in line.split()[0].split("-"))
        if line.split()[1][0] != "r":
            continue
        try:
            mem.seek(start)
            data = mem.read(end - start)
        except (OSError, ValueError, OverflowError):
            continue
        at = data.find(head)
        while at >= 0:
            if data[at + len(head):at + len(head) + len(tail)] == tail:
                found.append(line.split()[-1])
            at = data.find(head, at + 1)
print("found", found)
for name in ("environ", "cmdline"):
    text = open(f"/proc/self/{{name}}", "rb").read()
    print(name, head in text)
'''
    before = zygote_of(svc)["forks"]
    assert run_ok(svc, code) == "found []\nenviron False\ncmdline False\n"
    assert zygote_of(svc)["forks"] == before + 1


def test_no_descriptor_of_the_service_reaches_a_kernel(zygote_service):
    # Sandboxes live at the same time, so other sandboxes' pipes exist in the service.
    sandboxes = [create_sandbox(zygote_service)["sandboxId"] for _ in range(2)]
    try:
        out = run_ok(zygote_service, "import os\nprint(sorted(int(f) for f in os.listdir('/proc/self/fd')))")
        fds = json.loads(out)
        assert fds[:5] == [0, 1, 2, 3, 4] and len(fds) == 6, fds  # the 6th: the listing's own
    finally:
        for sid in sandboxes:
            delete_sandbox(zygote_service, sid)


def test_the_zygote_has_one_thread_and_no_capabilities(zygote_service):
    run_ok(zygote_service, "print(1)")
    pid = zygote_of(zygote_service)["pid"]
    assert len(os.listdir(f"/proc/{pid}/task")) == 1
    status = dict(l.split(":", 1) for l in Path(f"/proc/{pid}/status").read_text().splitlines())
    for key in ("CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert int(status[key].strip(), 16) == 0, f"the zygote keeps {key} {status[key].strip()}"
    assert status["NoNewPrivs"].strip() == "1"
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    assert not any(e.startswith(b"SANDBOX_UID_BASE=") or e.startswith(b"ZYGOTE=") for e in environ), \
        "the zygote inherited the service's environment"


def test_a_killed_zygote_is_replaced_and_requests_meanwhile_succeed(zygote_service):
    old = zygote_of(zygote_service)
    os.kill(old["pid"], signal.SIGKILL)
    # Right after the kill: the launches take the exec path, none fails.
    for i in range(3):
        assert run_ok(zygote_service, f"print('during', {i})") == f"during {i}\n"
    new = wait_ready(zygote_service, other_than=old["pid"])
    assert new["starts"] > old["starts"]
    assert new["fallbacks"] > old["fallbacks"], "no launch took the exec path meanwhile"
    assert run_ok(zygote_service, "print('after')") == "after\n"
    assert zygote_of(zygote_service)["forks"] > new["forks"]


def test_stateful_sandboxes_and_the_pool_use_the_zygote(service_factory):
    svc = service_factory(env={"ZYGOTE": "auto", "WARM_POOL_SIZE": "1",
                               "WARM_POOL_LANGUAGES": "python"})
    wait_ready(svc)
    # The pool filled at start, maybe before the zygote was ready; taking its sandbox
    # makes it refill now, from the zygote.
    first = create_sandbox(svc)["sandboxId"]
    sids = [first]
    try:
        wait_until(lambda: svc.health()["sandboxes"]["pooled"] >= 1 and zygote_of(svc)["forks"] >= 1,
                   60, message=lambda _: f"the pool was not refilled from the zygote: {svc.health()!r}")
        forks = zygote_of(svc)["forks"]
        sids.append(create_sandbox(svc)["sandboxId"])  # the forked pooled one
        for sid in sids:
            for code, want in (("x = 40", ""), ("print(x + 2)", "42\n")):
                r = sexec(svc, sid, code)
                assert r["status"] == "ok" and stdout_of(r) == want, r
        wait_until(lambda: zygote_of(svc)["forks"] > forks, 60,
                   message=lambda _: f"no second refill from the zygote: {svc.health()!r}")
    finally:
        for sid in sids:
            delete_sandbox(svc, sid)


def test_zygote_setting_is_checked(tmp_path):
    svc = Service({"ZYGOTE": "sometimes"}, tmp_path / "bad.log", "bad-zygote")
    with pytest.raises(RuntimeError, match="ZYGOTE=sometimes: expected auto or off"):
        svc.start(listen_timeout=20)
    svc.kill()
    svc.close_log()


def test_nothing_left_after_a_zygote_service_stops(service_factory):
    svc = service_factory(env=ZYGOTE_ENV)
    wait_ready(svc)
    pid = zygote_of(svc)["pid"]
    run_ok(svc, "print(1)")
    assert svc.stop(timeout=30) == 0
    # Reaped, not a zombie: /proc/<pid> goes only then.
    wait_until(lambda: not Path(f"/proc/{pid}").exists(), 10, message="the zygote outlived the service")
