"""3. Throughput of one-shot executions at concurrency 16: wrk (bench/wrk/execute.lua)
posting print('hi') on 16 connections, against 16 threads each spawning bare
`python3 -c` in a loop for as long."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path

from lib.context import POOL_SIZE, Context
from lib.kernels import spawn_python
from lib.report import Row
from lib.service import Client, oneshot, wait_pool, wait_zygote, zygote_counts

TITLE = "one-shot throughput at concurrency 16"
CONCURRENCY = 16
WRK_SCRIPT = Path(__file__).resolve().parent.parent / "wrk" / "execute.lua"


def spawn_load(seconds: float, concurrency: int) -> tuple[list[float], int, float]:
    """(latencies ms, failures, elapsed s) of `concurrency` threads spawning python3 -c
    until `seconds` have passed (the child runs outside the GIL)."""
    latencies: list[float] = []
    failures = 0
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def worker() -> None:
        nonlocal failures
        while time.monotonic() < deadline:
            try:
                ms = spawn_python() / 1e6
            except (SystemExit, subprocess.CalledProcessError):
                with lock:
                    failures += 1
                continue
            with lock:
                latencies.append(ms)

    start = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, failures, time.monotonic() - start


def wrk(url: str, seconds: float, connections: int, threads: int = 2) -> dict:
    """Runs wrk with the execute script; its WRK_JSON summary line."""
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s",
                          "--timeout", "30s", "-s", str(WRK_SCRIPT), f"{url}/execute"],
                         capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        if line.startswith("WRK_JSON "):
            return json.loads(line.removeprefix("WRK_JSON "))
    raise SystemExit(f"wrk printed no summary:\n{out}")


def wrk_errors(summary: dict) -> int:
    return (summary["bad"] + summary["connect_errors"] + summary["read_errors"]
            + summary["write_errors"] + summary["timeouts"])


def run(ctx: Context) -> list[Row]:
    seconds = 5 if ctx.quick else 15
    spawn_ms, spawn_failures, spawn_elapsed = spawn_load(seconds, CONCURRENCY)
    spawn_rate = len(spawn_ms) / spawn_elapsed
    with ctx.service() as service:
        control = Client("127.0.0.1", service.port, service)
        wait_pool(control, POOL_SIZE, POOL_SIZE)
        for _ in range(3):
            oneshot(control)  # warm-up: code paths, page cache
        summary = wrk(service.url, seconds, CONCURRENCY)
        peak = service.peak_rss_kib()
    with ctx.service(ZYGOTE="auto") as service:
        control = Client("127.0.0.1", service.port, service)
        if not wait_zygote(control):
            ctx.note("3", "the zygote did not become ready within 60 s")
        wait_pool(control, POOL_SIZE, POOL_SIZE)
        for _ in range(3):
            oneshot(control)
        zsummary = wrk(service.url, seconds, CONCURRENCY)
        zpeak = service.peak_rss_kib()
        counts = zygote_counts(control)
        if counts.get("fallbacks"):
            ctx.note("3", f"zygote: {counts['fallbacks']} launches took the exec path ({counts})")
    rate = summary["requests"] / (summary["duration_us"] / 1e6)
    zrate = zsummary["requests"] / (zsummary["duration_us"] / 1e6)
    zerrors = wrk_errors(zsummary)
    if zerrors:
        ctx.note("3", f"wrk with the zygote: {zerrors} errors; first bad: {zsummary['first_bad']}")
    errors = wrk_errors(summary)
    if errors:
        ctx.note("3", f"wrk: {errors} errors ({summary}); first bad answer: {summary['first_bad']}")
    if spawn_failures:
        ctx.note("3", f"{spawn_failures} python3 -c spawns failed")
    ratio = rate / spawn_rate
    return [
        Row.timed("3", f"baseline: python3 -c spawns, {CONCURRENCY} at a time", spawn_ms,
                  sequential=False, throughput=spawn_rate),
        Row("3", f"wrk -c{CONCURRENCY} POST /execute, {errors} errors",
            median=summary["p50_us"] / 1e3, p95=summary["p95_us"] / 1e3, p99=summary["p99_us"] / 1e3,
            throughput=rate, peak_rss_kib=peak, baseline=spawn_rate, baseline_unit="/s",
            ratio=ratio,
            target=">= 0.8x spawn throughput, 0 errors", met=ratio >= 0.8 and errors == 0),
        Row("3", f"wrk -c{CONCURRENCY} POST /execute, ZYGOTE=auto, {zerrors} errors",
            median=zsummary["p50_us"] / 1e3, p95=zsummary["p95_us"] / 1e3,
            p99=zsummary["p99_us"] / 1e3, throughput=zrate, peak_rss_kib=zpeak,
            baseline=spawn_rate, baseline_unit="/s", ratio=zrate / spawn_rate,
            target=">= 1.2x spawn throughput, 0 errors (#17)",
            met=zrate / spawn_rate >= 1.2 and zerrors == 0),
    ]
