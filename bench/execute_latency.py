#!/usr/bin/python3
"""Latency of a one-shot POST /execute against a bare interpreter spawn, measured
in the same run on the same machine.

    bench/execute_latency.py [--runs 50] [--binary build-release/codeexec] [--url URL]

Without --url it starts the binary on a free loopback port and stops it after.
Prints median and p95 per scenario and the ratio to the baseline (bare spawn).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def start_service(binary: Path) -> tuple[subprocess.Popen, int]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PORT": "0", "HOST": "127.0.0.1",
           "LOG_LEVEL": "info"}
    proc = subprocess.Popen([str(binary)], env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    assert proc.stderr is not None
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            raise SystemExit(f"service exited early with {proc.wait()}")
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if entry.get("msg") == "listening":
            # Keep draining the log so the service never blocks on a full pipe.
            subprocess.Popen(["cat"], stdin=proc.stderr, stdout=subprocess.DEVNULL)
            return proc, int(entry["port"])
    raise SystemExit("service did not start within 60 s")


def time_execute(host: str, port: int, code: str, runs: int) -> list[float]:
    conn = http.client.HTTPConnection(host, port, timeout=60)
    body = json.dumps({"code": code, "language": "python"})
    samples = []
    for i in range(runs + 3):  # 3 warm-up requests
        start = time.perf_counter()
        conn.request("POST", "/execute", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        payload = json.loads(response.read())
        elapsed = time.perf_counter() - start
        if response.status != 200 or payload["result"]["logs"]["stdout"] != ["hi\n"]:
            raise SystemExit(f"unexpected answer: {response.status} {payload}")
        if i >= 3:
            samples.append(elapsed * 1000)
    return samples


def time_spawn(argv: list[str], runs: int) -> list[float]:
    samples = []
    for i in range(runs + 3):
        start = time.perf_counter()
        out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
        elapsed = time.perf_counter() - start
        if out != "hi\n":
            raise SystemExit(f"unexpected output {out!r}")
        if i >= 3:
            samples.append(elapsed * 1000)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--binary", type=Path, default=ROOT / "build-release" / "codeexec")
    parser.add_argument("--url", help="an already running service, e.g. http://127.0.0.1:4000")
    args = parser.parse_args()

    proc = None
    if args.url:
        host, _, port_text = args.url.removeprefix("http://").partition(":")
        port = int(port_text or 80)
    else:
        if not args.binary.exists():
            sys.exit(f"{args.binary} not found: build it first (scripts/run builds build-release)")
        proc, port = start_service(args.binary)
        host = "127.0.0.1"
    try:
        # Interleave the scenarios in rounds so that load drifts hit both alike.
        baseline: list[float] = []
        service: list[float] = []
        rounds = 5
        per_round = max(1, args.runs // rounds)
        for _ in range(rounds):
            baseline += time_spawn(["/usr/bin/python3", "-c", "print('hi')"], per_round)
            service += time_execute(host, port, "print('hi')", per_round)
    finally:
        if proc:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)

    base_median = statistics.median(baseline)
    print(f"{'scenario':45} {'median ms':>10} {'p95 ms':>10} {'ratio':>7}")
    for name, samples in (("bare python3 -c \"print('hi')\" (baseline)", baseline),
                          ("POST /execute print('hi') (fresh sandbox)", service)):
        median = statistics.median(samples)
        print(f"{name:45} {median:10.1f} {percentile(samples, 95):10.1f} "
              f"{median / base_median:6.2f}x")


if __name__ == "__main__":
    main()
