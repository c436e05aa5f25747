"""Standard input of sandbox executions: `stdin` text in the request (fed, then
end of file), and interactive executions (`interactive: true`) fed through
POST /executions/{id}/stdin or a WebSocket {"type": "stdin"} message, read by
Python input()/sys.stdin, bash read/cat and node readline.

The runners' side (the per-cell stdin FIFO) was being written while these
tests were; a failure here that shows the code reading end-of-file at once is
the runner ignoring the FIFO ("RUNNER STDIN" in the report), not a test bug.
"""

from __future__ import annotations

import json
import uuid

import pytest

from helpers import check_stream_sequence, collect_events, is_output, run, stdout_of, summarize
from sandbox_helpers import (SBX_ENV, assert_api_error, create_sandbox, delete_sandbox,
                             module_instance, ok_text, sexec, start_sandbox_stream)

pytestmark = pytest.mark.websocket


@pytest.fixture(scope="module")
def sbx(request, tmp_path_factory):
    yield from module_instance(request, tmp_path_factory, SBX_ENV, "codeexec-stdin")


@pytest.fixture
def sandbox(sbx):
    sb = create_sandbox(sbx, {"timeout": 300})
    yield sb["sandboxId"]
    assert delete_sandbox(sbx, sb["sandboxId"]) in (204, 404)


def ok(r):
    assert r["status"] == "ok", r
    return stdout_of(r)


# =========================================================================
# `stdin` in the request
# =========================================================================

def test_python_reads_stdin_text_then_eof(sbx, sandbox):
    code = ("a = input()\nb = input('prompt> ')\n"
            "try:\n    input()\nexcept EOFError:\n    print('EOF')\n"
            "print(a.upper(), b)")
    r = sexec(sbx, sandbox, code, stdin="hello\nworld\n")
    assert r["status"] == "ok", f"RUNNER STDIN? {r!r}"
    assert stdout_of(r).endswith("EOF\nHELLO world\n"), f"RUNNER STDIN? {r!r}"
    # The values read are kept like any state.
    assert ok_text(sbx, sandbox, "a + '/' + b") == "hello/world"


def test_python_sys_stdin_read_all(sbx, sandbox):
    data = "line1\nline2\n" + "x" * 100000 + "\nlast"
    r = sexec(sbx, sandbox, "import sys\ndata = sys.stdin.read()\nprint(len(data), data.count('\\n'))",
              stdin=data)
    assert ok(r) == f"{len(data)} 3\n", f"RUNNER STDIN? {r!r}"


def test_without_stdin_input_gets_eof_at_once(sbx, sandbox):
    r = sexec(sbx, sandbox, "try:\n    input()\nexcept EOFError:\n    print('EOF at once')", timeout=5000)
    assert ok(r) == "EOF at once\n", r
    # stdin of one execution is not seen by the next
    sexec(sbx, sandbox, "input()", stdin="only once\n")
    r = sexec(sbx, sandbox, "import sys\nprint(repr(sys.stdin.read()))", timeout=5000)
    assert ok(r) == "''\n", r


def test_bash_read_and_cat(sbx):
    sb = create_sandbox(sbx, {"language": "bash"})
    try:
        r = sexec(sbx, sb["sandboxId"], 'read -r first\necho "first=$first"\ncat | tr a-z A-Z',
                  stdin="one\ntwo\nthree\n")
        assert ok(r) == "first=one\nTWO\nTHREE\n", f"RUNNER STDIN? {r!r}"
        r = sexec(sbx, sb["sandboxId"], 'echo "still $first"')
        assert ok(r) == "still one\n", r
    finally:
        delete_sandbox(sbx, sb["sandboxId"])


def test_node_readline(sbx):
    sb = create_sandbox(sbx, {"language": "javascript"})
    try:
        code = ("const readline = require('readline');\n"
                "const rl = readline.createInterface({ input: process.stdin });\n"
                "const lines = [];\n"
                "for await (const line of rl) lines.push(line);\n"
                "console.log(lines.join('|'));")
        r = sexec(sbx, sb["sandboxId"], code, stdin="a\nb\nc\n", timeout=10000)
        assert ok(r) == "a|b|c\n", f"RUNNER STDIN? {r!r}"
        r = sexec(sbx, sb["sandboxId"], "console.log(require('fs').readFileSync(0, 'utf8').length)",
                  stdin="12345", timeout=10000)
        assert ok(r) == "5\n", f"RUNNER STDIN? {r!r}"
    finally:
        delete_sandbox(sbx, sb["sandboxId"])


def test_stdin_in_other_language_context(sbx, sandbox):
    r = sexec(sbx, sandbox, "read -r x; echo \"bash got $x\"", language="bash", stdin="42\n")
    assert ok(r) == "bash got 42\n", f"RUNNER STDIN? {r!r}"


# =========================================================================
# Interactive: POST /executions/{id}/stdin
# =========================================================================

def _result(events):
    res = [e for e in events if e["type"] == "result"]
    assert res, summarize(events)
    return res[0]["result"]


def test_interactive_python_over_http(sbx, sandbox, client_id):
    code = ("print('name?', flush=True)\nname = input()\nprint('hi', name, flush=True)\n"
            "import sys\nrest = [l.strip() for l in sys.stdin]\nprint('rest', rest)")

    async def scenario():
        async with sbx.ws_connect(client_id) as ws:
            eid = await start_sandbox_stream(sbx, sandbox, client_id, code, interactive=True, timeout=20000)
            await collect_events(ws, eid, until=is_output("stdout", "name?"), timeout=15)
            r1 = await sbx.ahttp("POST", f"/executions/{eid}/stdin", {"data": "Ada\n"})
            await collect_events(ws, eid, until=is_output("stdout", "hi Ada"), timeout=10)
            r2 = await sbx.ahttp("POST", f"/executions/{eid}/stdin", {"data": "x\ny\n"})
            r3 = await sbx.ahttp("POST", f"/executions/{eid}/stdin", {"eof": True})
            events = await collect_events(ws, eid, timeout=10)
            return eid, r1, r2, r3, events
    eid, r1, r2, r3, events = run(scenario())
    for r in (r1, r2, r3):
        assert r.status == 202, r
    result = _result(events)
    assert result["status"] == "ok", f"RUNNER STDIN? {result!r}"
    assert stdout_of(result) == "name?\nhi Ada\nrest ['x', 'y']\n", result
    assert ok_text(sbx, sandbox, "name") == "Ada"
    # The execution is over: its stdin is gone.
    assert_api_error(sbx.http("POST", f"/executions/{eid}/stdin", {"data": "late"}), 404,
                     "execution_not_found", "stdin after the end")


def test_interactive_data_and_eof_in_one_message(sbx, sandbox, client_id):
    code = "import sys\nprint('ready', flush=True)\nprint(repr(sys.stdin.read()))"

    async def scenario():
        async with sbx.ws_connect(client_id) as ws:
            eid = await start_sandbox_stream(sbx, sandbox, client_id, code, interactive=True, timeout=20000)
            await collect_events(ws, eid, until=is_output("stdout", "ready"), timeout=15)
            r = await sbx.ahttp("POST", f"/executions/{eid}/stdin", {"data": "all of it", "eof": True})
            return r, await collect_events(ws, eid, timeout=10)
    r, events = run(scenario())
    assert r.status == 202, r
    assert stdout_of(_result(events)) == "ready\n'all of it'\n", f"RUNNER STDIN? {summarize(events)}"


def test_interactive_stdin_given_up_front_then_more(sbx, sandbox, client_id):
    """`stdin` text with `interactive: true`: the text comes first, then what is sent."""
    code = "a = input()\nprint('got', a, flush=True)\nb = input()\nprint('then', b)"

    async def scenario():
        async with sbx.ws_connect(client_id) as ws:
            eid = await start_sandbox_stream(sbx, sandbox, client_id, code, interactive=True,
                                             stdin="first\n", timeout=20000)
            await collect_events(ws, eid, until=is_output("stdout", "got first"), timeout=15)
            r = await sbx.ahttp("POST", f"/executions/{eid}/stdin", {"data": "second\n"})
            return r, await collect_events(ws, eid, timeout=10)
    r, events = run(scenario())
    assert r.status == 202, r
    assert stdout_of(_result(events)) == "got first\nthen second\n", f"RUNNER STDIN? {summarize(events)}"


def test_interactive_bash_and_node(sbx, client_id):
    bash = create_sandbox(sbx, {"language": "bash"})["sandboxId"]
    node = create_sandbox(sbx, {"language": "javascript"})["sandboxId"]
    bash_code = 'echo ready\nread -r a\necho "a=$a"\nread -r b\necho "b=$b"'
    node_code = ("const rl = require('readline').createInterface({ input: process.stdin });\n"
                 "console.log('ready');\nconst got = [];\n"
                 "for await (const l of rl) { got.push(l); console.log('line ' + l); }\n"
                 "console.log('end ' + got.length);")
    try:
        async def scenario():
            async with sbx.ws_connect(client_id) as ws:
                eb = await start_sandbox_stream(sbx, bash, client_id, bash_code, interactive=True, timeout=20000)
                en = await start_sandbox_stream(sbx, node, client_id, node_code, interactive=True, timeout=20000)
                await collect_events(ws, eb, until=is_output("stdout", "ready"), timeout=15)
                await collect_events(ws, en, until=is_output("stdout", "ready"), timeout=15)
                await sbx.ahttp("POST", f"/executions/{eb}/stdin", {"data": "1\n"})
                await sbx.ahttp("POST", f"/executions/{en}/stdin", {"data": "p\n"})
                await collect_events(ws, eb, until=is_output("stdout", "a=1"), timeout=10)
                await collect_events(ws, en, until=is_output("stdout", "line p"), timeout=10)
                await sbx.ahttp("POST", f"/executions/{eb}/stdin", {"data": "2\n"})
                await sbx.ahttp("POST", f"/executions/{en}/stdin", {"data": "q\n", "eof": True})
                return (await collect_events(ws, eb, timeout=10), await collect_events(ws, en, timeout=10))
        evb, evn = run(scenario())
        assert stdout_of(_result(evb)) == "ready\na=1\nb=2\n", f"RUNNER STDIN? {summarize(evb)}"
        assert stdout_of(_result(evn)) == "ready\nline p\nline q\nend 2\n", f"RUNNER STDIN? {summarize(evn)}"
    finally:
        delete_sandbox(sbx, bash)
        delete_sandbox(sbx, node)


# =========================================================================
# Interactive: WebSocket stdin messages
# =========================================================================

def test_interactive_over_websocket(sbx, sandbox, client_id):
    code = "print('ready', flush=True)\nv = input()\nw = input()\nprint('v', v, 'w', w)"

    async def scenario():
        async with sbx.ws_connect(client_id) as ws:
            eid = await start_sandbox_stream(sbx, sandbox, client_id, code, interactive=True, timeout=20000)
            head = await collect_events(ws, eid, until=is_output("stdout", "ready"), timeout=15)
            await ws.conn.send(json.dumps({"type": "stdin", "executionId": eid, "data": "one\n"}))
            await ws.conn.send(json.dumps({"type": "stdin", "executionId": eid, "data": "two"}))
            await ws.conn.send(json.dumps({"type": "stdin", "executionId": eid, "eof": True}))
            return eid, head + await collect_events(ws, eid, timeout=10)
    eid, events = run(scenario())
    seq = check_stream_sequence(events, eid)
    assert seq["final"] == "completed" and seq["stdout"] == "ready\nv one w two\n", \
        f"RUNNER STDIN? {summarize(events)}"


def test_websocket_stdin_from_another_client_is_ignored(sbx, sandbox, client_id):
    """Only a socket of the execution's clientId may feed it."""
    code = ("import sys, select\nprint('ready', flush=True)\n"
            "line = sys.stdin.readline()\nprint('got', repr(line))")
    other = "it-stdin-other-" + uuid.uuid4().hex[:8]

    async def scenario():
        async with sbx.ws_connect(client_id) as ws, sbx.ws_connect(other) as intruder:
            eid = await start_sandbox_stream(sbx, sandbox, client_id, code, interactive=True, timeout=20000)
            await collect_events(ws, eid, until=is_output("stdout", "ready"), timeout=15)
            await intruder.conn.send(json.dumps({"type": "stdin", "executionId": eid, "data": "intruder\n"}))
            # The owner's input goes after the intruder's on the same server loop:
            # if the intruder's were accepted, it would be the line read.
            await ws.conn.send(json.dumps({"type": "stdin", "executionId": eid, "data": "owner\n"}))
            return await collect_events(ws, eid, timeout=10)
    events = run(scenario())
    assert stdout_of(_result(events)) == "ready\ngot 'owner\\n'\n", f"RUNNER STDIN? {summarize(events)}"


# =========================================================================
# Errors
# =========================================================================

def test_stdin_errors(sbx, sandbox, client_id):
    assert_api_error(sbx.http("POST", f"/executions/{uuid.uuid4()}/stdin", {"data": "x"}), 404,
                     "execution_not_found", "unknown execution")
    code = ("import os, time\nprint('ready', flush=True)\n"
            "while not os.path.exists('/tmp/stop'):\n    time.sleep(0.02)\nprint('stopped')")

    async def scenario():
        async with sbx.ws_connect(client_id) as ws:
            eid = await start_sandbox_stream(sbx, sandbox, client_id, code, timeout=20000)
            await collect_events(ws, eid, until=is_output("stdout", "ready"), timeout=15)
            not_interactive = await sbx.ahttp("POST", f"/executions/{eid}/stdin", {"data": "x\n"})
            bad = [await sbx.ahttp("POST", f"/executions/{eid}/stdin", body)
                   for body in ({}, {"data": 5}, {"eof": "yes"}, b"nope")]
            await sbx.ahttp("PUT", f"/sandboxes/{sandbox}/files?path=/tmp/stop", b"")
            return eid, not_interactive, bad, await collect_events(ws, eid, timeout=10)
    eid, not_interactive, bad, events = run(scenario())
    assert_api_error(not_interactive, 409, None, "stdin to a non-interactive execution")
    for resp in bad:
        assert resp.status == 400, resp
    assert stdout_of(_result(events)) == "ready\nstopped\n"


def test_interactive_cell_can_be_interrupted_while_reading(sbx, sandbox, client_id):
    """A cell blocked in input() on an interactive stdin ends on interrupt, state kept."""
    code = "before_read = 1\nprint('ready', flush=True)\nx = input()"

    async def scenario():
        async with sbx.ws_connect(client_id) as ws:
            eid = await start_sandbox_stream(sbx, sandbox, client_id, code, interactive=True, timeout=20000)
            await collect_events(ws, eid, until=is_output("stdout", "ready"), timeout=15)
            resp = await sbx.ahttp("POST", f"/sandboxes/{sandbox}/interrupt", {})
            return resp, await collect_events(ws, eid, timeout=10)
    resp, events = run(scenario())
    assert resp.status == 200 and resp.body == {"interrupted": 1}, resp
    r = _result(events)
    assert r["status"] == "error" and r["error"]["name"] == "KeyboardInterrupt", f"RUNNER STDIN? {r!r}"
    assert ok_text(sbx, sandbox, "before_read") == "1"


def test_other_key_cannot_feed_stdin(service_factory, client_id):
    svc = service_factory({"API_KEYS": "key-a,key-b", "WARM_POOL_SIZE": "0", "KEY_RATE_LIMIT_RPS": "0"})
    a = {"Authorization": "Bearer key-a"}
    b = {"Authorization": "Bearer key-b"}
    resp = svc.http("POST", "/sandboxes", {}, headers=a)
    assert resp.status == 201, resp
    sid = resp.body["sandboxId"]
    code = ("import os, time\nprint('ready', flush=True)\n"
            "while not os.path.exists('/tmp/stop'):\n    time.sleep(0.02)\nprint('stopped')")
    try:
        resp = svc.http("POST", f"/sandboxes/{sid}/execute-stream",
                        {"code": code, "clientId": client_id, "interactive": True, "timeout": 20000}, headers=a)
        assert resp.status == 200, resp
        eid = resp.body["executionId"]
        # Wait (deadline) for the cell to run: the execution accepts key A's stdin.
        from helpers import wait_until
        wait_until(lambda: svc.http("GET", f"/sandboxes/{sid}/contexts", headers=a).body["contexts"][0]["running"],
                   15, message="the cell never ran")
        assert_api_error(svc.http("POST", f"/executions/{eid}/stdin", {"data": "x"}, headers=b), 404,
                         "execution_not_found", "key B feeding key A's execution")
        assert svc.http("POST", f"/executions/{eid}/stdin", {"data": "x"}, headers=a).status == 202
        assert svc.http("PUT", f"/sandboxes/{sid}/files?path=/tmp/stop", b"", headers=a).status == 200
    finally:
        svc.http("DELETE", f"/sandboxes/{sid}", headers=a)


# =========================================================================
# One-shot /execute and /execute-stream take stdin too (README: stdin)
# =========================================================================

def test_one_shot_execute_with_stdin(sbx):
    r = sbx.execute("import sys\nprint(input()[::-1], sys.stdin.read().split())", "python")["result"]
    assert r["status"] == "error" and r["error"]["name"] == "EOFError", f"no stdin: EOF at once: {r!r}"
    resp = sbx.http("POST", "/execute", {"code": "import sys\nprint(input()[::-1], sys.stdin.read().split())",
                                         "stdin": "olleh\nw1 w2\n"})
    assert resp.status == 200, resp
    r = resp.body["result"]
    assert r["status"] == "ok" and stdout_of(r) == "hello ['w1', 'w2']\n", f"RUNNER STDIN? {r!r}"


def test_one_shot_interactive_stream(sbx, client_id):
    code = "print('ready', flush=True)\nprint('echo', input())"

    async def scenario():
        async with sbx.ws_connect(client_id) as ws:
            resp = await sbx.ahttp("POST", "/execute-stream", {"code": code, "clientId": client_id,
                                                               "interactive": True, "timeout": 20000})
            assert resp.status == 200, resp
            eid = resp.body["executionId"]
            head = await collect_events(ws, eid, until=is_output("stdout", "ready"), timeout=15)
            r = await sbx.ahttp("POST", f"/executions/{eid}/stdin", {"data": "ping\n"})
            return eid, r, head + await collect_events(ws, eid, timeout=10)
    eid, r, events = run(scenario())
    assert r.status == 202, r
    seq = check_stream_sequence(events, eid)
    assert seq["final"] == "completed" and seq["stdout"] == "ready\necho ping\n", summarize(events)
