"""POST /execute-stream + WebSocket events: order, content, replay, fan-out."""

import asyncio
import time

import pytest
import websockets
import websockets.exceptions

from helpers import (check_stream_sequence, collect_events, is_output, main_result, merged_output,
                     run, summarize)

pytestmark = pytest.mark.websocket


async def stream_once(service, client_id, code, language=None, timeout_ms=None, collect_timeout=30):
    """Connect, POST, collect until the final status. Returns (executionId, events)."""
    async with service.ws_connect(client_id) as ws:
        eid = await service.start_stream(client_id, code, language, timeout_ms)
        events = await collect_events(ws, eid, timeout=collect_timeout)
    return eid, events


# ---------------------------------------------------------------- basic sequences

@pytest.mark.parametrize("language,code,stdout,main_text", [
    ("python", "print('hi from python')\n1+1", "hi from python\n", "2"),
    ("javascript", "console.log('hi from js');\n1+1", "hi from js\n", "2"),
    ("bash", "echo 'hi from bash'", "hi from bash\n", None),
])
def test_websocket_stream_sequence(service, client_id, language, code, stdout, main_text):
    eid, events = run(stream_once(service, client_id, code, language))
    seq = check_stream_sequence(events, eid)
    assert seq["final"] == "completed", summarize(events)
    assert seq["stdout"] == stdout, seq
    assert seq["result"]["status"] == "ok", seq["result"]
    main = main_result(seq["result"])
    if main_text is None:
        assert main is None, seq["result"]
    else:
        assert main is not None and main.get("text") == main_text, seq["result"]


def test_websocket_python_stdout_stderr_interleaving(service, client_id):
    code = ("import sys\n"
            "print('out1')\n"
            "print('err1', file=sys.stderr)\n"
            "print('out2')\n"
            "for i in range(3):\n"
            "    print(f'o{i}')\n"
            "    print(f'e{i}', file=sys.stderr)\n")
    eid, events = run(stream_once(service, client_id, code, "python"))
    seq = check_stream_sequence(events, eid)
    assert merged_output(events) == [
        ("stdout", "out1\n"), ("stderr", "err1\n"), ("stdout", "out2\no0\n"),
        ("stderr", "e0\n"), ("stdout", "o1\n"), ("stderr", "e1\n"), ("stdout", "o2\n"), ("stderr", "e2\n"),
    ], f"stdout/stderr events not in write order: {summarize(events)}"
    assert seq["result"]["logs"]["stdout"] and "".join(seq["result"]["logs"]["stdout"]) == \
        "out1\nout2\no0\no1\no2\n", seq["result"]["logs"]
    assert "".join(seq["result"]["logs"]["stderr"]) == "err1\ne0\ne1\ne2\n", seq["result"]["logs"]


def test_websocket_javascript_stdout_stderr_interleaving(service, client_id):
    code = "console.log('a'); console.error('b'); console.log('c'); console.error('d');"
    eid, events = run(stream_once(service, client_id, code, "javascript"))
    check_stream_sequence(events, eid)
    assert merged_output(events) == [("stdout", "a\n"), ("stderr", "b\n"), ("stdout", "c\n"),
                                     ("stderr", "d\n")], summarize(events)


def test_websocket_output_is_streamed_live(service, client_id):
    """The first line arrives while the code is still running, not at the end."""
    code = "import time\nprint('first', flush=True)\ntime.sleep(1.0)\nprint('second')"

    async def scenario():
        async with service.ws_connect(client_id) as ws:
            eid = await service.start_stream(client_id, code, "python")
            await collect_events(ws, eid, until=is_output("stdout", "first"), timeout=20)
            t_first = time.monotonic()
            rest = await collect_events(ws, eid, timeout=20)
            return eid, t_first, time.monotonic(), rest
    eid, t_first, t_end, rest = run(scenario())
    assert t_end - t_first >= 0.7, \
        f"'first' arrived only {t_end - t_first:.2f}s before the end: output is not streamed live"
    assert any(ev["type"] == "stdout" and "second" in ev["data"] for ev in rest), summarize(rest)


# ---------------------------------------------------------------- errors in the stream

def test_websocket_python_error_event(service, client_id):
    eid, events = run(stream_once(service, client_id, "print('before')\n1/0", "python"))
    seq = check_stream_sequence(events, eid)
    assert seq["final"] == "failed", summarize(events)
    assert seq["error"]["name"] == "ZeroDivisionError", seq["error"]
    assert seq["stdout"] == "before\n", seq


def test_websocket_javascript_error_event(service, client_id):
    eid, events = run(stream_once(service, client_id, "notDefinedAnywhere()", "js"))
    seq = check_stream_sequence(events, eid)
    assert seq["final"] == "failed" and seq["error"]["name"] == "ReferenceError", seq["error"]


def test_websocket_bash_error_event(service, client_id):
    eid, events = run(stream_once(service, client_id, "echo partial\nexit 3", "bash"))
    seq = check_stream_sequence(events, eid)
    assert seq["final"] == "failed", summarize(events)
    assert seq["stdout"] == "partial\n", seq


def test_websocket_timeout(service, client_id):
    code = "import time\nprint('before', flush=True)\ntime.sleep(60)"
    t0 = time.monotonic()
    eid, events = run(stream_once(service, client_id, code, "python", timeout_ms=1000, collect_timeout=20))
    elapsed = time.monotonic() - t0
    seq = check_stream_sequence(events, eid)
    assert seq["final"] == "failed", summarize(events)
    assert seq["result"]["status"] == "timeout", seq["result"]
    assert seq["error"]["name"] == "TimeoutError", seq["error"]
    assert seq["stdout"] == "before\n", seq
    assert elapsed < 10, f"a 1000 ms timeout took {elapsed:.1f}s to be reported"


# ---------------------------------------------------------------- replay

def test_websocket_late_connect_gets_full_replay(service, client_id):
    """A second socket connecting after the first saw the final status gets
    the same full sequence, in order."""
    code = "import sys\nprint('one')\nprint('two', file=sys.stderr)\nprint('three')\n1+1"

    async def scenario():
        async with service.ws_connect(client_id) as first:
            eid = await service.start_stream(client_id, code, "python")
            live = await collect_events(first, eid, timeout=30)
            async with service.ws_connect(client_id) as late:
                replay = await collect_events(late, eid, timeout=10)
            return eid, live, replay
    eid, live, replay = run(scenario())
    check_stream_sequence(live, eid)
    assert replay == live, f"replay differs:\n live   {summarize(live)}\n replay {summarize(replay)}"


def test_websocket_connect_after_post_gets_all_events(service, client_id):
    """No socket at POST time: a socket connecting right after gets everything."""
    async def scenario():
        eid = await service.start_stream(client_id, "print('early bird')\n'done'", "python")
        async with service.ws_connect(client_id) as ws:
            return eid, await collect_events(ws, eid, timeout=30)
    eid, events = run(scenario())
    seq = check_stream_sequence(events, eid)
    assert seq["stdout"] == "early bird\n", seq
    assert main_result(seq["result"]).get("text") == "done", seq["result"]


def test_websocket_replay_then_live_continuation(service, client_id):
    """Connecting mid-run: replayed events first, then live ones, no gap or duplicate."""
    code = "import time\nfor i in range(6):\n    print('tick', i, flush=True)\n    time.sleep(0.15)"

    async def scenario():
        async with service.ws_connect(client_id) as first:
            eid = await service.start_stream(client_id, code, "python")
            events_first = await collect_events(first, eid, until=is_output("stdout", "tick 2"), timeout=20)
            async with service.ws_connect(client_id) as second:
                events_second = await collect_events(second, eid, timeout=20)
            events_first += await collect_events(first, eid, timeout=20)
            return eid, events_first, events_second
    eid, events_first, events_second = run(scenario())
    seq = check_stream_sequence(events_second, eid)
    assert seq["stdout"] == "".join(f"tick {i}\n" for i in range(6)), seq["stdout"]
    assert events_second == events_first, \
        f"mid-run joiner differs:\n first  {summarize(events_first)}\n second {summarize(events_second)}"


# ---------------------------------------------------------------- fan-out

def test_websocket_two_sockets_same_client_get_identical_sequences(service, client_id):
    code = "import sys\nfor i in range(5):\n    print('line', i)\n    print('warn', i, file=sys.stderr)\n7*6"

    async def scenario():
        async with service.ws_connect(client_id) as a, service.ws_connect(client_id) as b:
            eid = await service.start_stream(client_id, code, "python")
            ev_a, ev_b = await asyncio.gather(collect_events(a, eid, timeout=30),
                                              collect_events(b, eid, timeout=30))
            return eid, ev_a, ev_b
    eid, ev_a, ev_b = run(scenario())
    seq = check_stream_sequence(ev_a, eid)
    assert ev_a == ev_b, f"sockets differ:\n a {summarize(ev_a)}\n b {summarize(ev_b)}"
    assert main_result(seq["result"]).get("text") == "42", seq["result"]


def test_websocket_other_client_receives_nothing(service, client_id):
    """Events go only to the execution's clientId (checked with a sentinel
    execution on the other client: nothing of the first may arrive before it)."""
    other = client_id + "-other"

    async def scenario():
        async with service.ws_connect(client_id) as mine, service.ws_connect(other) as theirs:
            eid = await service.start_stream(client_id, "print('private')", "python")
            await collect_events(mine, eid, timeout=30)
            sentinel = await service.start_stream(other, "print('sentinel')", "python")
            await collect_events(theirs, sentinel, timeout=30)
            return eid, theirs.received
    eid, received_by_other = run(scenario())
    leaked = [ev for ev in received_by_other if ev.get("executionId") == eid]
    assert not leaked, f"another clientId received {len(leaked)} events of {eid}: {summarize(leaked)}"


def test_websocket_concurrent_executions_on_one_client(service, client_id):
    async def scenario():
        async with service.ws_connect(client_id) as ws:
            ids = await asyncio.gather(*[
                service.start_stream(client_id, f"import time\ntime.sleep(0.2)\nprint('exec {i}')", "python")
                for i in range(3)])
            seqs = []
            for eid in ids:  # the client stashes other executions' events meanwhile
                seqs.append(await collect_events(ws, eid, timeout=30))
            return ids, seqs
    ids, seqs = run(scenario())
    assert len(set(ids)) == 3, ids
    for i, (eid, events) in enumerate(zip(ids, seqs)):
        seq = check_stream_sequence(events, eid)
        assert seq["stdout"] == f"exec {i}\n", (i, seq)


def test_websocket_large_output_complete(service, client_id):
    eid, events = run(stream_once(service, client_id, "for i in range(100000):\n    print(i)", "python",
                                  timeout_ms=60000, collect_timeout=60), timeout=80)
    seq = check_stream_sequence(events, eid)
    expected = "".join(f"{i}\n" for i in range(100000))
    assert seq["stdout"] == expected, \
        f"stdout via events: {len(seq['stdout'])} bytes, expected {len(expected)}"


def test_websocket_unicode_events(service, client_id):
    eid, events = run(stream_once(service, client_id, "print('héllo ✓')", "python"))
    seq = check_stream_sequence(events, eid)
    assert seq["stdout"] == "héllo ✓\n", seq


# ---------------------------------------------------------------- refused upgrades

@pytest.mark.parametrize("query", ["", "?clientId=", "?other=1"])
def test_websocket_without_client_id_is_refused(service, query):
    async def scenario():
        try:
            conn = await websockets.connect(service.ws_url + "/" + query, open_timeout=10)
        except websockets.exceptions.InvalidStatusCode as e:
            return e.status_code
        await conn.close()
        return "accepted"
    status = run(scenario())
    assert status == 400, f"upgrade without a clientId: expected HTTP 400, got {status}"


def test_websocket_refusal_has_json_error_body(service):
    resp = service.http("GET", "/", headers={
        "Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}, timeout=10)
    assert resp.status == 400, resp
    body = resp.body
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), f"not a JSON error body: {resp!r}"
    assert isinstance(body["error"].get("code"), str) and body["error"]["code"], body
    assert isinstance(body["error"].get("message"), str) and body["error"]["message"], body
