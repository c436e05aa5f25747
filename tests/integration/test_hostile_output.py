"""Hostile programs against the real service, part 2: output.

Floods on every stream and path (event channel, raw fds 1/2, subprocesses, the
WebSocket stream), giant single lines, bytes that are not text, and the host's
own memory while it buffers output. References: "L#n" = landscape.md §3 item
n, "D#n" = sandbox-design.md §6 row n. See test_hostile_resources.py for the
common pattern (verdict, nothing left, next request works).
"""

import json
import time

import pytest

from helpers import (SANITIZED, HealthProbe, MIB, assert_contained, check_stream_sequence, collect_events,
                     process_rss_bytes, run, run_hostile, stderr_of, stdout_of)

pytestmark = pytest.mark.lifecycle  # select with -k hostile

CAP = 65536
LIMITS = {"memoryMb": 128, "pids": 32, "outputBytes": CAP, "workspaceMb": 16, "fileSizeMb": 8}


def hostile(service, code, language="python", timeout_ms=5000, limits=None, **limit_overrides):
    """Runs one hostile program under LIMITS (or `limits`), with overrides."""
    lim = dict(LIMITS if limits is None else limits)
    lim.update(limit_overrides)
    return run_hostile(service, code, language, timeout_ms, lim)


def describe(r) -> str:
    short = {k: r.get(k) for k in ("status", "error", "exitCode", "signal", "truncated", "usage")}
    short["stdout"] = f"{len(stdout_of(r))} chars: {stdout_of(r)[:120]!r}...{stdout_of(r)[-120:]!r}"
    short["stderr"] = f"{len(stderr_of(r))} chars: {stderr_of(r)[:120]!r}...{stderr_of(r)[-120:]!r}"
    short["results"] = len(r.get("results") or [])
    return json.dumps(short)


def assert_output_limit(r, stream, cap=CAP):
    """output_limit verdict on `stream`, the kept text fills the cap but is not over it."""
    other = "stderr" if stream == "stdout" else "stdout"
    assert r["status"] == "output_limit", describe(r)
    assert r["error"]["name"] == "OutputLimitExceeded", describe(r)
    assert r["truncated"][stream] is True and r["truncated"][other] is False, describe(r)
    kept = len("".join(r["logs"][stream]).encode("utf-8"))
    assert cap - 4 <= kept <= cap, f"kept {kept} bytes of {stream} for a cap of {cap}: {describe(r)}"


# --------------------------------------------------------------------------
# Floods (L#3, L#4, L#5; D#9)
# --------------------------------------------------------------------------

FLOODS = {
    "python-print": ("python", "stdout", "while True: print('x' * 100)"),
    "python-stderr": ("python", "stderr", "import sys\nwhile True: sys.stderr.write('y' * 100 + '\\n')"),
    "python-no-newline": ("python", "stdout", "import sys\nwhile True: sys.stdout.write('z')"),
    "python-raw-fd1": ("python", "stdout", "import os\nwhile True: os.write(1, b'r' * 4096)"),
    "python-raw-fd2": ("python", "stderr", "import os\nwhile True: os.write(2, b'e' * 4096)"),
    "python-subprocess-yes": ("python", "stdout", "import subprocess\nsubprocess.run(['yes'])"),
    "node-console-log": ("javascript", "stdout", "for (;;) console.log('x'.repeat(100));"),
    "node-stderr-write": ("javascript", "stderr", "for (;;) process.stderr.write('e'.repeat(100));"),
    "bash-yes": ("bash", "stdout", "yes"),
    "bash-stderr": ("bash", "stderr", "while :; do echo eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee >&2; done"),
    "bash-dd-stdout": ("bash", "stdout", "dd if=/dev/zero bs=1M count=1000"),
}


@pytest.mark.parametrize("name", list(FLOODS))
def test_hostile_output_flood(service, name):
    """L#3, L#5, D#9: an endless flood on stdout or stderr (event channel, raw fd,
    a subprocess, node, bash, binary NULs from dd) is cut at outputBytes (64 KiB):
    verdict output_limit / OutputLimitExceeded, `truncated` set on that stream
    only, the kept output fills the cap exactly, the sandbox is killed."""
    language, stream, code = FLOODS[name]
    r, took = hostile(service, code, language)
    assert_output_limit(r, stream)
    assert took < 4, f"took {took:.1f}s to hit a 64 KiB cap"
    assert_contained(service)


@pytest.mark.parametrize("language,code", [
    ("python", "print('a' * 10**7)"),
    ("javascript", "console.log('a'.repeat(1e7))"),
    ("bash", "head -c 50000000 /dev/zero | tr '\\0' a"),
])
def test_hostile_huge_single_line(service, language, code):
    """L#4: one giant write (10-50 MB, no newline until the end) — the cap is
    enforced while reading, not after: output_limit with exactly the cap kept."""
    with HealthProbe(service) as probe:
        r, took = hostile(service, code, language)
    assert_output_limit(r, "stdout")
    assert set(stdout_of(r)) == {"a"}, describe(r)
    assert probe.max_latency < 1, probe.summary()
    assert_contained(service)


def test_hostile_multibyte_flood_cut_on_a_character_boundary(service):
    """L#3: a flood of 3-byte characters is cut at the cap on a character boundary:
    the kept text is valid (no U+FFFD) and at most the cap in UTF-8 bytes."""
    r, took = hostile(service, "import os\nwhile True: os.write(1, '€'.encode() * 1001)")
    assert_output_limit(r, "stdout")
    assert set(stdout_of(r)) == {"€"}, describe(r)
    assert_contained(service)


def test_hostile_stdout_and_stderr_flood_together(service):
    """L#3 + L#5: both streams flooded at once: the first to reach its cap stops the
    run; neither stream keeps more than the cap."""
    code = ("import os, sys\nwhile True:\n    os.write(1, b'o' * 1000)\n    os.write(2, b'e' * 1000)")
    r, took = hostile(service, code)
    assert r["status"] == "output_limit", describe(r)
    assert r["truncated"]["stdout"] or r["truncated"]["stderr"], describe(r)
    for s in ("stdout", "stderr"):
        assert len("".join(r["logs"][s]).encode()) <= CAP, describe(r)
    assert_contained(service)


def test_hostile_output_larger_than_pipe_buffer_then_exit(service):
    """L#6: a well-behaved program writing 1 MiB+ (far more than a 64 KiB pipe
    buffer) through the event channel and through a subprocess's raw pipe, then
    exiting, finishes normally with all of it (default 16 MiB cap)."""
    code = ("import subprocess\nfor i in range(10000):\n    print(f'{i:0100d}')\n"
            "subprocess.run(['seq', '1', '200000'])")
    r, took = hostile(service, code, limits={"memoryMb": 256})
    assert r["status"] == "ok", describe(r)
    expected = "".join(f"{i:0100d}\n" for i in range(10000)) + "".join(f"{i}\n" for i in range(1, 200001))
    assert stdout_of(r) == expected, describe(r)
    assert r["truncated"] == {"stdout": False, "stderr": False}
    assert_contained(service)


def test_hostile_output_flood_through_websocket_stream(service, client_id):
    """L#7: the same flood through POST /execute-stream + WebSocket gets the same
    cap and verdict as the one-shot path: the streamed stdout events total at most
    the cap, the final result says output_limit."""
    async def scenario():
        async with service.ws_connect(client_id) as ws:
            resp = await service.ahttp("POST", "/execute-stream", {
                "code": "while True: print('x' * 100)", "clientId": client_id, "timeout": 5000,
                "limits": LIMITS})
            assert resp.status == 200, resp
            eid = resp.body["executionId"]
            return await collect_events(ws, eid, timeout=20), eid
    events, eid = run(scenario(), timeout=30)
    seq = check_stream_sequence(events, eid)
    assert seq["result"]["status"] == "output_limit", describe(seq["result"])
    assert seq["error"]["name"] == "OutputLimitExceeded"
    assert CAP - 4 <= len(seq["stdout"].encode()) <= CAP, f"streamed {len(seq['stdout'])} chars"
    assert seq["final"] == "failed"
    assert_contained(service)


# --------------------------------------------------------------------------
# Bytes that are not text
# --------------------------------------------------------------------------

def test_hostile_nul_bytes_in_output(service):
    """NUL bytes written through print and through the raw fd are kept (as \\u0000
    in JSON); the response stays valid JSON."""
    code = "import os, sys\nsys.stdout.write('a\\x00b\\n')\nsys.stdout.flush()\nos.write(1, b'c\\x00d\\n')\nNone"
    r, took = hostile(service, code)
    assert r["status"] == "ok", describe(r)
    out = stdout_of(r)
    assert "a\x00b\n" in out and "c\x00d\n" in out and len(out) == 8, describe(r)
    assert_contained(service)


def test_hostile_invalid_utf8_in_output(service):
    """Invalid UTF-8 on the raw fds (lone continuation bytes, a truncated sequence,
    an encoded surrogate) becomes U+FFFD; the response is valid JSON; the valid
    text around it is intact."""
    code = ("import os\nos.write(1, b'A\\xff\\xfeB\\xc3\\n')\nos.write(1, b'\\xed\\xa0\\x80C\\n')\n"
            "os.write(2, b'\\x80err\\n')\nos.write(1, b'end\\n')\nNone")
    r, took = hostile(service, code)
    assert r["status"] == "ok", describe(r)
    out, err = stdout_of(r), stderr_of(r)
    for s in ("A", "B", "C\n", "end\n"):
        assert s in out, describe(r)
    assert "\ufffd" in out and err.endswith("err\n") and "\ufffd" in err, describe(r)
    assert "\xff" not in out
    assert_contained(service)


def test_hostile_write_to_dev_stdout_and_stderr(service):
    """The common idioms `> /dev/stdout` and `> /dev/stderr` work in the sandbox."""
    r, took = hostile(service, "echo out > /dev/stdout\necho err > /dev/stderr", "bash")
    assert r["status"] == "ok", describe(r)
    assert stdout_of(r) == "out\n" and stderr_of(r) == "err\n", describe(r)


def test_hostile_binary_output_through_sys_stdout_buffer(service):
    """Binary output written with sys.stdout.buffer.write (invalid UTF-8 included)
    reaches stdout, invalid bytes as U+FFFD."""
    r, took = hostile(service, "import sys\nsys.stdout.buffer.write(b'bin\\xff\\n')\nsys.stdout.flush()")
    assert r["status"] == "ok", describe(r)
    assert stdout_of(r) == "bin\ufffd\n", describe(r)


# --------------------------------------------------------------------------
# What output costs the host
# --------------------------------------------------------------------------

@pytest.mark.skipif(SANITIZED, reason="measures the service's time and RSS: under ASan its "
                    "quarantine keeps freed memory and the instrumentation is several times slower")
def test_hostile_tiny_line_flood_is_cheap_for_the_host(service_factory):
    """L#3, L#29: `while True: print('x')` against a 1 MiB cap must end with
    output_limit well within its 3 s timeout, and the service's memory must not grow by more than
    32x the cap while it buffers the output (separate instance to measure RSS)."""
    svc = service_factory()
    base = process_rss_bytes(svc.proc.pid)
    with HealthProbe(svc, interval=0.02) as probe:
        t0 = time.monotonic()
        r = svc.execute("while True: print('x')", "python", 3000, limits=dict(LIMITS, outputBytes=MIB))["result"]
        took = time.monotonic() - t0
    growth = probe.max_rss - base
    problems = []
    if r["status"] != "output_limit":
        problems.append(f"verdict {r['status']} instead of output_limit within the 3 s timeout")
    if took >= 3:
        problems.append(f"a 1 MiB cap of 2-byte lines took {took:.1f}s to reach "
                        f"({len(r['logs']['stdout'])} chunks)")
    if growth >= 32 * MIB:
        problems.append(f"the service's RSS grew by {growth / MIB:.0f} MiB for 1 MiB of output")
    assert not problems, "; ".join(problems)
    assert_contained(svc)


def test_hostile_rich_results_are_bounded(service):
    """16 MiB of display() output with outputBytes 64 KiB must not come back whole:
    the results must be capped (and the verdict say so) like stdout is."""
    r, took = hostile(service, "for i in range(16): display('x' * (1 << 20))", timeout_ms=20000)
    total = sum(len(x.get("text") or "") for x in r["results"])
    assert total <= 4 * MIB, f"{total} bytes of results came back with outputBytes={CAP}: {describe(r)}"
    assert_contained(service)
