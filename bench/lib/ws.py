"""WebSocket subscribers (python3-websockets, asyncio) and the timestamped stream cell
of scenarios 4, 5 and 8."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

import websockets  # python3-websockets

from lib.service import Client

# Every line is "<sequence number> <time.time_ns() when printed>": the receiver checks
# the order and measures the delay from the print to its own receipt (CLOCK_REALTIME,
# the same host and clock inside and outside the sandbox).
STREAM_CELL = """import time
for i in range({lines}):
    print(i, time.time_ns(), flush=True)
    time.sleep({interval_s})
"""


def stream_cell(lines: int, interval_ms: float) -> str:
    return STREAM_CELL.format(lines=lines, interval_s=interval_ms / 1000)


async def connect(port: int, client_id: str) -> websockets.WebSocketClientProtocol:
    # No compression (the service offers none), no client pings (the service pings).
    return await websockets.connect(f"ws://127.0.0.1:{port}/?clientId={client_id}",
                                    compression=None, ping_interval=None, max_size=None,
                                    open_timeout=120, close_timeout=5)


async def connect_many(port: int, client_ids: list[str], batch: int = 200) -> list:
    """Opens one socket per client id, `batch` handshakes at a time."""
    sockets = []
    for start in range(0, len(client_ids), batch):
        sockets += await asyncio.gather(*(connect(port, cid) for cid in client_ids[start:start + batch]))
    return sockets


async def start_stream(port: int, client_id: str, code: str) -> str:
    """POST /execute-stream (on a thread: http.client blocks); returns the execution id."""
    def post() -> str:
        client = Client("127.0.0.1", port, None)
        payload = client.json_ok("POST", "/execute-stream",
                                 {"code": code, "language": "python", "clientId": client_id}, 200)
        client.conn.close()
        return payload["executionId"]

    return await asyncio.to_thread(post)


@dataclass
class Received:
    """What one socket got of the stream cells it waited for."""
    sequence: list[int] = field(default_factory=list)
    delays_ms: list[float] = field(default_factory=list)
    messages: int = 0
    finished: int = 0          # executions that ended with status completed
    failed: int = 0            # ... with status failed
    errors: list[str] = field(default_factory=list)  # error events, abridged
    closed: str = ""           # why the socket closed early, if it did

    def in_order(self, lines: int, executions: int = 1) -> bool:
        return self.sequence == list(range(lines)) * executions


async def receive_stream(ws, executions: int = 1) -> Received:
    """Reads until `executions` stream cells have ended (status completed or failed)."""
    got = Received()
    pending: dict[str, str] = {}  # a partial line per execution
    try:
        while got.finished + got.failed < executions:
            raw = await ws.recv()
            now = time.time_ns()
            got.messages += 1
            msg = json.loads(raw)
            kind = msg.get("type")
            if kind == "stdout":
                text = pending.pop(msg["executionId"], "") + msg["data"]
                *lines, rest = text.split("\n")
                if rest:
                    pending[msg["executionId"]] = rest
                for line in lines:
                    seq, stamp = line.split()
                    got.sequence.append(int(seq))
                    got.delays_ms.append((now - int(stamp)) / 1e6)
            elif kind == "error":
                got.errors.append(json.dumps(msg)[:200])
            elif kind == "status" and msg.get("status") == "completed":
                got.finished += 1
            elif kind == "status" and msg.get("status") == "failed":
                got.failed += 1
    except websockets.ConnectionClosed as e:
        got.closed = f"closed {e.code} {e.reason}"
    return got
