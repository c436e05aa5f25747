"""8. Soak: scenarios 1-4 together for --soak-minutes (10): a sequential one-shot loop,
a stateful x = x + 1 loop, wrk at concurrency 16 and a streaming loop, each its own
process. The service's RSS, fds and threads are sampled throughout; at the end they
must be flat (no leak) and every request must have succeeded."""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import queue
import threading
import time

from lib import ws
from lib.context import POOL_SIZE, Context
from lib.machine import open_fds, thread_names, threads
from lib.report import Row
from lib.service import Client, CurlClient, check_cell, oneshot, wait_pool
from scenarios.throughput import CONCURRENCY, wrk, wrk_errors

TITLE = "soak: scenarios 1-4 together"
STREAM_LINES = 100
RSS_GROWTH = 1.05  # end of the load against its middle: more is a leak


def oneshot_loop(port: int, seconds: float) -> dict:
    client = CurlClient("127.0.0.1", port, None)
    ms, errors = [], []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            ms.append(oneshot(client) / 1e6)
        except SystemExit as e:
            errors.append(str(e)[:200])
    return {"ms": ms, "errors": errors}


def stateful_loop(port: int, seconds: float) -> dict:
    control = Client("127.0.0.1", port, None)
    client = CurlClient("127.0.0.1", port, None)
    sandbox_id = control.json_ok("POST", "/sandboxes", {"language": "python"}, 201)["sandboxId"]
    path = f"/sandboxes/{sandbox_id}/execute"
    body = json.dumps({"code": "x = x + 1"}).encode()
    check_cell(control.json_ok("POST", path, {"code": "x = 0"}, 200), "x = 0")
    ms, errors = [], []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status, payload, ns = client.call("POST", path, body)
        try:
            if status != 200:
                raise SystemExit(f"{status} {payload}")
            check_cell(payload, "x = x + 1")
            ms.append(ns / 1e6)
        except SystemExit as e:
            errors.append(str(e)[:200])
    control = Client("127.0.0.1", port, None)  # the service closed the idle one
    got = check_cell(control.json_ok("POST", path, {"code": "x"}, 200), "x")["results"]
    if [r.get("text") for r in got] != [str(len(ms))]:
        errors.append(f"x = {got}, expected {len(ms)}")
    control.json_ok("DELETE", f"/sandboxes/{sandbox_id}", None, 204)
    return {"ms": ms, "errors": errors}


def streaming_loop(port: int, seconds: float) -> dict:
    async def loop() -> dict:
        code = ws.stream_cell(STREAM_LINES, 10)
        sock = await ws.connect(port, "soak-stream")
        ms, errors = [], []
        deadline = time.monotonic() + seconds
        try:
            while time.monotonic() < deadline:
                receiving = asyncio.create_task(ws.receive_stream(sock))
                await ws.start_stream(port, "soak-stream", code)
                got = await asyncio.wait_for(receiving, timeout=120)
                ms += got.delays_ms
                if not got.in_order(STREAM_LINES) or got.closed or got.failed:
                    errors.append(f"{len(got.sequence)} lines, {got.closed}, {got.errors[:1]}")
                if got.closed:
                    break
        finally:
            await sock.close()
        return {"ms": ms, "errors": errors}

    return asyncio.run(loop())


def in_process(fn, port: int, seconds: float, results: multiprocessing.Queue) -> None:
    try:
        results.put((fn.__name__, fn(port, seconds)))
    except BaseException as e:  # a crashed component is an error, not a hang
        results.put((fn.__name__, {"ms": [], "errors": [f"crashed: {e!r}"[:200]]}))


def run(ctx: Context) -> list[Row]:
    seconds = ctx.soak_seconds
    interval = max(1.0, min(10.0, seconds / 60))
    mp = multiprocessing.get_context("fork")
    results: multiprocessing.Queue = mp.Queue()
    with ctx.service() as service:
        control = Client("127.0.0.1", service.port, service)
        wait_pool(control, POOL_SIZE, POOL_SIZE)
        time.sleep(1)
        fds_before, threads_before = open_fds(service.pid), threads(service.pid)
        names_before = thread_names(service.pid)
        loops = [mp.Process(target=in_process, args=(fn, service.port, seconds, results))
                 for fn in (oneshot_loop, stateful_loop, streaming_loop)]
        for p in loops:
            p.start()
        wrk_summary: dict = {}
        wrk_thread = threading.Thread(target=lambda: wrk_summary.update(
            wrk(service.url, seconds, CONCURRENCY)))
        wrk_thread.start()
        samples = []  # (seconds since start, RSS KiB, fds, threads)
        got: dict[str, dict] = {}
        start = time.monotonic()
        # Results are read as they come: a child exits only once its queue is drained.
        while wrk_thread.is_alive() or len(got) < len(loops):
            samples.append((time.monotonic() - start, service.rss_kib(), open_fds(service.pid),
                            threads(service.pid)))
            try:
                name, result = results.get(timeout=interval)
                got[name] = result
            except queue.Empty:
                pass
        wrk_thread.join()
        for p in loops:
            p.join()
        # Settled: no execution running, the pool refilled. A new connection: the service
        # closed the idle one (IDLE_TIMEOUT_MS).
        control = Client("127.0.0.1", service.port, service)
        wait_pool(control, POOL_SIZE, 0)
        deadline = time.monotonic() + 30
        while control.json_ok("GET", "/health", None, 200)["executions"]["running"] and \
                time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(3)
        rss_after = service.rss_kib()
        fds_after, threads_after = open_fds(service.pid), threads(service.pid)
        names_after = thread_names(service.pid)
        peak = service.peak_rss_kib()

    loaded = [s for s in samples if s[0] <= seconds]
    rss_mid = min(loaded, key=lambda s: abs(s[0] - seconds / 2))[1]
    rss_end = loaded[-1][1]
    trace = ", ".join(f"{t:.0f}s {rss / 1024:.0f}M/{fds}fd/{n}t"
                      for t, rss, fds, n in samples[::max(1, len(samples) // 12)])
    print(f"  samples: {trace}; after settling {rss_after / 1024:.0f}M/{fds_after}fd/{threads_after}t")
    print(f"  threads by name: before {names_before}, after settling {names_after}")
    errors = {name: r["errors"] for name, r in got.items()}
    errors["wrk"] = [] if not wrk_errors(wrk_summary) else [str(wrk_summary)]
    error_count = sum(len(e) for e in errors.values())
    for name, errs in errors.items():
        if errs:
            ctx.note("8", f"{name}: {len(errs)} errors, first: {errs[0]}")
    minutes = f"{seconds / 60:g} min"
    wrk_rate = wrk_summary["requests"] / (wrk_summary["duration_us"] / 1e6)
    return [
        Row.timed("8", f"{minutes}: one-shot loop ({len(got['oneshot_loop']['ms'])})",
                  got["oneshot_loop"]["ms"]),
        Row.timed("8", f"{minutes}: stateful x = x + 1 loop", got["stateful_loop"]["ms"]),
        Row("8", f"{minutes}: wrk -c{CONCURRENCY} POST /execute", median=wrk_summary["p50_us"] / 1e3,
            p95=wrk_summary["p95_us"] / 1e3, p99=wrk_summary["p99_us"] / 1e3, throughput=wrk_rate),
        Row.timed("8", f"{minutes}: streaming delay", got["streaming_loop"]["ms"], sequential=False),
        Row("8", "service RSS, end of load vs its middle", unit="MiB", median=rss_end / 1024,
            peak_rss_kib=peak, baseline=rss_mid / 1024, ratio=rss_end / rss_mid,
            target=f"<= {RSS_GROWTH}x", met=rss_end <= RSS_GROWTH * rss_mid),
        Row("8", "service fds, settled after vs before", unit="", median=fds_after,
            baseline=fds_before, ratio=fds_after / fds_before, target="<= before",
            met=fds_after <= fds_before),
        Row("8", "service threads, settled after vs before", unit="", median=threads_after,
            baseline=threads_before, ratio=threads_after / threads_before, target="<= before",
            met=threads_after <= threads_before),
        Row("8", "errors (all loads)", unit="", median=error_count, target="0",
            met=error_count == 0),
    ]
