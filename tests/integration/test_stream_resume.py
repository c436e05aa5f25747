"""WebSocket streams that lose nothing: eventIds, resuming with lastEventId,
retention and the replay_incomplete notice."""
import asyncio
import urllib.parse

import pytest
import websockets
import websockets.exceptions

from helpers import (WsClient, check_stream_sequence, collect_events, run, summarize, wait_until)

pytestmark = pytest.mark.websocket

TICKS = "import time\nfor i in range(12):\n    print('tick', i, flush=True)\n    time.sleep(0.05)"


async def connect(service, client_id, last_event_id=None):
    url = f"{service.ws_url}/?clientId={urllib.parse.quote(client_id, safe='')}"
    if last_event_id is not None:
        url += f"&lastEventId={last_event_id}"
    conn = await websockets.connect(url, max_size=None, open_timeout=10, close_timeout=5)
    return WsClient(conn, client_id)


def ids(events):
    return [ev["eventId"] for ev in events]


def test_every_message_has_a_consecutive_event_id(service, client_id):
    async def scenario():
        async with service.ws_connect(client_id) as ws:
            first = await service.start_stream(client_id, "print('a')", "python")
            second = await service.start_stream(client_id, "print('b')", "python")
            return (first, await collect_events(ws, first), second,
                    await collect_events(ws, second), ws.received)
    first, ev1, second, ev2, received = run(scenario())
    check_stream_sequence(ev1, first)
    check_stream_sequence(ev2, second)
    # Per clientId, across executions, in arrival order: 1, 2, 3…
    assert ids(received) == list(range(1, len(received) + 1)), summarize(received)


def test_reconnect_with_last_event_id_gets_exactly_the_rest(service, client_id):
    """A socket reads 4 messages mid-run and leaves; reconnecting with the eventId of
    the 4th gets every later message once, as a socket that never left saw them."""
    async def scenario():
        async with service.ws_connect(client_id) as anchor:  # keeps the execution alive
            eid = await service.start_stream(client_id, TICKS, "python")
            leaver = await connect(service, client_id)
            head = [await leaver.recv_json(20) for _ in range(4)]
            await leaver.close()
            resumed = await connect(service, client_id, head[-1]["eventId"])
            try:
                rest = await collect_events(resumed, eid, timeout=30)
            finally:
                await resumed.close()
            return eid, head, rest, await collect_events(anchor, eid, timeout=30)
    eid, head, rest, full = run(scenario())
    check_stream_sequence(full, eid)
    assert head + rest == full, \
        f"resumed stream differs:\n head+rest {summarize(head + rest)}\n full      {summarize(full)}"
    assert ids(rest) == list(range(head[-1]["eventId"] + 1, full[-1]["eventId"] + 1))


def test_resume_after_the_end_gets_the_tail_then_live_messages(service, client_id):
    async def scenario():
        async with service.ws_connect(client_id) as ws:
            eid = await service.start_stream(client_id, "print('one')\nprint('two')", "python")
            full = await collect_events(ws, eid)
        resumed = await connect(service, client_id, full[1]["eventId"])
        try:
            rest = await collect_events(resumed, eid, timeout=10)
            later = await service.start_stream(client_id, "print('later')", "python")
            live = await collect_events(resumed, later, timeout=30)
        finally:
            await resumed.close()
        return eid, full, rest, later, live
    eid, full, rest, later, live = run(scenario())
    assert rest == full[2:], f"{summarize(rest)} != {summarize(full[2:])}"
    check_stream_sequence(live, later)
    assert live[0]["eventId"] == full[-1]["eventId"] + 1


def stream_log_bytes(svc) -> float:
    resp = svc.http("GET", "/metrics", timeout=10)
    for line in resp.raw.decode().splitlines():
        if line.startswith("codeexec_stream_log_bytes "):
            return float(line.split()[1])
    raise AssertionError("codeexec_stream_log_bytes is missing from /metrics")


def test_a_cursor_beyond_retention_gets_replay_incomplete(service_factory, client_id):
    svc = service_factory({"STREAM_RETENTION_BYTES": "0"})

    async def scenario():
        async with svc.ws_connect(client_id) as ws:
            eid = await svc.start_stream(client_id, "print('gone')", "python")
            full = await collect_events(ws, eid)
            # Nothing is kept once every socket has reported it sent (the socket tells
            # the log within ~100 ms): then a cursor of 1 lost the rest.
            await asyncio.to_thread(wait_until, lambda: stream_log_bytes(svc) == 0, 10, 0.02,
                                    "the stream log was never trimmed to STREAM_RETENTION_BYTES=0")
            late = await connect(svc, client_id, 1)
            try:
                notice = await late.recv_json(10)
                with pytest.raises(asyncio.TimeoutError):
                    await late.recv_json(0.5)  # nothing else is replayed
            finally:
                await late.close()
            future = await connect(svc, client_id, 10**12)
            try:
                future_notice = await future.recv_json(10)
            finally:
                await future.close()
            return eid, full, notice, future_notice
    eid, full, notice, future_notice = run(scenario())
    assert notice["type"] == "status" and notice["status"] == "replay_incomplete", notice
    assert notice["executionId"] is None and "eventId" not in notice, notice
    assert notice["lastEventId"] == 1 and notice["firstEventId"] == full[-1]["eventId"] + 1, notice
    assert notice["executions"] == [eid], notice
    assert "STREAM_RETENTION" in notice["message"], notice
    assert future_notice["status"] == "replay_incomplete", future_notice
    assert "newer" in future_notice["message"], future_notice


@pytest.mark.parametrize("bad", ["-1", "abc", "1.5", "", "99999999999999999999999"])
def test_a_malformed_last_event_id_is_refused(service, client_id, bad):
    async def scenario():
        url = f"{service.ws_url}/?clientId={client_id}&lastEventId={urllib.parse.quote(bad)}"
        with pytest.raises(websockets.exceptions.InvalidStatusCode) as refused:
            await websockets.connect(url, open_timeout=10)
        return refused.value.status_code
    assert run(scenario()) == 400


def test_a_cursor_of_another_client_id_gets_nothing_of_it(service, client_id):
    """eventIds are per clientId: resuming on another clientId never reads this one's stream."""
    async def scenario():
        async with service.ws_connect(client_id) as ws:
            eid = await service.start_stream(client_id, "print('mine')", "python")
            await collect_events(ws, eid)
        other = await connect(service, client_id + "-other", 0)
        try:
            sentinel = await service.start_stream(client_id + "-other", "print('x')", "python")
            events = await collect_events(other, sentinel, timeout=30)
        finally:
            await other.close()
        return eid, events, other.received
    eid, events, received = run(scenario())
    assert not [ev for ev in received if ev.get("executionId") == eid]
    assert events[0]["eventId"] == 1
