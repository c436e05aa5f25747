"""Stateful sandboxes (POST /sandboxes and everything under /sandboxes/{id}),
end to end against the real binary: lifecycle, state across executions,
timeouts and interrupts, contexts, streaming, rich results, idle timeout and
lifetime, per-key and server-wide limits, the warm pool, languages, SIGTERM
and leaks.

Most tests use one dedicated instance for this module (`sbx`, see
sandbox_helpers.SBX_ENV: no warm pool, INTERRUPT_GRACE_MS=500); tests that
need other settings start their own with service_factory.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid

import pytest

from helpers import (BASE_ENV, MIB, _cgroup_paths, assert_nothing_left, binary_path, check_stream_sequence, collect_events,
                     is_output, run, sandbox_processes, stdout_of, summarize, wait_until)
from sandbox_helpers import (SBX_ENV, SBX_MAX_CONTEXTS, UID_MAP_CODE, alive, assert_api_error, auth,
                             cgroup_dirs_exist, cgroups_of, check_sandbox_obj, create_context,
                             create_sandbox, create_sandbox_raw, delete_sandbox, error_code,
                             get_sandbox, host_uid_inside, instance_cgroups, instance_processes,
                             languages_of, list_contexts, module_instance, ok_text, parse_time,
                             pids_of_uid, png_size, require_language, sandbox_counts, sexec,
                             sexec_raw, start_sandbox_stream, text_of, wait_gone)

pytestmark = pytest.mark.lifecycle

DEFAULT_LIMITS = {"memoryMb": 512, "pids": 128, "workspaceMb": 64, "fileSizeMb": 64,
                  "openFiles": 256, "outputBytes": 16 * MIB}


@pytest.fixture(scope="module")
def sbx(request, tmp_path_factory):
    yield from module_instance(request, tmp_path_factory, SBX_ENV, "codeexec-sandboxes")


@pytest.fixture
def sandbox(sbx):
    """A fresh python sandbox on the module instance; deleted at teardown."""
    sb = create_sandbox(sbx, {"timeout": 300})
    yield sb["sandboxId"]
    assert delete_sandbox(sbx, sb["sandboxId"]) in (204, 404)


def expect_ok(svc, sid, code, **fields) -> dict:
    r = sexec(svc, sid, code, **fields)
    assert r["status"] == "ok" and r["error"] is None, f"{code!r}: {r!r}"
    return r


# =========================================================================
# Create / get / list / delete / timeout
# =========================================================================

def test_create_default_sandbox_shape_and_first_execution(sbx):
    t0 = time.time()
    resp = create_sandbox_raw(sbx, b"")  # an empty body asks for every default
    assert resp.status == 201, resp
    assert "application/json" in resp.headers.get("content-type", ""), resp.headers
    sb = resp.body
    try:
        check_sandbox_obj(sb)
        assert sb["language"] == "python", sb
        assert sb["metadata"] == {}, sb
        assert sb["limits"] == DEFAULT_LIMITS, f"default limits differ from the documented ones: {sb}"
        created, expires = parse_time(sb["createdAt"]), parse_time(sb["expiresAt"])
        assert abs(created - t0) < 30, f"createdAt {sb['createdAt']} is not now"
        # SANDBOX_IDLE_TIMEOUT_MS default: 300000
        assert abs((expires - created) - 300) < 3, f"default idle timeout is not 300 s: {sb}"
        # "201 once the first kernel is ready": the first execution just runs.
        r = expect_ok(sbx, sb["sandboxId"], "import sys\nprint(sys.version_info[0])\n6*7")
        assert stdout_of(r) == "3\n" and text_of(r) == "42", r
    finally:
        delete_sandbox(sbx, sb["sandboxId"])


def test_create_with_options_echoes_and_applies_them(sbx):
    limits = {"memoryMb": 256, "pids": 64, "workspaceMb": 16, "fileSizeMb": 8,
              "openFiles": 128, "outputBytes": 100000}
    body = {"language": "bash", "timeout": 30, "metadata": {"owner": "it", "purpose": "options"},
            "envVars": {"GREETING": "hola mundo"}, "limits": limits}
    sb = create_sandbox(sbx, body)
    sid = sb["sandboxId"]
    try:
        assert sb["language"] == "bash", sb
        assert sb["metadata"] == {"owner": "it", "purpose": "options"}, sb
        assert sb["limits"] == limits, sb
        span = parse_time(sb["expiresAt"]) - parse_time(sb["createdAt"])
        assert abs(span - 30) < 2, f"timeout 30 s not reflected in expiresAt: {sb}"
        got = get_sandbox(sbx, sid)
        assert got.status == 200 and got.body["metadata"] == body["metadata"] \
            and got.body["limits"] == limits and got.body["language"] == "bash", got
        r = expect_ok(sbx, sid, 'echo "$GREETING"; ulimit -n; ulimit -f; '
                                "df -k /home/user | awk 'NR==2 {print $2}'")
        out = stdout_of(r).split("\n")
        assert out[0] == "hola mundo", f"sandbox envVars not applied: {r!r}"
        assert out[1] == "128", f"openFiles limit not applied: {r!r}"
        assert out[2] == str(8 * 1024), f"fileSizeMb limit not applied (ulimit -f in KiB): {r!r}"
        assert 15 * 1024 <= int(out[3]) <= 17 * 1024, f"workspaceMb 16 not applied: {r!r}"
    finally:
        delete_sandbox(sbx, sid)


def test_get_list_delete(sbx):
    before = sandbox_counts(sbx)["stateful"]
    a = create_sandbox(sbx, {"metadata": {"n": "a"}})["sandboxId"]
    b = create_sandbox(sbx, {"metadata": {"n": "b"}})["sandboxId"]
    try:
        assert a != b
        assert sandbox_counts(sbx)["stateful"] == before + 2
        listed = sbx.http("GET", "/sandboxes")
        assert listed.status == 200, listed
        ids = {s["sandboxId"]: s for s in listed.body["sandboxes"]}
        assert a in ids and b in ids, listed
        assert ids[a]["metadata"] == {"n": "a"} and ids[b]["metadata"] == {"n": "b"}, listed
        got = get_sandbox(sbx, a)
        assert got.status == 200 and got.body["sandboxId"] == a, got

        resp = sbx.http("DELETE", f"/sandboxes/{a}")
        assert resp.status == 204 and resp.raw == b"", resp
        assert_api_error(get_sandbox(sbx, a), 404, "sandbox_not_found", "GET after DELETE")
        assert_api_error(sbx.http("DELETE", f"/sandboxes/{a}"), 404, "sandbox_not_found", "DELETE twice")
        assert_api_error(sexec_raw(sbx, a, "1"), 404, "sandbox_not_found", "execute after DELETE")
        ids = {s["sandboxId"] for s in sbx.http("GET", "/sandboxes").body["sandboxes"]}
        assert a not in ids and b in ids, ids
        assert sandbox_counts(sbx)["stateful"] == before + 1
        # The other one is untouched.
        assert ok_text(sbx, b, "1+2") == "3"
    finally:
        delete_sandbox(sbx, a)
        delete_sandbox(sbx, b)
    assert sandbox_counts(sbx)["stateful"] == before


def test_delete_answers_running_cells_killed(sbx):
    sid = create_sandbox(sbx)["sandboxId"]
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        fut = pool.submit(sexec, sbx, sid, "import time\nprint('in', flush=True)\ntime.sleep(60)",
                          timeout=60000, http_timeout=30)
        wait_until(lambda: any(c["running"] for c in list_contexts(sbx, sid)), 10,
                   message="the cell never ran")
        t0 = time.monotonic()
        assert delete_sandbox(sbx, sid) == 204
        r = fut.result(20)
    assert time.monotonic() - t0 < 5, "the running cell was not answered promptly"
    assert r["status"] == "killed", f"a cell running at DELETE is answered killed: {r!r}"
    assert stdout_of(r) == "in\n", "its output so far is kept"


def test_unknown_sandbox_routes_404(sbx):
    sid = "no-such-sandbox-" + uuid.uuid4().hex[:8]
    for method, path, body in [
        ("GET", f"/sandboxes/{sid}", None),
        ("DELETE", f"/sandboxes/{sid}", None),
        ("POST", f"/sandboxes/{sid}/timeout", {"timeout": 10}),
        ("POST", f"/sandboxes/{sid}/execute", {"code": "1"}),
        ("POST", f"/sandboxes/{sid}/execute-stream", {"code": "1", "clientId": "x"}),
        ("POST", f"/sandboxes/{sid}/interrupt", {}),
        ("POST", f"/sandboxes/{sid}/contexts", {}),
        ("GET", f"/sandboxes/{sid}/contexts", None),
        ("DELETE", f"/sandboxes/{sid}/contexts/abc", None),
        ("POST", f"/sandboxes/{sid}/contexts/abc/restart", None),
        ("GET", f"/sandboxes/{sid}/files?path=a.txt", None),
        ("PUT", f"/sandboxes/{sid}/files?path=a.txt", b"x"),
        ("GET", f"/sandboxes/{sid}/files/list?path=/home/user", None),
    ]:
        assert_api_error(sbx.http(method, path, body), 404, "sandbox_not_found", f"{method} {path}")


@pytest.mark.parametrize("body,status,code", [
    (b"{not json", 400, "invalid_json"),
    ([1, 2], 400, "invalid_request"),
    ({"language": "cobol"}, 400, "unsupported_language"),
    ({"language": 7}, 400, "invalid_request"),
    ({"timeout": 0}, 400, "invalid_request"),
    ({"timeout": -5}, 400, "invalid_request"),
    ({"timeout": "60"}, 400, "invalid_request"),
    ({"timeout": 10 ** 9}, 400, "invalid_request"),
    ({"envVars": {"A": 1}}, 400, "invalid_request"),
    ({"envVars": ["A=1"]}, 400, "invalid_request"),
    ({"limits": {"memoryMb": 10 ** 6}}, 400, "invalid_request"),
    ({"limits": {"bogus": 1}}, 400, "invalid_request"),
    ({"limits": {"pids": -1}}, 400, "invalid_request"),
    ({"metadata": "x"}, 400, "invalid_request"),
])
def test_create_validation(sbx, body, status, code):
    before = sandbox_counts(sbx)["stateful"]
    resp = create_sandbox_raw(sbx, body)
    assert_api_error(resp, status, code, f"POST /sandboxes {body!r}")
    assert sandbox_counts(sbx)["stateful"] == before


def test_set_timeout(sbx, sandbox):
    t0 = time.time()
    resp = sbx.http("POST", f"/sandboxes/{sandbox}/timeout", {"timeout": 1000})
    assert resp.status == 200, resp
    expires = parse_time(resp.body["expiresAt"])
    assert abs(expires - (t0 + 1000)) < 5, f"expiresAt not now+1000s: {resp!r}"
    got = get_sandbox(sbx, sandbox)
    assert abs(parse_time(got.body["expiresAt"]) - expires) < 2, got
    for bad in ({}, {"timeout": 0}, {"timeout": "5"}, {"timeout": 10 ** 9}):
        assert_api_error(sbx.http("POST", f"/sandboxes/{sandbox}/timeout", bad), 400, None,
                         f"timeout {bad!r}")


def test_health_counts_stateful_sandboxes(sbx):
    c0 = sandbox_counts(sbx)
    sid = create_sandbox(sbx)["sandboxId"]
    try:
        c1 = sandbox_counts(sbx)
        assert c1["stateful"] == c0["stateful"] + 1, (c0, c1)
        assert c1["live"] >= c1["stateful"], f"a stateful sandbox is a live one: {c1}"
        assert c1["pooled"] == 0, f"WARM_POOL_SIZE=0 but pooled={c1}"
    finally:
        delete_sandbox(sbx, sid)
    wait_until(lambda: sandbox_counts(sbx)["live"] == c0["live"], 10,
               message="sandboxes.live did not go back down after DELETE")
    assert sandbox_counts(sbx)["stateful"] == c0["stateful"]


# =========================================================================
# State across executions
# =========================================================================

def test_python_state_persists(sbx, sandbox):
    expect_ok(sbx, sandbox, "import json as j\nx = 40\n"
                            "def inc(v):\n    return v + 1\n"
                            "class Box:\n    items = []\n"
                            "import os\nos.chdir('/tmp')\n"
                            "open('/home/user/kept.txt', 'w').write('kept')")
    assert ok_text(sbx, sandbox, "inc(x) + 1") == "42"
    assert ok_text(sbx, sandbox, "j.dumps({'a': 1})") == "{\"a\": 1}"
    expect_ok(sbx, sandbox, "Box.items.append(3)")
    assert ok_text(sbx, sandbox, "Box.items") == "[3]"
    assert ok_text(sbx, sandbox, "os.getcwd()") == "/tmp"
    assert ok_text(sbx, sandbox, "open('/home/user/kept.txt').read()") == "kept"


def test_code_error_keeps_state(sbx, sandbox):
    expect_ok(sbx, sandbox, "x = 1")
    r = sexec(sbx, sandbox, "x = 2\nprint('before')\n1/0\nx = 3")
    assert r["status"] == "error" and r["error"]["name"] == "ZeroDivisionError", r
    assert stdout_of(r) == "before\n", r
    assert ok_text(sbx, sandbox, "x") == "2", "the statements before the error must have run"
    r = sexec(sbx, sandbox, "undefined_name_xyz")
    assert r["status"] == "error" and r["error"]["name"] == "NameError", r
    assert ok_text(sbx, sandbox, "x") == "2"


@pytest.mark.parametrize("language,cells,expected", [
    ("bash", ["X=5\ngreet() { echo \"hi $1\"; }\ncd /tmp\nexport EXPORTED=yes",
              "greet world; echo \"$X $PWD $EXPORTED\"; pwd"],
     "hi world\n5 /tmp yes\n/tmp\n"),
    ("javascript", ["var counter = 40; function bump(n) { return n + 1; }\n"
                    "const fs = require('fs'); process.chdir('/tmp');\nconst again = 1;\nclass K {}",
                    "const again = 2; class K { v() { return again; } }",  # redeclared, as in Node's REPL
                    "console.log(bump(counter) + new K().v() - 1, process.cwd(), typeof fs.readFileSync)"],
     "42 /tmp function\n"),
    ("python", ["import asyncio\nasync def twice(v):\n    await asyncio.sleep(0)\n    return v * 2",
                "x = await twice(20)", "print(x + 2)"],
     "42\n"),
    ("typescript", ["let n: number = 20;\nfunction twice(v: number): number { return v * 2; }",
                    "console.log(twice(n) + 2)"],
     "42\n"),
    ("r", ["x <- 20\nf <- function(v) v * 2\nsetwd('/tmp')", "cat(f(x) + 2, getwd(), '\\n')"],
     "42 /tmp \n"),
    ("java", ["int x = 20;\nint twice(int v) { return v * 2; }",
              "System.out.println(twice(x) + 2);"],
     "42\n"),
])
def test_state_persists_per_language(sbx, language, cells, expected):
    require_language(sbx, language)
    sb = create_sandbox(sbx, {"language": language, "timeout": 120})
    try:
        assert sb["language"] == language
        for cell in cells[:-1]:
            expect_ok(sbx, sb["sandboxId"], cell, timeout=60000)
        r = expect_ok(sbx, sb["sandboxId"], cells[-1], timeout=60000)
        assert stdout_of(r) == expected, f"{language}: {r!r}"
    finally:
        delete_sandbox(sbx, sb["sandboxId"])


def test_javascript_last_expression_and_error_in_sandbox(sbx):
    sb = create_sandbox(sbx, {"language": "javascript"})
    sid = sb["sandboxId"]
    try:
        expect_ok(sbx, sid, "let total = 0; for (let i = 0; i < 4; i++) total += i;")
        assert ok_text(sbx, sid, "total * 7") == "42"
        r = sexec(sbx, sid, "notDefinedAnywhere()")
        assert r["status"] == "error" and r["error"]["name"] == "ReferenceError", r
        assert ok_text(sbx, sid, "total") == "6", "state lost after an error"
    finally:
        delete_sandbox(sbx, sid)


def test_other_language_runs_in_its_default_context(sbx, sandbox):
    """A python sandbox: `language: javascript` runs in a JS default context that
    is created on first use and keeps its state; python's is untouched."""
    expect_ok(sbx, sandbox, "shared_name = 'py'")
    expect_ok(sbx, sandbox, "var shared_name = 'js'; var jsOnly = 41;", language="javascript")
    assert ok_text(sbx, sandbox, "jsOnly + 1", language="javascript") == "42"
    assert ok_text(sbx, sandbox, "shared_name", language="js") == "js"
    assert ok_text(sbx, sandbox, "shared_name") == "py"
    assert ok_text(sbx, sandbox, "shared_name", language="python") == "py"
    ctxs = list_contexts(sbx, sandbox)
    langs = sorted(c["language"] for c in ctxs)
    assert langs == ["javascript", "python"], ctxs
    assert all(c["default"] is True for c in ctxs), \
        f"the per-language contexts made on first use are default contexts: {ctxs}"
    # Files are shared between the two.
    expect_ok(sbx, sandbox, "require('fs').writeFileSync('/home/user/from_js.txt', 'js wrote')",
              language="javascript")
    assert ok_text(sbx, sandbox, "open('from_js.txt').read()") == "js wrote"


def test_env_vars_sandbox_and_execution(sbx):
    sb = create_sandbox(sbx, {"envVars": {"SB_VAR": "from-sandbox", "BOTH": "sandbox"}})
    sid = sb["sandboxId"]
    try:
        r = expect_ok(sbx, sid, "import os\nprint(os.environ.get('SB_VAR'), os.environ.get('BOTH'), "
                                "os.environ.get('EX_VAR'))",
                      envVars={"EX_VAR": "from-exec", "BOTH": "exec"})
        assert stdout_of(r) == "from-sandbox exec from-exec\n", \
            f"execution envVars must add to / override the sandbox's: {r!r}"
        r = expect_ok(sbx, sid, "import os\nprint(os.environ.get('SB_VAR'), os.environ.get('BOTH'), "
                                "os.environ.get('EX_VAR'))")
        assert stdout_of(r) == "from-sandbox sandbox None\n", \
            f"an execution's envVars must not outlive it: {r!r}"
        r = expect_ok(sbx, sid, 'echo "$SB_VAR"', language="bash")
        assert stdout_of(r) == "from-sandbox\n", r
    finally:
        delete_sandbox(sbx, sid)


def test_execute_validation(sbx, sandbox):
    for body, code in [
        ({"code": "1", "limits": {"memoryMb": 128}}, "invalid_request"),
        ({"code": "1", "limits": {"pids": 10}}, "invalid_request"),
        ({"code": "1", "limits": {"workspaceMb": 10}}, "invalid_request"),
        ({"code": "1", "limits": {"openFiles": 64}}, "invalid_request"),
        ({"code": "1", "limits": {"fileSizeMb": 1}}, "invalid_request"),
        ({"code": ""}, "invalid_request"),
        ({"code": "1", "language": "cobol"}, "unsupported_language"),
        ({"code": "1", "contextId": 5}, "invalid_request"),
        ({"code": "1", "interactive": "yes"}, "invalid_request"),
        ({"code": "1", "stdin": 3}, "invalid_request"),
        ({"code": "1", "timeout": 0}, "invalid_request"),
    ]:
        assert_api_error(sbx.http("POST", f"/sandboxes/{sandbox}/execute", body), 400, code, repr(body))
    assert_api_error(sbx.http("POST", f"/sandboxes/{sandbox}/execute", b"nope"), 400, "invalid_json")


def test_unknown_context_is_404(sbx, sandbox):
    resp = sexec_raw(sbx, sandbox, "1", contextId="no-such-context")
    assert_api_error(resp, 404, "context_not_found", "execute with an unknown contextId")
    resp = sbx.http("POST", f"/sandboxes/{sandbox}/contexts/no-such-context/restart")
    assert_api_error(resp, 404, "context_not_found", "restart unknown context")
    resp = sbx.http("DELETE", f"/sandboxes/{sandbox}/contexts/no-such-context")
    assert_api_error(resp, 404, "context_not_found", "delete unknown context")


def test_execution_output_limit_in_sandbox(sbx, sandbox):
    """README (Timeouts keep state): outputBytes, like timeout and cpuMs, interrupts
    the cell, and the error says the state is kept."""
    expect_ok(sbx, sandbox, "kept = 'yes'")
    r = sexec(sbx, sandbox, "print('a' * 5000, flush=True)\nprint('b' * 5000)", limits={"outputBytes": 1000})
    assert r["status"] == "output_limit", f"outputBytes 1000 not enforced: status {r['status']}, " \
                                          f"{len(stdout_of(r))} bytes of stdout"
    assert r["truncated"]["stdout"] is True and len(stdout_of(r)) <= 1000, r
    assert ok_text(sbx, sandbox, "kept") == "yes", "the state must survive an output_limit"
    assert "state is kept" in r["error"]["value"], f"the error must say the state is kept: {r['error']!r}"
    # The limit was this execution's only.
    r = expect_ok(sbx, sandbox, "print('x' * 3000)")
    assert len(stdout_of(r)) == 3001, r


def test_execution_cpu_limit_in_sandbox(sbx, sandbox):
    """cpuMs stops a spinning cell like a timeout does: interrupted, verdict
    timeout/TimeoutError saying the state is kept, and it is."""
    expect_ok(sbx, sandbox, "kept = 'yes'")
    t0 = time.monotonic()
    r = sexec(sbx, sandbox, "spins = 0\nwhile True:\n    spins += 1", limits={"cpuMs": 300}, timeout=20000)
    assert time.monotonic() - t0 < 8, "cpuMs 300 did not stop the cell early"
    assert r["status"] == "timeout" and r["error"]["name"] == "TimeoutError", r
    assert "state is kept" in r["error"]["value"], r["error"]
    assert ok_text(sbx, sandbox, "kept") == "yes"
    assert int(ok_text(sbx, sandbox, "spins")) > 0, "the interrupted cell's own variables are kept too"
    r = expect_ok(sbx, sandbox, "print('x' * 3000)")
    assert len(stdout_of(r)) == 3001, r


def test_sandbox_workspace_limit_inside(sbx):
    sb = create_sandbox(sbx, {"limits": {"workspaceMb": 2}})
    try:
        r = sexec(sbx, sb["sandboxId"],
                  "try:\n    open('/home/user/big', 'wb').write(b'x' * (4 << 20))\n"
                  "except OSError as e:\n    print('errno', e.errno)")
        assert r["status"] == "ok" and stdout_of(r) == "errno 28\n", f"expected ENOSPC: {r!r}"
    finally:
        delete_sandbox(sbx, sb["sandboxId"])


def test_memory_limit_of_sandbox(sbx):
    """The sandbox's memoryMb gives the documented verdict (README, Limits:
    `memory_limit`, `MemoryError`)."""
    sb = create_sandbox(sbx, {"limits": {"memoryMb": 128}})
    sid = sb["sandboxId"]
    try:
        r = sexec(sbx, sid, "x = bytearray(1 << 30)", timeout=30000)
        assert r["status"] == "memory_limit" and r["error"]["name"] == "MemoryError", r
        # The sandbox survives (possibly with a restarted kernel) and runs the next cell.
        r = expect_ok(sbx, sid, "print('alive')")
        assert stdout_of(r) == "alive\n"
    finally:
        delete_sandbox(sbx, sid)


# =========================================================================
# Timeouts and interrupts
# =========================================================================

def test_timeout_interrupts_cell_and_keeps_state(sbx, sandbox):
    expect_ok(sbx, sandbox, "x = 41\nimport time")
    t0 = time.monotonic()
    r = sexec(sbx, sandbox, "x += 1\nprint('started', flush=True)\nwhile True:\n    time.sleep(0.02)",
              timeout=700)
    took = time.monotonic() - t0
    assert r["status"] == "timeout", r
    assert r["error"]["name"] == "TimeoutError", r
    assert "state is kept" in r["error"]["value"], f"TimeoutError must say the state is kept: {r['error']!r}"
    assert stdout_of(r) == "started\n", "output before the timeout is kept"
    assert took < 6, f"timeout 700 ms took {took:.1f}s"
    assert ok_text(sbx, sandbox, "x") == "42", "variables must survive an interrupted cell"
    assert ok_text(sbx, sandbox, "time.sleep(0); 'ok'") == "ok", "imports must survive"


@pytest.mark.parametrize("cpu_ms", [60000, None], ids=["cpu-unlimited", "cpu-default"])
def test_timeout_of_cell_ignoring_sigint_restarts_kernel(sbx, sandbox, cpu_ms):
    """cpu-unlimited: only the wall-clock timeout and the SIGINT escalation act.
    cpu-default: cpuMs defaults to the timeout, so the CPU limit races the
    escalation; either way the error says the kernel was restarted."""
    expect_ok(sbx, sandbox, "before = 1")
    t0 = time.monotonic()
    r = sexec(sbx, sandbox,
              "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nafter = 2\n"
              "print('spinning', flush=True)\nwhile True:\n    pass", timeout=500,
              limits={"cpuMs": cpu_ms} if cpu_ms else None)
    took = time.monotonic() - t0
    assert r["status"] == "timeout" and r["error"]["name"] == "TimeoutError", r
    assert "kernel was restarted" in r["error"]["value"], \
        f"TimeoutError must say the kernel was restarted: {r['error']!r}"
    assert stdout_of(r) == "spinning\n", r
    # timeout 0.5 s + INTERRUPT_GRACE_MS 0.5 s + a kernel restart
    assert took < 8, f"escalation took {took:.1f}s (INTERRUPT_GRACE_MS=500)"
    for name in ("before", "after"):
        r2 = sexec(sbx, sandbox, name)
        assert r2["status"] == "error" and r2["error"]["name"] == "NameError", \
            f"state must be lost after a restart ({name}): {r2!r}"
    assert ok_text(sbx, sandbox, "1+1") == "2"


def test_interrupt_endpoint_keeps_state(sbx, sandbox, client_id):
    expect_ok(sbx, sandbox, "counter = 0")
    code = ("import time\nprint('ready', flush=True)\n"
            "while True:\n    counter += 1\n    time.sleep(0.01)")

    async def scenario():
        async with sbx.ws_connect(client_id) as ws:
            eid = await start_sandbox_stream(sbx, sandbox, client_id, code, timeout=30000)
            await collect_events(ws, eid, until=is_output("stdout", "ready"), timeout=20)
            t0 = time.monotonic()
            resp = await sbx.ahttp("POST", f"/sandboxes/{sandbox}/interrupt", {})
            events = await collect_events(ws, eid, timeout=10)
            return eid, resp, events, time.monotonic() - t0
    eid, resp, events, took = run(scenario())
    assert resp.status == 200 and resp.body == {"interrupted": 1}, resp
    res = [e for e in events if e["type"] == "result"]
    assert res, summarize(events)
    result = res[0]["result"]
    assert result["status"] == "error" and result["error"]["name"] == "KeyboardInterrupt", result
    assert events[-1]["status"] == "failed", summarize(events)
    assert took < 3, f"the interrupt took {took:.1f}s"
    n = int(ok_text(sbx, sandbox, "counter"))
    assert n > 0, "the counter must have kept its value"
    # Nothing to interrupt now.
    resp = sbx.http("POST", f"/sandboxes/{sandbox}/interrupt")
    assert resp.status == 200 and resp.body == {"interrupted": 0}, resp


def test_interrupt_only_the_named_context(sbx, sandbox, client_id):
    ctx = create_context(sbx, sandbox)["id"]
    wait_code = ("import os, time\nprint('ready', flush=True)\n"
                 "while not os.path.exists('/tmp/stop-{tag}'):\n    time.sleep(0.02)\n"
                 "print('finished')")

    async def scenario():
        async with sbx.ws_connect(client_id) as ws:
            e_ctx = await start_sandbox_stream(sbx, sandbox, client_id, wait_code.format(tag="ctx"),
                                               contextId=ctx, timeout=30000)
            e_def = await start_sandbox_stream(sbx, sandbox, client_id, wait_code.format(tag="def"),
                                               timeout=30000)
            await collect_events(ws, e_ctx, until=is_output("stdout", "ready"), timeout=20)
            await collect_events(ws, e_def, until=is_output("stdout", "ready"), timeout=20)
            resp = await sbx.ahttp("POST", f"/sandboxes/{sandbox}/interrupt", {"contextId": ctx})
            ev_ctx = await collect_events(ws, e_ctx, timeout=10)
            # The default context's cell still runs: let it finish on its own.
            put = await sbx.ahttp("PUT", f"/sandboxes/{sandbox}/files?path=/tmp/stop-def", b"")
            ev_def = await collect_events(ws, e_def, timeout=10)
            return resp, put, ev_ctx, ev_def
    resp, put, ev_ctx, ev_def = run(scenario())
    assert resp.status == 200 and resp.body == {"interrupted": 1}, resp
    assert put.status == 200, put
    r_ctx = [e for e in ev_ctx if e["type"] == "result"][0]["result"]
    assert r_ctx["status"] == "error" and r_ctx["error"]["name"] == "KeyboardInterrupt", r_ctx
    r_def = [e for e in ev_def if e["type"] == "result"][0]["result"]
    assert r_def["status"] == "ok" and stdout_of(r_def) == "ready\nfinished\n", \
        f"the default context must not have been interrupted: {r_def!r}"


def test_executions_in_one_context_are_queued(sbx, sandbox):
    """Two executions in the same context at once: the second waits for the first
    (one kernel), and both see the same state."""
    expect_ok(sbx, sandbox, "log = []")
    code1 = "import time\nlog.append('first-start')\ntime.sleep(0.6)\nlog.append('first-end')"
    code2 = "log.append('second')\nlist(log)"
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        f1 = pool.submit(sexec, sbx, sandbox, code1)

        def first_running():
            ctx = [c for c in list_contexts(sbx, sandbox) if c["default"] and c["language"] == "python"]
            return ctx and ctx[0]["running"]
        wait_until(first_running, 10, message="the first cell never showed as running")
        f2 = pool.submit(sexec, sbx, sandbox, code2)

        def second_queued():
            ctx = [c for c in list_contexts(sbx, sandbox) if c["default"] and c["language"] == "python"]
            return ctx and ctx[0]["queued"] == 1 or f1.done()
        wait_until(second_queued, 10, message="the second cell never showed as queued")
        assert not f1.done(), "the first cell ended before the second was seen queued (0.6 s cell)"
        r1, r2 = f1.result(30), f2.result(30)
    assert r1["status"] == "ok", r1
    assert r2["status"] == "ok" and text_of(r2) == "['first-start', 'first-end', 'second']", r2


# =========================================================================
# Contexts
# =========================================================================

def test_contexts_create_list_shape(sbx, sandbox):
    ctxs = list_contexts(sbx, sandbox)
    assert len(ctxs) == 1, f"a new sandbox has one (default) context: {ctxs}"
    d = ctxs[0]
    assert d["default"] is True and d["language"] == "python", d
    assert d["cwd"] == "/home/user", d
    assert not d["running"] and not d["queued"], d
    c = create_context(sbx, sandbox, {"language": "python", "cwd": "/tmp"})
    assert c["default"] is False and c["language"] == "python" and c["cwd"] == "/tmp", c
    assert c["id"] != d["id"]
    c2 = create_context(sbx, sandbox)  # empty body: the sandbox's language
    assert c2["language"] == "python" and c2["default"] is False, c2
    ids = {x["id"] for x in list_contexts(sbx, sandbox)}
    assert ids == {d["id"], c["id"], c2["id"]}, ids
    for bad, code in [({"language": "cobol"}, "unsupported_language"), ({"cwd": "relative"}, None),
                      ({"cwd": 5}, None), (b"{", "invalid_json")]:
        assert_api_error(sbx.http("POST", f"/sandboxes/{sandbox}/contexts", bad), 400, code, repr(bad))


def test_contexts_have_separate_variables_but_share_files(sbx, sandbox):
    ctx = create_context(sbx, sandbox)["id"]
    expect_ok(sbx, sandbox, "v = 'default'\nopen('/home/user/shared.txt', 'w').write('from default')")
    expect_ok(sbx, sandbox, "v = 'ctx'", contextId=ctx)
    assert ok_text(sbx, sandbox, "v") == "default"
    assert ok_text(sbx, sandbox, "v", contextId=ctx) == "ctx"
    assert ok_text(sbx, sandbox, "open('/home/user/shared.txt').read()", contextId=ctx) == "from default"
    r = sexec(sbx, sandbox, "only_default = 1\nonly_default", contextId=ctx)
    assert r["status"] == "ok"
    r = sexec(sbx, sandbox, "only_default")
    assert r["status"] == "error" and r["error"]["name"] == "NameError", r


def test_context_cwd_applies(sbx, sandbox):
    """A context's kernel runs in the `cwd` it was created with."""
    expect_ok(sbx, sandbox, "import os\nos.makedirs('/home/user/proj/sub', exist_ok=True)")
    ctx = create_context(sbx, sandbox, {"cwd": "/home/user/proj/sub"})
    assert ctx["cwd"] == "/home/user/proj/sub", ctx
    tmp = create_context(sbx, sandbox, {"language": "bash", "cwd": "/tmp"})
    assert tmp["cwd"] == "/tmp", tmp
    got = [ok_text(sbx, sandbox, "import os\nos.getcwd()", contextId=ctx["id"]),
           stdout_of(expect_ok(sbx, sandbox, "pwd", contextId=tmp["id"])).strip(),
           ok_text(sbx, sandbox, "import os\nos.getcwd()")]
    assert got == ["/home/user/proj/sub", "/tmp", "/home/user"], \
        f"working directories of (python ctx cwd=/home/user/proj/sub, bash ctx cwd=/tmp, default): {got}"


def test_context_in_another_language(sbx, sandbox):
    ctx = create_context(sbx, sandbox, {"language": "javascript"})
    assert ctx["language"] == "javascript" and ctx["default"] is False, ctx
    expect_ok(sbx, sandbox, "var a = 5;", contextId=ctx["id"])
    assert ok_text(sbx, sandbox, "a * 2", contextId=ctx["id"]) == "10"
    bctx = create_context(sbx, sandbox, {"language": "bash"})
    r = expect_ok(sbx, sandbox, "B=7; echo ok", contextId=bctx["id"])
    r = expect_ok(sbx, sandbox, "echo $((B * 6))", contextId=bctx["id"])
    assert stdout_of(r) == "42\n", r


def test_context_delete(sbx, sandbox):
    ctx = create_context(sbx, sandbox)["id"]
    expect_ok(sbx, sandbox, "z = 1", contextId=ctx)
    resp = sbx.http("DELETE", f"/sandboxes/{sandbox}/contexts/{ctx}")
    assert resp.status == 204 and resp.raw == b"", resp
    assert ctx not in {c["id"] for c in list_contexts(sbx, sandbox)}
    assert_api_error(sexec_raw(sbx, sandbox, "z", contextId=ctx), 404, "context_not_found",
                     "execute in a deleted context")
    assert_api_error(sbx.http("DELETE", f"/sandboxes/{sandbox}/contexts/{ctx}"), 404,
                     "context_not_found", "delete twice")
    assert ok_text(sbx, sandbox, "1") == "1"


def test_context_restart_loses_only_its_state(sbx, sandbox):
    ctx = create_context(sbx, sandbox)["id"]
    expect_ok(sbx, sandbox, "w = 2")
    expect_ok(sbx, sandbox, "v = 1\nopen('/home/user/survives.txt', 'w').write('file')", contextId=ctx)
    resp = sbx.http("POST", f"/sandboxes/{sandbox}/contexts/{ctx}/restart")
    assert resp.status == 200, resp
    assert resp.body.get("id") == ctx, f"restart answers with the context: {resp!r}"
    r = sexec(sbx, sandbox, "v", contextId=ctx)
    assert r["status"] == "error" and r["error"]["name"] == "NameError", f"restart must clear: {r!r}"
    assert ok_text(sbx, sandbox, "w") == "2", "another context's state must be kept"
    assert ok_text(sbx, sandbox, "open('/home/user/survives.txt').read()", contextId=ctx) == "file"
    # Restart of the default context works the same way.
    resp = sbx.http("POST", f"/sandboxes/{sandbox}/contexts/"
                            f"{[c for c in list_contexts(sbx, sandbox) if c['default']][0]['id']}/restart")
    assert resp.status == 200, resp
    r = sexec(sbx, sandbox, "w")
    assert r["status"] == "error" and r["error"]["name"] == "NameError", r


def test_too_many_contexts(sbx, sandbox):
    created = []
    for _ in range(SBX_MAX_CONTEXTS - 1):
        created.append(create_context(sbx, sandbox)["id"])
    assert len(list_contexts(sbx, sandbox)) == SBX_MAX_CONTEXTS
    resp = sbx.http("POST", f"/sandboxes/{sandbox}/contexts", {})
    assert_api_error(resp, 409, "too_many_contexts", f"context #{SBX_MAX_CONTEXTS + 1}")
    # A language's default context made on first use counts too.
    assert_api_error(sexec_raw(sbx, sandbox, "1", language="javascript"), 409, "too_many_contexts",
                     "a new default context past the maximum")
    assert sbx.http("DELETE", f"/sandboxes/{sandbox}/contexts/{created[0]}").status == 204
    assert ok_text(sbx, sandbox, "1+1", language="javascript") == "2"


# =========================================================================
# Streaming
# =========================================================================

def test_sandbox_execute_stream_sequence_and_state(sbx, sandbox, client_id):
    expect_ok(sbx, sandbox, "base = 40")

    async def scenario():
        async with sbx.ws_connect(client_id) as ws:
            e1 = await start_sandbox_stream(sbx, sandbox, client_id,
                                            "import sys\nprint('out1')\nprint('err1', file=sys.stderr)\n"
                                            "streamed = base + 2\nstreamed")
            ev1 = await collect_events(ws, e1, timeout=20)
            e2 = await start_sandbox_stream(sbx, sandbox, client_id, "print(streamed)\n1/0")
            ev2 = await collect_events(ws, e2, timeout=20)
            return e1, ev1, e2, ev2
    e1, ev1, e2, ev2 = run(scenario())
    s1 = check_stream_sequence(ev1, e1)
    assert s1["final"] == "completed" and s1["stdout"] == "out1\n" and s1["stderr"] == "err1\n", s1
    assert text_of(s1["result"]) == "42", s1["result"]
    s2 = check_stream_sequence(ev2, e2)
    assert s2["final"] == "failed" and s2["stdout"] == "42\n", s2
    assert s2["error"]["name"] == "ZeroDivisionError", s2
    assert ok_text(sbx, sandbox, "streamed") == "42"


def test_sandbox_execute_stream_validation(sbx, sandbox, client_id):
    resp = sbx.http("POST", f"/sandboxes/{sandbox}/execute-stream", {"code": "1"})
    assert_api_error(resp, 400, "invalid_request", "no clientId")
    resp = sbx.http("POST", f"/sandboxes/{sandbox}/execute-stream", {"code": "", "clientId": client_id})
    assert_api_error(resp, 400, "invalid_request", "empty code")

    # An unknown contextId: refused at once (404 context_not_found, as POST .../execute
    # does), or -- the binary's choice -- accepted and refused in the stream, which
    # must then end `failed` with an error naming the context.
    async def scenario():
        async with sbx.ws_connect(client_id) as ws:
            r = await sbx.ahttp("POST", f"/sandboxes/{sandbox}/execute-stream",
                                {"code": "1", "clientId": client_id, "contextId": "no-such-ctx"})
            if r.status != 200:
                return r, None
            return r, await collect_events(ws, r.body["executionId"], timeout=10)
    resp, events = run(scenario())
    if events is None:
        assert_api_error(resp, 404, "context_not_found", "execute-stream with an unknown contextId")
    else:
        seq = check_stream_sequence(events, resp.body["executionId"])
        assert seq["final"] == "failed" and "no-such-ctx" in seq["error"]["value"], summarize(events)


# =========================================================================
# Rich results
# =========================================================================

def test_matplotlib_show_gives_png(sbx, sandbox):
    r = sexec(sbx, sandbox,
              "import matplotlib.pyplot as plt\n"
              "fig = plt.figure(figsize=(4, 3), dpi=50)\n"
              "plt.plot([1, 2, 3], [4, 1, 9])\nplt.show()\n", timeout=60000)
    assert r["status"] == "ok", r
    pngs = [x for x in r["results"] if x.get("png")]
    assert len(pngs) == 1, f"plt.show() must give exactly one PNG result: {json.dumps(r)[:800]}"
    assert pngs[0]["is_main_result"] is False, "a figure is display data, not the main result"
    w, h = png_size(pngs[0]["png"])
    assert 0 < w <= 4000 and 0 < h <= 4000, (w, h)
    assert abs(w / h - 4 / 3) < 0.2, f"a 4x3 figure came out {w}x{h}"
    # The figure state persists: a second show() of a new figure is another PNG.
    r = sexec(sbx, sandbox, "plt.figure()\nplt.bar(['a', 'b'], [1, 2])\nplt.show()", timeout=60000)
    pngs = [x for x in r["results"] if x.get("png")]
    assert r["status"] == "ok" and len(pngs) == 1, r
    png_size(pngs[0]["png"])
    # A figure left open at the end of the cell is shown too, beside the main result.
    r = sexec(sbx, sandbox, "plt.figure()\nplt.plot([3, 1, 2])\n7 * 6", timeout=60000)
    pngs = [x for x in r["results"] if x.get("png")]
    assert r["status"] == "ok" and len(pngs) == 1 and text_of(r) == "42", r
    png_size(pngs[0]["png"])
    # Nothing left open: no PNG.
    r = sexec(sbx, sandbox, "plt.close('all')\n1")
    assert not [x for x in r["results"] if x.get("png")], r


def test_pandas_dataframe_result(sbx, sandbox):
    r = sexec(sbx, sandbox,
              "import pandas as pd\n"
              "df = pd.DataFrame({'name': ['ada', 'bob'], 'score': [91, 77]})\ndf", timeout=60000)
    assert r["status"] == "ok", r
    mains = [x for x in r["results"] if x.get("is_main_result")]
    assert len(mains) == 1, r
    main = mains[0]
    assert isinstance(main.get("html"), str) and "<table" in main["html"] and "ada" in main["html"], main
    assert main.get("data") == {"name": ["ada", "bob"], "score": [91, 77]}, \
        f"a DataFrame result's `data` maps column -> values: {main!r}"
    assert "ada" in (main.get("text") or ""), main


# =========================================================================
# Idle timeout and lifetime
# =========================================================================

def test_idle_timeout_destroys_sandbox_and_set_timeout_extends(sbx):
    short = create_sandbox(sbx, {"timeout": 1})["sandboxId"]
    kept = create_sandbox(sbx, {"timeout": 1})["sandboxId"]
    try:
        uid = host_uid_inside(sbx, short)
        pids = pids_of_uid(sbx, uid)
        assert pids, f"no host process found for sandbox {short} (uid {uid})"
        cgroups = cgroups_of(pids)
        resp = sbx.http("POST", f"/sandboxes/{kept}/timeout", {"timeout": 60})
        assert resp.status == 200, resp
        t0 = time.monotonic()
        wait_gone(sbx, short, timeout=10)
        assert time.monotonic() - t0 < 8
        wait_until(lambda: not alive(pids), 10, message=lambda _: f"processes {alive(pids)} of the "
                   f"expired sandbox still exist")
        wait_until(lambda: not cgroup_dirs_exist(cgroups), 10,
                   message=lambda _: f"cgroups {cgroup_dirs_exist(cgroups)} remain")
        assert short not in {s["sandboxId"] for s in sbx.http("GET", "/sandboxes").body["sandboxes"]}
        # The extended one lives on.
        assert get_sandbox(sbx, kept).status == 200
        assert ok_text(sbx, kept, "'still here'") == "still here"
    finally:
        delete_sandbox(sbx, short)
        delete_sandbox(sbx, kept)


def test_activity_extends_idle_timeout(sbx):
    sid = create_sandbox(sbx, {"timeout": 2})["sandboxId"]
    try:
        expect_ok(sbx, sid, "hits = 0")
        t0 = time.monotonic()
        while time.monotonic() - t0 < 3.5:  # longer than the 2 s idle timeout
            expect_ok(sbx, sid, "hits += 1")
            time.sleep(0.4)  # paces the activity; the timeouts are checked by deadlines below
        assert int(ok_text(sbx, sid, "hits")) >= 5
        # A busy execution is not idleness either: 3 s inside one cell.
        r = expect_ok(sbx, sid, "import time\ntime.sleep(3)\nprint('done')", timeout=10000)
        assert stdout_of(r) == "done\n"
        assert get_sandbox(sbx, sid).status == 200
        t_idle = time.monotonic()
        wait_gone(sbx, sid, timeout=10)
        assert time.monotonic() - t_idle > 1, "destroyed before its idle timeout"
    finally:
        delete_sandbox(sbx, sid)


def test_file_access_counts_as_activity(sbx):
    sid = create_sandbox(sbx, {"timeout": 2})["sandboxId"]
    try:
        t0 = time.monotonic()
        n = 0
        while time.monotonic() - t0 < 3.5:  # longer than the 2 s idle timeout; no execution
            path = f"/sandboxes/{sid}/files?path=tick.txt"
            put = sbx.http("PUT", path, str(n).encode())
            assert put.status == 200, f"the sandbox died although its files were used: {put!r}"
            assert sbx.http("GET", path).raw == str(n).encode()
            n += 1
            time.sleep(0.4)  # paces the activity
        assert get_sandbox(sbx, sid).status == 200
        wait_gone(sbx, sid, timeout=10)
    finally:
        delete_sandbox(sbx, sid)


def test_default_idle_timeout_and_max_lifetime(service_factory):
    svc = service_factory({"SANDBOX_IDLE_TIMEOUT_MS": "1500", "SANDBOX_MAX_LIFETIME_MS": "5000",
                           "WARM_POOL_SIZE": "0"})
    idle = create_sandbox(svc)
    span = parse_time(idle["expiresAt"]) - parse_time(idle["createdAt"])
    assert abs(span - 1.5) < 1, f"SANDBOX_IDLE_TIMEOUT_MS=1500 not reflected: {idle}"
    busy = create_sandbox(svc, {"timeout": 600})["sandboxId"]
    uid = host_uid_inside(svc, busy)
    pids = pids_of_uid(svc, uid)
    assert pids
    wait_gone(svc, idle["sandboxId"], timeout=8)
    assert get_sandbox(svc, busy).status == 200, "the busy sandbox must outlive the idle one"
    t0 = time.monotonic()
    # The lifetime ends even a busy sandbox, long before the cell's own 12 s timeout.
    r = sexec(svc, busy, "import time\nprint('busy', flush=True)\nwhile True:\n    time.sleep(0.05)",
              timeout=12000, http_timeout=30)
    took = time.monotonic() - t0
    assert r["status"] not in ("ok", "timeout") and r["error"] is not None, r
    assert took < 10, f"SANDBOX_MAX_LIFETIME_MS=5000 did not stop a busy sandbox (took {took:.1f}s)"
    wait_gone(svc, busy, timeout=5)
    wait_until(lambda: not alive(pids), 10, message=lambda _: f"processes {alive(pids)} remain")
    assert_nothing_left(svc, timeout=10, own_only=True)


# =========================================================================
# Sandbox counts: per key and server-wide
# =========================================================================

def test_key_max_sandboxes_without_api_keys(service_factory):
    svc = service_factory({"KEY_MAX_SANDBOXES": "2", "WARM_POOL_SIZE": "0"})
    a = create_sandbox(svc)["sandboxId"]
    b = create_sandbox(svc)["sandboxId"]
    resp = create_sandbox_raw(svc)
    assert_api_error(resp, 429, "too_many_sandboxes", "third sandbox with KEY_MAX_SANDBOXES=2")
    assert sandbox_counts(svc)["stateful"] == 2
    assert delete_sandbox(svc, a) == 204
    c = create_sandbox(svc)["sandboxId"]
    for sid in (b, c):
        assert delete_sandbox(svc, sid) == 204


def test_per_key_and_server_max_sandboxes(service_factory):
    svc = service_factory({"API_KEYS": "key-a,key-b", "KEY_MAX_SANDBOXES": "2", "MAX_SANDBOXES": "3",
                           "WARM_POOL_SIZE": "0", "KEY_RATE_LIMIT_RPS": "0"})
    assert_api_error(create_sandbox_raw(svc), 401, "unauthorized", "no key")
    a1 = create_sandbox(svc, key="key-a")["sandboxId"]
    a2 = create_sandbox(svc, key="key-a")["sandboxId"]
    assert_api_error(create_sandbox_raw(svc, key="key-a"), 429, "too_many_sandboxes", "A's third")
    b1 = create_sandbox(svc, key="key-b")["sandboxId"]
    resp = create_sandbox_raw(svc, key="key-b")
    assert_api_error(resp, 503, "too_many_sandboxes", "MAX_SANDBOXES=3 reached")
    assert int(resp.headers.get("retry-after", "0")) > 0, f"503 without Retry-After: {resp.headers}"
    assert svc.running
    assert delete_sandbox(svc, a1, key="key-a") == 204
    # Once DELETE has answered 204 the sandbox is gone (GET is 404): its slot is free.
    b2 = create_sandbox(svc, key="key-b")["sandboxId"]
    for sid, key in ((a2, "key-a"), (b1, "key-b"), (b2, "key-b")):
        assert delete_sandbox(svc, sid, key=key) == 204


def test_one_shot_execute_at_max_sandboxes(service_factory):
    """MAX_SANDBOXES counts sandboxes of any kind: with every slot held by a
    stateful sandbox, a one-shot /execute is refused with 503 too_many_sandboxes
    and Retry-After (README: Lifetime, Errors), and works again once one is gone."""
    svc = service_factory({"MAX_SANDBOXES": "2", "WARM_POOL_SIZE": "0"})
    sids = [create_sandbox(svc)["sandboxId"] for _ in range(2)]
    try:
        resp = svc.http("POST", "/execute", {"code": "print(1)"})
        assert_api_error(resp, 503, "too_many_sandboxes", "one-shot /execute with every slot taken")
        assert int(resp.headers.get("retry-after", "0")) > 0, resp.headers
    finally:
        for sid in sids:
            delete_sandbox(svc, sid)
    wait_until(lambda: sandbox_counts(svc)["live"] == 0, 10, message="slots not freed")
    r = svc.execute("print('free again')")["result"]
    assert r["status"] == "ok" and stdout_of(r) == "free again\n", r


def test_api_keys_isolate_sandboxes(service_factory):
    svc = service_factory({"API_KEYS": "key-a,key-b", "WARM_POOL_SIZE": "0", "KEY_RATE_LIMIT_RPS": "0"})
    sid = create_sandbox(svc, {"metadata": {"who": "a"}}, key="key-a")["sandboxId"]
    ctx = create_context(svc, sid, key="key-a")["id"]
    assert ok_text(svc, sid, "secret = 'A-only'\nsecret", key="key-a") == "A-only"
    listed = svc.http("GET", "/sandboxes", headers=auth("key-b"))
    assert listed.status == 200 and listed.body["sandboxes"] == [], f"B sees A's sandboxes: {listed!r}"
    listed = svc.http("GET", "/sandboxes", headers=auth("key-a"))
    assert [s["sandboxId"] for s in listed.body["sandboxes"]] == [sid], listed
    b = auth("key-b")
    for method, path, body in [
        ("GET", f"/sandboxes/{sid}", None),
        ("POST", f"/sandboxes/{sid}/timeout", {"timeout": 10}),
        ("POST", f"/sandboxes/{sid}/execute", {"code": "secret"}),
        ("POST", f"/sandboxes/{sid}/execute-stream", {"code": "secret", "clientId": "b"}),
        ("POST", f"/sandboxes/{sid}/interrupt", {}),
        ("POST", f"/sandboxes/{sid}/contexts", {}),
        ("GET", f"/sandboxes/{sid}/contexts", None),
        ("POST", f"/sandboxes/{sid}/contexts/{ctx}/restart", None),
        ("DELETE", f"/sandboxes/{sid}/contexts/{ctx}", None),
        ("GET", f"/sandboxes/{sid}/files?path=/home/user", None),
        ("PUT", f"/sandboxes/{sid}/files?path=planted.txt", b"from B"),
        ("GET", f"/sandboxes/{sid}/files/list?path=/home/user", None),
        ("DELETE", f"/sandboxes/{sid}", None),
    ]:
        resp = svc.http(method, path, body, headers=b)
        assert_api_error(resp, 404, "sandbox_not_found", f"key B: {method} {path}")
        assert "A-only" not in resp.raw.decode("utf-8", "replace")
    for method, path in [("GET", f"/sandboxes/{sid}"), ("POST", f"/sandboxes/{sid}/execute")]:
        assert svc.http(method, path, {"code": "1"} if method == "POST" else None).status == 401
    # A's sandbox is intact: the variable, the context, no planted file.
    assert ok_text(svc, sid, "secret", key="key-a") == "A-only"
    assert ctx in {c["id"] for c in list_contexts(svc, sid, key="key-a")}
    assert ok_text(svc, sid, "import os\nos.path.exists('/home/user/planted.txt')", key="key-a") == "False"
    assert delete_sandbox(svc, sid, key="key-a") == 204


# =========================================================================
# Warm pool
# =========================================================================

def _pool_uids(svc) -> set[int]:
    return set(instance_processes(svc).values())


def test_warm_pool_is_used_and_refills(service_factory):
    svc = service_factory({"WARM_POOL_SIZE": "2", "WARM_POOL_LANGUAGES": "python"})
    wait_until(lambda: sandbox_counts(svc)["pooled"] == 2, 30, message="the pool never filled to 2")
    pooled_uids = wait_until(lambda: (lambda u: u if len(u) == 2 else None)(_pool_uids(svc)), 10,
                             message="expected the processes of 2 pooled sandboxes")
    # A one-shot /execute takes a pooled sandbox...
    r = svc.execute(UID_MAP_CODE, "python")["result"]
    assert r["status"] == "ok", r
    assert int(stdout_of(r)) in pooled_uids, \
        f"/execute did not run in a pooled sandbox (uid {stdout_of(r).strip()}, pool {pooled_uids})"
    # ...and the pool refills.
    wait_until(lambda: sandbox_counts(svc)["pooled"] == 2, 20, message="pool not refilled after /execute")
    pooled_uids = wait_until(lambda: (lambda u: u if len(u) == 2 else None)(_pool_uids(svc)), 10,
                             message="expected the processes of 2 pooled sandboxes")
    sb = create_sandbox(svc)
    try:
        uid = host_uid_inside(svc, sb["sandboxId"])
        assert uid in pooled_uids, f"POST /sandboxes did not take a pooled sandbox ({uid}, {pooled_uids})"
        wait_until(lambda: sandbox_counts(svc)["pooled"] == 2, 20,
                   message="pool not refilled after POST /sandboxes")
        c = sandbox_counts(svc)
        assert c["stateful"] == 1, c
        # A pooled sandbox carries no state of a previous user.
        assert ok_text(svc, sb["sandboxId"], "import os\nsorted(os.listdir('/home/user'))") == "[]"
    finally:
        delete_sandbox(svc, sb["sandboxId"])


class _Sampler:
    """Samples, every 50 ms in a thread, how many sandboxes of `svc` exist on the
    host (distinct sandbox uids in its cgroups) and its /health counters."""

    def __init__(self, svc):
        self.svc = svc
        self.samples: list[tuple[int, dict]] = []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.samples.append((len(_pool_uids(self.svc)), sandbox_counts(self.svc)))
            self._stop.wait(0.05)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join(5)
        return False

    def check(self, maximum: int):
        assert self.samples, "no samples"
        worst = max(n for n, _ in self.samples)
        assert worst <= maximum, f"{worst} sandboxes existed at once with MAX_SANDBOXES={maximum}"
        pooled = max(c["pooled"] for _, c in self.samples)
        assert pooled <= maximum, f"/health pooled reached {pooled} with MAX_SANDBOXES={maximum}"


def _pooled_languages(svc) -> list[str]:
    """The language of each pooled sandbox of `svc` (no stateful ones may exist),
    from its kernel's command line on the host."""
    by_uid: dict[int, str] = {}
    for pid, uid in instance_processes(svc).items():
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if "node_runner.js" in cmd:
            by_uid[uid] = "javascript"
        elif "python_runner.py" in cmd:
            by_uid.setdefault(uid, "python")
    return sorted(by_uid.values())


def _wait_pool_holds_every_slot(svc, maximum: int):
    """Waits (deadline) until the pool holds every slot it may take, `maximum` - 1
    (it never takes the last free one), then checks /health agrees."""
    pooled = maximum - 1
    wait_until(lambda: len(_pool_uids(svc)) == pooled and sandbox_counts(svc)["stateful"] == 0, 30,
               message=f"the pool did not fill {pooled} of the {maximum} slots")
    counts = sandbox_counts(svc)
    if counts["pooled"] != pooled:  # checked at the end, so the rest of the test still runs
        return (f"/health pooled={counts['pooled']} while {len(_pool_uids(svc))} pooled sandboxes "
                f"exist (MAX_SANDBOXES={maximum}): {counts}")
    return None


POOL_OVER_MAX_ENV = {"WARM_POOL_SIZE": "3", "WARM_POOL_LANGUAGES": "python,javascript",
                     "MAX_SANDBOXES": "4"}


def test_warm_pool_never_exceeds_max_sandboxes(service_factory):
    """3 per language x 2 languages wanted, MAX_SANDBOXES=4: the pool stops at 3
    (the last slot stays free), hands its sandboxes out, and never lets the total
    pass 4."""
    svc = service_factory(POOL_OVER_MAX_ENV)
    made = []
    with _Sampler(svc) as sampler:
        try:
            pool_problem = _wait_pool_holds_every_slot(svc, 4)
            # Take exactly what the pool holds (its split between the languages is its own).
            langs = _pooled_languages(svc)
            assert sorted(langs) in (["javascript"] * k + ["python"] * (3 - k) for k in range(4)), langs
            for lang in langs:
                made.append(create_sandbox(svc, {"language": lang})["sandboxId"])
            made.append(create_sandbox(svc, {"language": "python"})["sandboxId"])  # the free slot
            assert [ok_text(svc, sid, "6*7") for sid in made] == ["42"] * 4
            resp = create_sandbox_raw(svc)
            assert resp.status == 503 and int(resp.headers.get("retry-after", "0")) > 0, \
                f"5th sandbox with MAX_SANDBOXES=4: expected 503 + Retry-After, got {resp!r}"
            assert len(_pool_uids(svc)) == 4
            assert delete_sandbox(svc, made.pop()) == 204
            # One slot free again: a new sandbox fits in it.
            made.append(create_sandbox(svc, {"language": "python"})["sandboxId"])
        finally:
            for sid in made:
                delete_sandbox(svc, sid)
    sampler.check(4)
    assert pool_problem is None, pool_problem


def test_pooled_sandboxes_give_way_to_other_languages(service_factory):
    """The pool holds every slot it may (python and javascript); a bash sandbox and
    then a bash one-shot must still start: idle pooled sandboxes give way (they are
    evicted) when the server is at MAX_SANDBOXES."""
    svc = service_factory(POOL_OVER_MAX_ENV)
    made = []
    with _Sampler(svc) as sampler:
        try:
            pool_problem = _wait_pool_holds_every_slot(svc, 4)
            made.append(create_sandbox(svc, {"language": "bash"})["sandboxId"])
            r = expect_ok(svc, made[0], "echo $((6 * 7))")
            assert stdout_of(r) == "42\n", r
            r = svc.execute("echo one-shot", "bash")["result"]
            assert r["status"] == "ok" and stdout_of(r) == "one-shot\n", r
        finally:
            for sid in made:
                delete_sandbox(svc, sid)
    sampler.check(4)
    assert pool_problem is None, pool_problem


# =========================================================================
# Languages
# =========================================================================

def test_health_lists_languages(sbx):
    langs = languages_of(sbx)
    assert set(langs) == {"python", "javascript", "typescript", "bash", "java", "r"}, langs
    for must in ("python", "javascript", "bash"):
        assert langs[must]["available"], langs[must]


def _runner_dir() -> str:
    for cand in (binary_path().parent / "runners", binary_path().parent.parent / "sandbox" / "runners"):
        if (cand / "python_runner.py").exists():
            return str(cand)
    pytest.skip("runner directory not found next to the binary")


@pytest.fixture
def runner_dir_without_java():
    """A copy of the runner dir without the compiled Java kernel, readable by the
    sandbox uids (pytest's tmp_path is 0700): java is unavailable whatever the host has."""
    base = tempfile.mkdtemp(prefix="codeexec-it-runners-")
    os.chmod(base, 0o755)
    rd = os.path.join(base, "runners")
    shutil.copytree(_runner_dir(), rd, ignore=shutil.ignore_patterns("*.class", "__pycache__"))
    for root, dirs, files in os.walk(rd):
        for d in dirs:
            os.chmod(os.path.join(root, d), 0o755)
        for f in files:
            os.chmod(os.path.join(root, f), 0o644)
    yield rd
    shutil.rmtree(base, ignore_errors=True)


def test_unavailable_language_is_refused_cleanly(service_factory, runner_dir_without_java):
    """Every way of asking for an unavailable language gets 400 unavailable_language
    with the reason /health gives. (All four routes are checked before failing.)"""
    svc = service_factory({"RUNNER_DIR": runner_dir_without_java, "WARM_POOL_SIZE": "0"})
    langs = languages_of(svc)
    assert langs["java"]["available"] is False, langs["java"]
    reason = langs["java"]["reason"]
    sid = create_sandbox(svc)["sandboxId"]
    problems = []
    for what, resp in [
        ("POST /sandboxes java", create_sandbox_raw(svc, {"language": "java"})),
        ("POST /execute java", svc.http("POST", "/execute", {"code": "1", "language": "java"})),
        ("execute java in a python sandbox", sexec_raw(svc, sid, "1", language="java")),
        ("POST contexts java", svc.http("POST", f"/sandboxes/{sid}/contexts", {"language": "java"})),
    ]:
        if resp.status != 400 or error_code(resp) != "unavailable_language":
            problems.append(f"{what}: expected 400 unavailable_language, got {resp!r}")
        elif reason not in resp.body["error"]["message"]:
            problems.append(f"{what}: the message must give the reason {reason!r}: {resp!r}")
    assert not problems, "\n".join(problems)
    assert ok_text(svc, sid, "1+1") == "2"
    assert len(list_contexts(svc, sid)) == 1
    assert sandbox_counts(svc)["stateful"] == 1, "a refused sandbox must not be counted"
    assert delete_sandbox(svc, sid) == 204
    assert_nothing_left(svc, timeout=10, own_only=True)


def test_languages_setting_serves_only_the_languages_it_names(service_factory):
    """LANGUAGES=python,bash: JavaScript is refused like a runtime the host lacks,
    with a reason that names the setting; the default warm pool starts without it."""
    svc = service_factory({"LANGUAGES": "python, bash"})
    langs = languages_of(svc)
    assert [name for name, entry in langs.items() if entry["available"]] == ["python", "bash"], langs
    reason = langs["javascript"]["reason"]
    assert "LANGUAGES" in reason, reason
    resp = svc.http("POST", "/execute", {"code": "1", "language": "javascript"})
    assert resp.status == 400 and error_code(resp) == "unavailable_language", resp
    assert reason in resp.body["error"]["message"], resp
    resp = svc.http("POST", "/execute", {"code": "print(6*7)", "language": "python"})
    assert resp.status == 200 and resp.body["result"]["logs"]["stdout"] == ["42\n"], resp


def test_languages_setting_refuses_what_it_cannot_serve():
    """An empty or unknown LANGUAGES, or a pool language it leaves out, stops the
    start with the variable named, before anything is served."""
    for env, words in [({"LANGUAGES": " , "}, "at least one"),
                       ({"LANGUAGES": "python,cobol"}, "cobol"),
                       ({"LANGUAGES": "python", "WARM_POOL_LANGUAGES": "javascript"}, "not in LANGUAGES")]:
        proc = subprocess.run([str(binary_path())], env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                                                         **BASE_ENV, **env},
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, cwd="/tmp")
        assert proc.returncode != 0, (env, proc)
        assert words in proc.stderr and "LANGUAGES" in proc.stderr, (env, proc.stderr)


# =========================================================================
# Leaks and shutdown
# =========================================================================

def test_delete_leaves_no_process_or_cgroup(sbx):
    sid = create_sandbox(sbx)["sandboxId"]
    uid = host_uid_inside(sbx, sid)
    ctx = create_context(sbx, sid)["id"]
    expect_ok(sbx, sid, "1", language="javascript")
    # Daemons that try to outlive everything.
    expect_ok(sbx, sid, "import subprocess\n"
                        "subprocess.Popen(['sleep', '1000'], start_new_session=True)\n"
                        "subprocess.Popen(['bash', '-c', 'trap \"\" TERM HUP INT; while :; do sleep 1; done'])",
              contextId=ctx)
    expect_ok(sbx, sid, "nohup sleep 1000 >/dev/null 2>&1 &\ndisown", language="bash")
    pids = pids_of_uid(sbx, uid)
    assert len(pids) >= 6, f"expected init, 3 kernels and the daemons: {pids}"
    cgroups = cgroups_of(pids)
    assert cgroups, f"sandbox {sid}: processes in no sbx-* cgroup: {pids}"
    assert delete_sandbox(sbx, sid) == 204
    wait_until(lambda: not alive(pids), 10, message=lambda _: f"processes {alive(pids)} survived DELETE")
    wait_until(lambda: not cgroup_dirs_exist(cgroups), 10,
               message=lambda _: f"cgroups {cgroup_dirs_exist(cgroups)} survived DELETE")
    assert not pids_of_uid(sbx, uid)


def test_a_deleted_sandbox_leaves_no_thread_in_the_service(sbx):
    """Each sandbox has threads in the service (its actor's, its I/O thread). A pending
    timer (the idle-timeout check, an execution's deadline) must not keep a deleted
    sandbox's actor, and so its threads, alive."""
    def service_threads() -> int:
        return len(os.listdir(f"/proc/{sbx.proc.pid}/task"))

    before = service_threads()
    sid = create_sandbox(sbx, {"timeout": 3600})["sandboxId"]
    expect_ok(sbx, sid, "x = 1")
    assert service_threads() > before
    assert delete_sandbox(sbx, sid) == 204
    wait_until(lambda: service_threads() <= before, 10,
               message=lambda _: f"{service_threads()} threads, {before} before the sandbox")


def test_sigterm_destroys_every_sandbox(service_factory):
    svc = service_factory({"WARM_POOL_SIZE": "1", "WARM_POOL_LANGUAGES": "python",
                           "SHUTDOWN_GRACE_MS": "500", "INTERRUPT_GRACE_MS": "300"})
    a = create_sandbox(svc)["sandboxId"]
    b = create_sandbox(svc, {"language": "bash"})["sandboxId"]
    create_context(svc, a, {"language": "javascript"})
    expect_ok(svc, b, "nohup sleep 1000 >/dev/null 2>&1 &")
    wait_until(lambda: sandbox_counts(svc)["pooled"] == 1, 20, message="pool never filled")
    procs = instance_processes(svc)
    pids, uids = list(procs), set(procs.values())
    assert len(uids) >= 3, f"two sandboxes and a pooled one: {procs}"
    svc_pid = svc.proc.pid
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        busy = pool.submit(sexec_raw, svc, a, "import time\nwhile True:\n    time.sleep(0.05)",
                           None, 30, timeout=60000)
        wait_until(lambda: any(c["running"] for c in list_contexts(svc, a)), 10,
                   message="the busy cell never started")
        svc.signal(signal.SIGTERM)
        code = svc.wait_exit(30)
        resp = busy.result(10)
    assert code == 0, f"exit code {code} after SIGTERM:\n{svc.log_tail(30)}"
    assert resp.status in (200, 503), f"the running request must get an answer: {resp!r}"
    wait_until(lambda: not alive(pids), 10, message=lambda _: f"processes {alive(pids)} survived SIGTERM")
    # Other instances (this module's) reuse the same uids: what counts is a process in
    # this instance's cgroups or in no sandbox cgroup at all (escaped).
    def leftover(p):
        pid = p.split()[0].split("=")[1]
        paths = _cgroup_paths(pid)
        return paths and (any(f"/sbx-{svc_pid}-" in c for c in paths) or not any("/sbx-" in c for c in paths))
    left = [p for p in sandbox_processes() if int(p.split()[1].split("=")[1]) in uids and leftover(p)]
    assert not left, f"processes of the stopped instance remain: {left}"
    wait_until(lambda: not instance_cgroups(svc_pid), 10,
               message=lambda _: f"cgroups {instance_cgroups(svc_pid)} survived SIGTERM")
