"""Sandbox lifecycle: timeouts kill the whole tree, a vanished client cancels
its execution, the replay window expires, SIGTERM shuts down cleanly."""

import asyncio
import signal
import time

import pytest

from helpers import (assert_nothing_left, check_stream_sequence, collect_events, is_output,
                     run, sandbox_processes, stdout_of, summarize, wait_until)

pytestmark = pytest.mark.lifecycle

LONG_PY = "import time\nprint('x', flush=True)\ntime.sleep(60)"

FORKING_PY = """\
import os, time
pid = os.fork()
if pid == 0:
    os.setsid()
    time.sleep(60)
    os._exit(0)
print('before', flush=True)
time.sleep(60)
"""


# ---------------------------------------------------------------- timeouts

@pytest.mark.parametrize("language,code", [
    ("python", "import time\nprint('before', flush=True)\ntime.sleep(60)\nprint('after')"),
    ("javascript", "console.log('before');\nconst end = Date.now() + 60000;\nwhile (Date.now() < end) {}\n"
                   "console.log('after');"),
    ("bash", "echo before\nsleep 60\necho after"),
])
def test_timeout_is_in_band_and_kills_sandbox(service, language, code):
    t0 = time.monotonic()
    body = service.execute(code, language, timeout_ms=1000, http_timeout=30)
    wall = time.monotonic() - t0
    r = body["result"]
    assert r["error"] is not None and r["error"]["name"] == "TimeoutError", f"expected TimeoutError: {r!r}"
    assert r["status"] == "timeout", r
    assert stdout_of(r) == "before\n", f"output before the deadline must be kept: {r['logs']!r}"
    assert wall < 10, f"a 1000 ms timeout took {wall:.1f}s of wall time"
    assert 900 <= body["duration"] < 10000, f"duration {body['duration']} ms for a 1000 ms timeout"
    assert_nothing_left(service, timeout=10)


def test_timeout_kills_forked_descendants(service, client_id):
    """A child that left the runner's session must die with the sandbox too."""
    async def scenario():
        async with service.ws_connect(client_id) as ws:
            eid = await service.start_stream(client_id, FORKING_PY, "python", timeout_ms=1500)
            first = await collect_events(ws, eid, until=is_output("stdout", "before"), timeout=20)
            during = sandbox_processes()
            rest = await collect_events(ws, eid, timeout=20)
            return eid, first + rest, during
    eid, events, during = run(scenario())
    assert len(during) >= 2, \
        f"while running, expected the runner and its forked child with host uids in the sandbox range: {during}"
    seq = check_stream_sequence(events, eid)
    assert seq["result"]["status"] == "timeout", seq["result"]
    assert_nothing_left(service, timeout=10)


# ---------------------------------------------------------------- client disconnect

@pytest.mark.websocket
def test_websocket_disconnect_cancels_execution(service, client_id):
    async def scenario():
        async with service.ws_connect(client_id) as ws:
            eid = await service.start_stream(client_id, LONG_PY, "python", timeout_ms=90000)
            await collect_events(ws, eid, until=is_output("stdout", "x"), timeout=20)
            live = await asyncio.to_thread(service.live_sandboxes)
            procs = sandbox_processes()
        return live, procs, time.monotonic()
    live, procs, t_closed = run(scenario())
    assert live >= 1, f"/health sandboxes.live must count the running sandbox, got {live}"
    assert procs, "while running, expected processes with host uids in [200000, 201024)"
    assert_nothing_left(service, timeout=10)
    took = time.monotonic() - t_closed
    assert took < 10, f"sandbox destroyed only {took:.1f}s after the last socket closed"
    assert stdout_of(service.execute("print('after cancel')")["result"]) == "after cancel\n"


@pytest.mark.websocket
def test_websocket_abrupt_disconnect_cancels_execution(service, client_id):
    """The client vanishes without a close frame (TCP connection dropped)."""
    async def scenario():
        async with service.ws_connect(client_id) as ws:
            eid = await service.start_stream(client_id, LONG_PY, "python", timeout_ms=90000)
            await collect_events(ws, eid, until=is_output("stdout", "x"), timeout=20)
            procs = sandbox_processes()
            ws.conn.transport.abort()  # RST/FIN without a WebSocket close handshake
            return procs, time.monotonic()
    procs, t_dropped = run(scenario())
    assert procs, "while running, expected processes with host uids in [200000, 201024)"
    assert_nothing_left(service, timeout=10)
    took = time.monotonic() - t_dropped
    assert took < 10, f"sandbox destroyed only {took:.1f}s after the connection dropped"


@pytest.mark.websocket
def test_websocket_closing_one_of_two_sockets_does_not_cancel(service, client_id):
    code = "import time\nprint('x', flush=True)\ntime.sleep(1.5)\nprint('y')"

    async def scenario():
        async with service.ws_connect(client_id) as keep:
            async with service.ws_connect(client_id) as leave:
                eid = await service.start_stream(client_id, code, "python", timeout_ms=30000)
                await collect_events(leave, eid, until=is_output("stdout", "x"), timeout=20)
            return eid, await collect_events(keep, eid, timeout=20)
    eid, events = run(scenario())
    seq = check_stream_sequence(events, eid)
    assert seq["final"] == "completed" and seq["stdout"] == "x\ny\n", \
        f"the execution must go on while another socket of the client is connected: {summarize(events)}"


# ---------------------------------------------------------------- replay window

@pytest.mark.websocket
def test_replay_window_expires(service_factory, client_id):
    window_ms = 300
    svc = service_factory({"STREAM_REPLAY_WINDOW_MS": str(window_ms)})

    async def scenario():
        async with svc.ws_connect(client_id) as ws:
            t_post = time.monotonic()
            old = await svc.start_stream(client_id, "print('old')", "python")
            events = await collect_events(ws, old, timeout=20)
        # Waiting here is the behaviour under test (a time window), not synchronisation.
        await asyncio.sleep(max(0.0, t_post + 3 * window_ms / 1000 + 0.5 - time.monotonic()))
        async with svc.ws_connect(client_id) as late:
            sentinel = await svc.start_stream(client_id, "print('new')", "python")
            new_events = await collect_events(late, sentinel, timeout=20)
            return old, events, sentinel, new_events, late.received
    old, events, sentinel, new_events, received = run(scenario())
    check_stream_sequence(events, old)
    check_stream_sequence(new_events, sentinel)
    stale = [ev for ev in received if ev.get("executionId") == old]
    assert not stale, f"events replayed {window_ms} ms-window later than allowed: {summarize(stale)}"


# ---------------------------------------------------------------- shutdown

def test_sigterm_during_executions_exits_0_and_cleans_up(service_factory, client_id):
    svc = service_factory()

    async def scenario():
        async with svc.ws_connect(client_id) as ws:
            eid = await svc.start_stream(client_id, LONG_PY, "python", timeout_ms=90000)
            await collect_events(ws, eid, until=is_output("stdout", "x"), timeout=20)
            blocking = asyncio.create_task(
                svc.ahttp("POST", "/execute", {"code": LONG_PY, "timeout": 90000}, timeout=45))
            await asyncio.to_thread(wait_until, lambda: svc.live_sandboxes() >= 2, 20, 0.05,
                                    "the /execute sandbox never became live")
            assert sandbox_processes(), "expected sandbox processes before SIGTERM"
            t_term = time.monotonic()
            svc.signal(signal.SIGTERM)
            code = await asyncio.to_thread(svc.wait_exit, 30)
            exit_time = time.monotonic() - t_term
            try:
                await asyncio.wait_for(ws.conn.wait_closed(), 10)
            except asyncio.TimeoutError:
                raise AssertionError("the WebSocket stayed open after the service exited") from None
            try:
                outcome = await asyncio.wait_for(blocking, 15)
            except AssertionError as e:  # transport error: connection closed by the exiting server
                outcome = e
            except asyncio.TimeoutError:
                raise AssertionError("the in-flight /execute never returned after SIGTERM") from None
            return code, exit_time, outcome
    code, exit_time, outcome = run(scenario(), timeout=90)
    print(f"in-flight /execute after SIGTERM: {outcome!r}; exit after {exit_time:.2f}s")
    assert code == 0, f"exit code after SIGTERM: {code}\n{svc.log_tail(40)}"
    assert exit_time < 30, f"shutdown took {exit_time:.1f}s"
    assert_nothing_left(None, timeout=10)


def test_sigterm_idle_exits_0(service_factory):
    svc = service_factory()
    assert svc.live_sandboxes() == 0
    assert svc.stop(timeout=30) == 0, svc.log_tail(40)
