"""9. Slow readers and resume: floods read at a fixed pace by one socket each (what
arrives, how fast, and the service's memory meanwhile), one flood read as fast as a
client can, and the time a socket takes to resume with lastEventId."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import websockets  # python3-websockets

from lib import ws
from lib.context import Context
from lib.report import Row

TITLE = "slow readers (back-pressure) and resume latency"
MIB = 1 << 20

FLOOD = """import sys
line = 'x' * 1015 + '\\n'
for i in range({lines}):
    sys.stdout.write(f'{{i:08d}}' + line)
"""


async def read_stream(port: int, client_id: str, rate: float | None, start) -> dict:
    """Reads one clientId's stream until its execution ends, at most `rate` bytes/s (None:
    as fast as it can). Returns what it got and how long it took."""
    sock = await websockets.connect(f"ws://127.0.0.1:{port}/?clientId={client_id}",
                                    compression=None, ping_interval=None, max_size=None,
                                    max_queue=1, read_limit=1 << 16, open_timeout=120)
    stdout, last_id, closed, status = [], 0, "", ""
    began = time.monotonic()
    try:
        await start()
        began = time.monotonic()
        while True:
            raw = await sock.recv()
            msg = json.loads(raw)
            if msg.get("eventId", last_id + 1) != last_id + 1:
                closed = f"eventId {msg.get('eventId')} after {last_id}"
            last_id = msg.get("eventId", last_id)
            if msg.get("type") == "stdout":
                stdout.append(msg["data"])
            if msg.get("type") == "status" and msg.get("status") in ("completed", "failed"):
                status = msg["status"]
                break
            if rate:
                await asyncio.sleep(len(raw) / rate)
    except websockets.ConnectionClosed as e:
        closed = f"closed {e.code} {e.reason}"
    finally:
        await sock.close()
    return {"stdout": "".join(stdout), "seconds": time.monotonic() - began, "closed": closed,
            "status": status}


def expected(lines: int) -> str:
    return "".join(f"{i:08d}" + "x" * 1015 + "\n" for i in range(lines))


def floods(ctx: Context, service, readers: int, lines: int, rate: float | None) -> tuple[list, int]:
    """`readers` clientIds, one flood and one reader each, all at once; the service's RSS
    growth over the run (sampled every 50 ms)."""
    baseline = service.rss_kib()
    peak = [baseline]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], service.rss_kib())
            stop.wait(0.05)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    code = FLOOD.format(lines=lines)

    async def one(i: int) -> dict:
        cid = f"bench-slow-{i}"
        return await read_stream(service.port, cid, rate, lambda: ws.start_stream(service.port, cid, code))

    async def all_readers() -> list:
        return await asyncio.gather(*(one(i) for i in range(readers)))
    try:
        got = asyncio.run(all_readers())
    finally:
        stop.set()
        sampler.join()
    return got, peak[0] - baseline


async def resume_once(port: int, client_id: str, after: int, last: int) -> tuple[float, float]:
    """Connects with lastEventId=after: ms to the first message and to the last one."""
    t0 = time.perf_counter()
    sock = await websockets.connect(f"ws://127.0.0.1:{port}/?clientId={client_id}&lastEventId={after}",
                                    compression=None, ping_interval=None, max_size=None)
    try:
        first = None
        while True:
            msg = json.loads(await sock.recv())
            now = time.perf_counter()
            first = first or now
            if msg.get("eventId") == last:
                return (first - t0) * 1000, (now - t0) * 1000
    finally:
        await sock.close()


def resume_latency(service, rounds: int, lines: int) -> tuple[list[float], list[float], int]:
    """One execution printing `lines` lines, read whole by an anchor socket (which keeps
    it alive); then `rounds` resumes from the middle of its stream."""
    cid = "bench-resume"

    async def scenario():
        anchor = await ws.connect(service.port, cid)
        try:
            await ws.start_stream(service.port, cid, ws.stream_cell(lines, 1))
            last = 0
            while True:
                msg = json.loads(await asyncio.wait_for(anchor.recv(), 120))
                last = msg.get("eventId", last)
                if msg.get("type") == "status" and msg.get("status") in ("completed", "failed"):
                    break
            firsts, alls = [], []
            for _ in range(rounds):
                f, a = await resume_once(service.port, cid, last // 2, last)
                firsts.append(f)
                alls.append(a)
            return firsts, alls, last - last // 2
        finally:
            await anchor.close()
    return asyncio.run(scenario())


def run(ctx: Context) -> list[Row]:
    rows = []
    readers, lines, rate = (4, 2048, 1 * MIB) if ctx.quick else (10, 8192, 1 * MIB)
    with ctx.service() as service:
        got, growth = floods(ctx, service, readers, lines, rate)
        peak = service.peak_rss_kib()
    want = expected(lines)
    complete = sum(1 for g in got if g["stdout"] == want and g["status"] == "completed" and not g["closed"])
    per_reader = [len(g["stdout"]) / MIB / g["seconds"] for g in got if g["seconds"] > 0]
    if complete < readers:
        ctx.note("9", "slow readers lost output: " + "; ".join(
            f"{len(g['stdout'])} of {len(want)} bytes, {g['status'] or 'no status'}, {g['closed'] or 'open'}"
            for g in got if g["stdout"] != want or g["closed"])[:400])
    rows.append(Row("9", f"{readers} floods of {lines // 1024} MiB, one reader each at "
                         f"{rate / MIB:.0f} MiB/s: complete", unit="", median=complete,
                    throughput=sum(per_reader), throughput_unit="MiB/s (all readers)",
                    peak_rss_kib=peak, target=f"{readers} of {readers} complete, in order",
                    met=complete == readers))
    rows.append(Row("9", "service RSS growth during the slow-reader floods", unit="MiB",
                    median=growth / 1024, peak_rss_kib=peak))

    fast_lines = 8192 if ctx.quick else 32768
    with ctx.service() as service:
        got, growth = floods(ctx, service, 1, fast_lines, None)
        peak = service.peak_rss_kib()
    g = got[0]
    ok = g["stdout"] == expected(fast_lines) and g["status"] == "completed" and not g["closed"]
    if not ok:
        ctx.note("9", f"the fast reader got {len(g['stdout'])} bytes, {g['status']}, {g['closed']}")
    rows.append(Row("9", f"one flood of {fast_lines // 1024} MiB, read as fast as possible",
                    unit="s", median=g["seconds"], throughput=len(g["stdout"]) / MIB / g["seconds"],
                    throughput_unit="MiB/s", peak_rss_kib=peak, target="complete, in order", met=ok))

    rounds, lines = (10, 200) if ctx.quick else (50, 1000)
    with ctx.service() as service:
        firsts, alls, messages = resume_latency(service, rounds, lines)
        peak = service.peak_rss_kib()
    rows.append(Row.timed("9", "resume with lastEventId: connect to first replayed message", firsts,
                          peak_rss_kib=peak))
    rows.append(Row.timed("9", f"resume with lastEventId: connect to caught up ({messages} "
                               "messages)", alls, peak_rss_kib=peak))
    return rows
