"""Hostile programs against the real service, part 4: the runner protocol and
the service's edges.

The Python runner executes user code in its own process, so user code owns
the runner's control descriptors (fd 3 requests, fd 4 events: 4-byte
big-endian length + JSON, sandbox/runners/PROTOCOL.md) and can forge any event,
close them, stop or signal the runner and the init. None of that may crash the
service, break other executions, or leave anything behind; the forging
execution gets some verdict of its own. Every test here runs on a separate
instance (service_factory), so a crash shows up as one precise failure instead
of taking the session instance down.

Also: request validation of hostile inputs (L#25, L#27), client disconnects
(L#31). References: "L#n" = landscape.md §3 item n.
"""

import json
import threading
import time

import pytest

from helpers import (HealthProbe, MIB, assert_contained, check_execute_response, collect_events, is_output,
                     process_rss_bytes, run, stdout_of, wait_until)

pytestmark = pytest.mark.lifecycle  # select with -k hostile

LIMITS = {"memoryMb": 128, "pids": 32, "outputBytes": 65536, "workspaceMb": 16, "fileSizeMb": 8}

# User-side helpers to write frames to the runner's event descriptor.
FORGE = r'''
import os, json, struct, sys
def frame(obj):
    b = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
    return struct.pack(">I", len(b)) + b
def send(obj):
    sys.stdout.flush(); sys.stderr.flush()
    os.write(4, frame(obj))
'''


def execute(svc, code, language="python", timeout_ms=3000, limits=None, **overrides):
    lim = dict(LIMITS if limits is None else limits)
    lim.update(overrides)
    t0 = time.monotonic()
    resp = svc.http("POST", "/execute", {"code": code, "language": language, "timeout": timeout_ms,
                                         "limits": lim}, timeout=60)
    return resp, time.monotonic() - t0


def result_of(resp) -> dict:
    assert resp.status == 200, f"POST /execute: {resp!r}"
    return resp.body["result"]


def assert_survived(svc, what: str):
    assert svc.running, f"the service died after {what}:\n{svc.log_tail(5)}"
    assert svc.health().get("status") == "ok"


FORGED_FIELDS = [
    pytest.param({"type": 5}, id="type-number"),
    pytest.param({"type": None}, id="type-null"),
    pytest.param({"type": ["stdout"]}, id="type-array"),
    pytest.param({"type": "stdout", "text": 123}, id="stdout-text-number"),
    pytest.param({"type": "stderr", "text": None}, id="stderr-text-null"),
    pytest.param({"type": "stdout"}, id="stdout-no-text"),
    pytest.param({"type": "end", "status": 1}, id="end-status-number"),
    pytest.param({"type": "end", "id": 5, "status": "ok"}, id="end-id-number"),
    pytest.param({"type": "ready", "language": 5}, id="ready-again"),
    pytest.param({"type": "protocol_error", "reason": 5}, id="host-internal-type"),
    pytest.param({"type": "error", "name": 5, "value": [1], "traceback": {}}, id="error-fields-wrong-types"),
    pytest.param({"type": "result", "text": {"a": 1}}, id="result-text-object"),
    pytest.param({"type": "unknown", "x": "y" * 1000}, id="unknown-type"),
]


@pytest.mark.parametrize("event", FORGED_FIELDS)
def test_hostile_forged_event_with_wrong_field_types(service_factory, event):
    """Fd 4 forging: one event whose fields have unexpected JSON types (or that
    only the host should produce). The service must survive with a verdict for
    this execution (any), and the next request must work."""
    svc = service_factory()
    resp, took = execute(svc, FORGE + f"send({json.dumps(event)!r}.encode())\nprint('after')\n")
    assert_survived(svc, f"the forged event {event}")
    r = result_of(resp)
    assert r["status"] in ("ok", "error", "sandbox_error"), r
    assert_contained(svc)


def test_hostile_forged_end_does_not_leak_or_break_others(service_factory):
    """A forged `end` in the middle of a cell (then more output and a spin): the
    execution ends early (its own business), the spinning rest is killed, and a
    normal execution running at the same time on the same instance gets exactly
    its own output."""
    svc = service_factory()
    normal = {}

    def run_normal():
        code = "import time\nfor i in range(5):\n    print(i, flush=True)\n    time.sleep(0.1)\n'done'"
        normal["r"] = svc.execute(code, "python", 10000, limits=LIMITS)["result"]
    t = threading.Thread(target=run_normal)
    t.start()
    forger = FORGE + (
        "print('before', flush=True)\n"
        "send({'type': 'end', 'id': 'cell-1', 'status': 'ok', 'execution_count': 1})\n"
        "send({'type': 'end', 'id': 'cell-2', 'status': 'error', 'execution_count': 2})\n"
        "send({'type': 'stdout', 'text': 'forged after end\\n'})\n"
        "print('after')\nwhile True: pass\n")
    resp, took = execute(svc, forger, timeout_ms=5000)
    t.join(30)
    r = result_of(resp)
    assert stdout_of(r).startswith("before\n"), r
    nr = normal["r"]
    assert nr["status"] == "ok" and stdout_of(nr) == "0\n1\n2\n3\n4\n", f"the concurrent execution was affected: {nr}"
    assert [x.get("text") for x in nr["results"] if x.get("is_main_result")] == ["done"], nr
    assert_survived(svc, "a forged end")
    assert_contained(svc)


def test_hostile_forged_result_and_error_keep_the_api_shape(service_factory):
    """Forged `result` and `error` events must not break the response's shape
    (is_main_result a bool, error.name a non-empty string)."""
    svc = service_factory()
    code = FORGE + ("send({'type': 'result', 'text': 'FAKE', 'is_main_result': 'yes', 'executionId': 'other'})\n"
                    "send({'type': 'error', 'name': '', 'value': 1})\n")
    resp, took = execute(svc, code)
    assert_survived(svc, "forged result/error")
    check_execute_response(resp)


@pytest.mark.parametrize("payload,expect", [
    (b"{not json", "protocol"),
    (b'{"type":"stdout","text":"\xff\xfe"}', "protocol"),
    (b"[1, 2, 3]", "protocol"),
    (b"", "protocol"),
])
def test_hostile_forged_invalid_frames(service_factory, payload, expect):
    """Frames that are not a JSON object (invalid JSON, invalid UTF-8, an array,
    empty): the host stops trusting the runner — sandbox_error naming the protocol
    — and kills the sandbox."""
    svc = service_factory()
    code = FORGE + f"os.write(4, frame({payload!r}))\nprint('after')\nimport time\ntime.sleep(5)\n"
    resp, took = execute(svc, code, timeout_ms=3000)
    assert_survived(svc, f"the frame {payload!r}")
    r = result_of(resp)
    assert r["status"] == "sandbox_error" and expect in r["error"]["value"], r
    assert took < 2.5, f"took {took:.1f}s: a broken protocol should end the run at once"
    assert_contained(svc)


def test_hostile_oversized_frame_header(service_factory):
    """A frame header announcing 4 GiB: refused before any buffering
    (sandbox_error, 'oversized frame'), the service's memory does not move."""
    svc = service_factory()
    base = process_rss_bytes(svc.proc.pid)
    resp, took = execute(svc, FORGE + "os.write(4, b'\\xff\\xff\\xff\\xff' + b'x' * 65536)\nimport time\ntime.sleep(5)")
    assert_survived(svc, "an oversized frame header")
    r = result_of(resp)
    assert r["status"] == "sandbox_error" and "oversized" in r["error"]["value"], r
    assert process_rss_bytes(svc.proc.pid) - base < 32 * MIB
    assert_contained(svc)


def test_hostile_partial_frame_then_silence(service_factory):
    """Half a frame and then nothing (the runner's `end` can never be parsed): the
    wall clock still ends the run."""
    svc = service_factory()
    resp, took = execute(svc, FORGE + "os.write(4, struct.pack('>I', 1000) + b'{')\nimport time\ntime.sleep(60)",
                         timeout_ms=1000)
    r = result_of(resp)
    assert r["status"] == "timeout" and r["error"]["name"] == "TimeoutError", r
    assert took < 2.5
    assert_contained(svc)


def test_hostile_giant_frame_is_capped(service_factory):
    """One 48 MiB stdout frame (under the 64 MiB frame limit): the output cap
    applies to it (output_limit, 64 KiB kept) and the service stays responsive."""
    svc = service_factory()
    code = FORGE + "send({'type': 'stdout', 'text': 'g' * (48 << 20)})\nimport time\ntime.sleep(5)"
    with HealthProbe(svc) as probe:
        resp, took = execute(svc, code, timeout_ms=10000, memoryMb=512)
    assert_survived(svc, "a 48 MiB frame")
    r = result_of(resp)
    assert r["status"] == "output_limit" and r["truncated"]["stdout"], r
    assert len(stdout_of(r)) == LIMITS["outputBytes"], len(stdout_of(r))
    assert probe.max_latency < 1, probe.summary()
    assert_contained(svc)


def test_hostile_result_frame_flood_is_bounded(service_factory):
    """200 000 tiny result frames written as fast as the pipe takes them, then a
    sleep (outputBytes 64 KiB): the results that come back must be bounded (the
    response under 4 MiB), the response must come by the 1.5 s deadline (+ slack)
    and the service's memory stay bounded."""
    svc = service_factory()
    base = process_rss_bytes(svc.proc.pid)
    code = FORGE + ("f = frame({'type': 'result', 'text': '1'}) * 20000\nfor i in range(10): os.write(4, f)\n"
                    "import time\ntime.sleep(60)")
    with HealthProbe(svc, interval=0.05) as probe:
        resp, took = execute(svc, code, timeout_ms=1500)
    assert_survived(svc, "a result frame flood")
    r = result_of(resp)
    growth = probe.max_rss - base
    problems = []
    if len(resp.raw) > 4 * MIB:
        problems.append(f"{len(r['results'])} forged results came back ({len(resp.raw) / MIB:.0f} MiB response)")
    if took > 1.5 + 1.5:
        problems.append(f"answered after {took:.1f}s for a 1.5 s timeout")
    if growth > 256 * MIB:
        problems.append(f"the service's RSS grew by {growth / MIB:.0f} MiB ({len(r['results'])} results)")
    assert not problems, "; ".join(problems)
    assert_contained(svc)


# --------------------------------------------------------------------------
# The runner's descriptors
# --------------------------------------------------------------------------

@pytest.mark.parametrize("code,statuses", [
    ("import os\nos.close(4)\nprint('x')", ("error",)),           # runner cannot report: exits 1
    ("import os\nos.close(3)\nprint('x')", ("ok",)),
    ("import os\nos.close(0); os.close(1); os.close(2)\nprint('x')", ("ok",)),
    ("import os\nos.dup2(os.open('/dev/null', os.O_WRONLY), 4)\nprint('x')", ("timeout",)),
    ("import os\nos.set_blocking(3, False)\nn = 0\ntry:\n    while True: n += os.write(3, b'x' * 65536)\n"
     "except OSError as e:\n    print('fd3 full after', n)", ("ok",)),
    ("import os\nos.set_blocking(4, False)\ntry:\n    print(len(os.read(4, 100)))\nexcept OSError as e:\n"
     "    print(e.errno)", ("ok",)),
])
def test_hostile_runner_descriptors_abused(service_factory, code, statuses):
    """Closing fd 4 (the runner dies: error), fd 3, fds 0-2; pointing fd 4 at
    /dev/null (the `end` never arrives: timeout); filling fd 3 from the inside;
    reading fd 4: each ends with a verdict, the service is unaffected."""
    svc = service_factory()
    resp, took = execute(svc, code, timeout_ms=1500)
    assert_survived(svc, code)
    r = result_of(resp)
    assert r["status"] in statuses, r
    assert took < 3
    assert_contained(svc)


def test_hostile_node_forges_events_and_child_inherits_nothing(service_factory):
    """Node: user code writes a forged `end` to fd 4 and spins (ended early, spin
    killed); a child process does not hold fds 3/4."""
    svc = service_factory()
    code = ("const fs = require('fs');\n"
            "const b = Buffer.from(JSON.stringify({type: 'end', id: 'x', status: 'ok'}));\n"
            "const h = Buffer.alloc(4); h.writeUInt32BE(b.length);\n"
            "fs.writeSync(4, Buffer.concat([h, b]));\nfor (;;) {}")
    resp, took = execute(svc, code, "javascript", timeout_ms=2000)
    assert_survived(svc, "node forging")
    assert result_of(resp)["status"] in ("ok", "timeout")
    code = ("const cp = require('child_process');\n"
            "process.stdout.write(cp.execSync('ls /proc/self/fd', {stdio: ['ignore', 'pipe', 'ignore']}).toString())")
    resp, took = execute(svc, code, "javascript", timeout_ms=5000)
    r = result_of(resp)
    fds = stdout_of(r).split()
    assert r["status"] == "ok" and "4" not in fds, f"a child process holds the event descriptor: {fds}"
    assert_contained(svc)


# --------------------------------------------------------------------------
# Signals to the init and the runner
# --------------------------------------------------------------------------

def test_hostile_signals_to_init(service_factory):
    """From inside, SIGKILL and SIGSTOP to the init (pid 1) do nothing (the kernel
    protects a namespace init); SIGINT is relayed to the runner (the cell gets
    KeyboardInterrupt); SIGTERM/SIGHUP end the sandbox with a `killed` verdict.
    Never a crash or a leak."""
    svc = service_factory()
    r = result_of(execute(svc, "import os, signal, time\nos.kill(1, signal.SIGKILL)\nos.kill(1, signal.SIGSTOP)\n"
                               "time.sleep(0.3)\nprint('alive')")[0])
    assert r["status"] == "ok" and stdout_of(r) == "alive\n", r
    r = result_of(execute(svc, "import os, signal, time\nos.kill(1, signal.SIGINT)\ntime.sleep(2)\nprint('x')")[0])
    assert r["status"] == "error" and r["error"]["name"] == "KeyboardInterrupt", r
    seen = {}
    for sig in ("SIGTERM", "SIGHUP", "SIGUSR1", "SIGQUIT"):
        resp, took = execute(svc, f"import os, signal, time\nos.kill(1, signal.{sig})\ntime.sleep(0.5)\nprint('x')")
        assert_survived(svc, f"{sig} to the init")
        r = result_of(resp)
        seen[sig] = (r["status"], r.get("signal"))
        assert r["status"] in ("killed", "ok", "error"), r
        assert took < 2.5, f"{sig}: took {took:.1f}s"
    print("signals to the init:", seen)
    assert_contained(svc)


def test_hostile_bash_kills_its_own_runner(service_factory):
    """bash: `kill -9 $PPID` (the runner) and `kill -9 -1` (everything but the
    init): verdict `killed` or `error`, and the service is fine."""
    svc = service_factory()
    for code in ("kill -9 $PPID; sleep 1; echo x", "kill -9 -1; sleep 1; echo x"):
        resp, took = execute(svc, code, "bash")
        assert_survived(svc, code)
        r = result_of(resp)
        assert r["status"] in ("killed", "error"), r
    assert_contained(svc)


# --------------------------------------------------------------------------
# Hostile requests (L#25, L#27) and clients (L#31)
# --------------------------------------------------------------------------

def test_hostile_null_bytes_and_bad_names_in_the_request(service):
    """L#27, L#25: NUL in the code, and environment names that are not names
    (empty, with '=', with a NUL) are clean 400s; there is no file-upload route
    to traverse (404). (An env name like '../../x' is not a path: it reaches only
    the sandbox's environment.)"""
    for payload in ({"code": "print(1)\u0000"},
                    {"code": "print(1)", "envVars": {"": "x"}},
                    {"code": "print(1)", "envVars": {"A=B": "x"}},
                    {"code": "print(1)", "envVars": {"A\u0000B": "x"}}):
        resp = service.http("POST", "/execute", payload)
        assert resp.status == 400 and resp.body["error"]["code"] == "invalid_request", (payload, resp)
    for path in ("/files", "/files/../../etc/passwd", "/upload"):
        assert service.http("POST", path, {"path": "../../etc/cron.d/x", "content": "x"}).status in (404, 400)
    assert service.health()["status"] == "ok"


def test_hostile_null_byte_in_env_value_is_a_400(service):
    """L#27: a NUL byte in an envVars value is a clean validation error (400)."""
    resp = service.http("POST", "/execute", {"code": "print(1)", "envVars": {"A": "x\u0000y"}})
    assert resp.status == 400, resp


def test_hostile_http_client_disconnect_mid_execution(service_factory):
    """L#31: the HTTP client of POST /execute gives up after 0.3 s while a fork
    bomb runs with a 2 s timeout: the execution is cleaned up by its deadline at
    the latest (it is not cancelled by the disconnect today — noted in the report),
    and nothing is left."""
    svc = service_factory()
    code = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    with pytest.raises(AssertionError, match="transport error"):
        svc.http("POST", "/execute", {"code": code, "timeout": 2000, "limits": LIMITS}, timeout=0.3)
    wait_until(lambda: svc.health()["executions"]["running"] == 0, 2 + 3,
               message="the abandoned execution was still running 3 s after its deadline")
    assert_contained(svc)


def test_hostile_websocket_disconnect_during_fork_bomb(service_factory, client_id):
    """L#31: the only WebSocket of a clientId drops while its execution runs a
    fork bomb: the execution is cancelled and the whole tree killed promptly."""
    svc = service_factory()
    code = ("import os\nprint('bombing', flush=True)\nwhile True:\n    try:\n        os.fork()\n"
            "    except OSError:\n        pass")

    async def scenario():
        async with svc.ws_connect(client_id) as ws:
            resp = await svc.ahttp("POST", "/execute-stream", {"code": code, "clientId": client_id,
                                                               "timeout": 30000, "limits": LIMITS})
            assert resp.status == 200, resp
            await collect_events(ws, resp.body["executionId"], until=is_output("stdout", "bombing"), timeout=10)
    run(scenario(), timeout=20)
    t0 = time.monotonic()
    wait_until(lambda: svc.health()["executions"]["running"] == 0, 5,
               message="the execution kept running after its only WebSocket closed")
    assert time.monotonic() - t0 < 5
    assert_contained(svc)
