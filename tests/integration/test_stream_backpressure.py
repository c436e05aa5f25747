"""Back-pressure instead of disconnects: a slow WebSocket reader holds the execution's
output (the kernel blocks on its pipe) and still receives everything, in order; only a
socket that reads nothing for WS_STALL_TIMEOUT_MS is closed; service memory stays
bounded under floods to slow readers."""
import asyncio
import socket
import threading
import time
import urllib.parse

import pytest
import websockets

from helpers import (MIB, SANITIZED, RawWebSocket, WsClient, check_stream_sequence, close_code,
                     collect_events, process_rss_bytes, run, summarize, wait_until)

pytestmark = pytest.mark.websocket

KIB = 1024


def flood(lines: int) -> str:
    """`lines` numbered lines of ~1 KiB, written as fast as Python can."""
    return (f"import sys\nfor i in range({lines}):\n"
            "    sys.stdout.write(f'{i:08d}' + 'x' * 1000 + '\\n')\n")


def expected_flood(lines: int) -> str:
    return "".join(f"{i:08d}" + "x" * 1000 + "\n" for i in range(lines))


async def slow_reader(service, client_id, rate: float, on_open=None, timeout=120):
    """Reads the clientId's stream at about `rate` bytes/s until a final status; returns
    every message. The library keeps at most one message queued, so the socket's
    receive window, and then the service's queue, fill while it sleeps."""
    url = f"{service.ws_url}/?clientId={urllib.parse.quote(client_id, safe='')}"
    # A fixed receive buffer: autotuned, loopback's can take many MiB (tcp_rmem), and the
    # kernel would hold the flood instead of the service holding the execution.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * KIB)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", service.port))
    conn = await websockets.connect(url, sock=sock, max_size=None, max_queue=1,
                                    read_limit=16 * KIB, ping_interval=None, open_timeout=10,
                                    close_timeout=5)
    ws = WsClient(conn, client_id)
    try:
        if on_open:
            await on_open()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            raw = await asyncio.wait_for(conn.recv(), max(0.1, deadline - loop.time()))
            ev = __import__("json").loads(raw)
            ws.received.append(ev)
            if ev.get("type") == "status" and ev.get("status") in ("completed", "failed"):
                return ws.received
            # Pacing is the behaviour under test: a reader slower than the flood.
            await asyncio.sleep(len(raw) / rate)
    finally:
        await conn.close()


def stdout_of_events(events):
    return "".join(ev["data"] for ev in events if ev["type"] == "stdout")


def test_a_slow_reader_gets_every_byte_in_order(service_factory, client_id):
    """2 MiB of output read at 256 KiB/s: without back-pressure the service would queue
    it (or close the socket); with it, the kernel waits and nothing is lost."""
    svc = service_factory({"WS_SEND_BUFFER_BYTES": str(256 * KIB)})
    lines = 2048
    eid = {}

    async def start():
        eid["id"] = await svc.start_stream(client_id, flood(lines), "python", timeout_ms=90000)

    events = run(slow_reader(svc, client_id, 256 * KIB, start, timeout=100), timeout=110)
    events = [ev for ev in events if ev.get("executionId") == eid["id"]]
    seq = check_stream_sequence(events, eid["id"])
    assert seq["final"] == "completed", summarize(events)
    assert seq["stdout"] == expected_flood(lines)
    assert [ev["eventId"] for ev in events] == list(range(events[0]["eventId"], events[-1]["eventId"] + 1))
    # The output was held, not buffered: the log says so.
    assert "pausing executions" in svc.log_tail(100000)


def close_of(ws: RawWebSocket, timeout: float) -> tuple[int, bytes]:
    """Reads everything up to the close frame: (code, reason)."""
    *_, (opcode, payload) = ws.frames(timeout)
    assert opcode == 0x8, f"the connection ended without a close frame ({opcode})"
    return close_code(payload), payload[2:]


def test_a_stalled_socket_is_closed_and_another_loses_nothing(service_factory, client_id):
    stall_ms = 1500
    svc = service_factory({"WS_SEND_BUFFER_BYTES": str(64 * KIB), "WS_STALL_TIMEOUT_MS": str(stall_ms),
                           "WS_PING_INTERVAL_MS": "0"})
    # More than the kernel's socket buffers take (a few MiB on loopback), so that the
    # stalled socket does stop making progress; under the 16 MiB output cap.
    lines = 15000
    # A socket that never reads after the handshake (a tiny receive buffer).
    stalled = RawWebSocket(svc.port, f"/?clientId={client_id}", rcvbuf=4096)
    try:
        async def scenario():
            async with svc.ws_connect(client_id) as reader:
                t0 = time.monotonic()
                eid = await svc.start_stream(client_id, flood(lines), "python", timeout_ms=60000)

                async def stalled_side():
                    # Read again only once the service gave up on it: then its close frame
                    # (queued behind what it did not read) arrives.
                    await asyncio.to_thread(wait_until, lambda: "too slow" in svc.log_tail(200), 30,
                                            0.02, "the stalled socket was never closed")
                    return await asyncio.to_thread(close_of, stalled, 10)
                events, closed = await asyncio.gather(collect_events(reader, eid, timeout=60),
                                                      stalled_side())
                return eid, events, closed, time.monotonic() - t0
        eid, events, (code, reason), elapsed = run(scenario(), timeout=90)
    finally:
        stalled.close()
    seq = check_stream_sequence(events, eid)
    assert seq["final"] == "completed", summarize(events)
    assert seq["stdout"] == expected_flood(lines)
    assert code == 1008, (code, reason)
    assert b"too slow" in reason and b"lastEventId" in reason, reason
    assert elapsed >= stall_ms / 1000, "the stream ended before the stall time: nothing was held"


@pytest.mark.skipif(SANITIZED, reason="measures the service's memory")
@pytest.mark.timeout(180)  # twenty sandboxes start at once; the scenario's own bound is 150 s
def test_memory_stays_bounded_with_twenty_floods_to_twenty_slow_readers(service_factory, client_id):
    """Twenty endless floods, each read at 256 KiB/s for its 6 s timeout: the output the
    kernels may write is what the readers take, so the service holds little of it. What
    it does hold is a few copies of each execution's output (its result repeats the
    output, in the execution, the log and the socket's queue); the execution records,
    bounded on their own (EXECUTION_RECORDS_MAX_BYTES), are kept small here so that the
    figure is the streams'."""
    svc = service_factory({"STREAM_RETENTION_BYTES": str(1 * MIB), "WS_SEND_BUFFER_BYTES": str(256 * KIB),
                           "EXECUTION_RECORDS_MAX_BYTES": str(4 * MIB)})
    baseline = process_rss_bytes(svc.proc.pid)
    peak = {"rss": baseline}
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak["rss"] = max(peak["rss"], process_rss_bytes(svc.proc.pid))
            stop.wait(0.05)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    code = "while True:\n    print('x' * 1000)"

    async def one(i):
        cid = f"{client_id}-{i}"
        eid = {}

        async def start():
            eid["id"] = await svc.start_stream(cid, code, "python", timeout_ms=6000)
        events = await slow_reader(svc, cid, 256 * KIB, start, timeout=120)
        return eid["id"], [ev for ev in events if ev.get("executionId") == eid["id"]]

    async def scenario():
        return await asyncio.gather(*[one(i) for i in range(20)])
    try:
        results = run(scenario(), timeout=150)
    finally:
        stop.set()
        sampler.join()
    for eid, events in results:
        seq = check_stream_sequence(events, eid)
        assert seq["error"]["name"] == "TimeoutError", seq["error"]
        # Held by its reader: far less than the 16 MiB output cap in 6 s.
        assert len(seq["stdout"]) < 8 * MIB, len(seq["stdout"])
    growth = peak["rss"] - baseline
    print(f"service RSS: baseline {baseline / MIB:.1f} MiB, peak {peak['rss'] / MIB:.1f} MiB "
          f"(+{growth / MIB:.1f} MiB for 20 floods to 20 slow readers)")
    assert growth < 256 * MIB, f"service RSS grew by {growth / MIB:.0f} MiB"
