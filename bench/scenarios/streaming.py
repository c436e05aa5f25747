"""4. Streaming latency: a cell prints "<i> <time.time_ns()>" every 10 ms; the delay from
each print to its receipt by one WebSocket subscriber, against the same program run
as a local subprocess whose stdout pipe the benchmark reads (the floor)."""

from __future__ import annotations

import asyncio
import subprocess
import time

from lib.context import POOL_SIZE, Context
from lib.machine import PYTHON
from lib.report import Row
from lib import ws
from lib.service import Client, wait_pool
from lib.stats import percentile

TITLE = "streaming latency, print to WebSocket receipt"
INTERVAL_MS = 10


def pipe_delays(code: str) -> list[float]:
    """The floor: the same program's lines read from a pipe, delay per line in ms."""
    delays = []
    proc = subprocess.Popen([PYTHON, "-u", "-c", code], stdout=subprocess.PIPE)
    for line in proc.stdout:
        now = time.time_ns()
        delays.append((now - int(line.split()[1])) / 1e6)
    proc.wait()
    return delays


async def stream_once(port: int, client_id: str, code: str, lines: int) -> ws.Received:
    """One subscriber, one stream cell: connected first, then the POST."""
    sock = await ws.connect(port, client_id)
    try:
        receiving = asyncio.create_task(ws.receive_stream(sock))
        await ws.start_stream(port, client_id, code)
        return await asyncio.wait_for(receiving, timeout=60 + lines * INTERVAL_MS / 1000)
    finally:
        await sock.close()


def run(ctx: Context) -> list[Row]:
    lines = 200 if ctx.quick else 1000
    code = ws.stream_cell(lines, INTERVAL_MS)
    floor = pipe_delays(code)
    with ctx.service() as service:
        wait_pool(Client("127.0.0.1", service.port, service), POOL_SIZE, POOL_SIZE)
        got = asyncio.run(stream_once(service.port, "bench-stream", code, lines))
        peak = service.peak_rss_kib()
    if not got.in_order(lines) or got.closed or got.errors:
        ctx.note("4", f"the stream lost or reordered lines ({len(got.sequence)} of {lines}; "
                      f"{got.closed or 'not closed'}; errors {got.errors[:1]})")
    p99, floor_p99 = percentile(got.delays_ms, 99), percentile(floor, 99)
    return [
        Row.timed("4", "baseline: local subprocess, stdout pipe", floor, sequential=False),
        Row.timed("4", f"WebSocket, {lines} lines every {INTERVAL_MS} ms", got.delays_ms,
                  sequential=False, peak_rss_kib=peak, baseline=floor_p99, ratio=p99 / floor_p99,
                  target="p99 <= 5 ms (ratio of p99s)", met=p99 <= 5.0 and got.in_order(lines)),
    ]
