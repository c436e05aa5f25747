#!/usr/bin/python3
"""Latency of a warm stateful sandbox cell against a local Jupyter kernel, and of a
one-shot POST /execute against a bare interpreter spawn, all measured in one run.

    bench/stateful_latency.py [--binary build-bench/codeexec] [--quick] [--rounds N]
                              [--idle-rounds N] [--gap-ms MS] [--oneshot-rounds N]
                              [--pool-size N] [--no-jupyter] [--url URL]

It starts the binary (PORT = a free port, WARM_POOL_SIZE=--pool-size,
WARM_POOL_LANGUAGES=python, LOG_LEVEL=warn) and stops it after. Every time is
time.perf_counter_ns() around one request in this process, over one reused keep-alive
connection (pycurl with one handle; (b) also through http.client); medians, p95 and
minimum in milliseconds.

  (a)  POST /execute print('hi'), one-shot, from a full warm pool: after each request
       the benchmark waits (untimed) until the pool has refilled and the new sandbox's
       kernel reported ready (codeexec_sandbox_start_seconds_count in /metrics)
  (a') the same back to back, not waiting: the steady state of a client in a loop
  (b)  POST /sandboxes/{id}/execute `x = x + 1` on a warm stateful sandbox
  (c)  bare `python3 -c "print('hi')"` spawn (subprocess.run, output captured)
  (d)  a local Jupyter kernel (Debian's python3-ipykernel + python3-jupyter-client, the
       engine E2B runs in its sandboxes): client.execute(`x = x + 1`), then the iopub
       `status: idle` and the shell execute_reply of it; `x = 0` ran first

(b) and (d) run three ways: interleaved round by round with the floors below (rotating
order, so load drifts hit all alike), back to back (each alone in a loop; CPU per
request of the service, the sandbox and the kernel from /proc schedstat), and after an
idle gap (--gap-ms, an agent thinking between cells). Floors, to attribute (b):
GET /nope (404: HTTP and routing), GET /ready (HTTP and a locked check, no actor), and
the Python runner driven directly over pipes (no service, no sandbox). (a) and (c) are
interleaved too. x is checked at the end: every cell ran exactly once.

Targets (printed, not asserted): (b) median <= 1 ms; (d)/(b) >= 3; (a)/(c) <= 1.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from lib.kernels import DirectRunner, Jupyter, runner_dir
from lib.machine import ROOT, CpuMeter, descendants, load_line, print_header
from lib.service import Client, CurlClient, Service, check_cell, oneshot, oneshot_rounds, wait_pool
from lib.stats import Samples, percentile


# ---------------------------------------------------------------------------- main

def verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", type=Path, default=ROOT / "build-bench" / "codeexec")
    parser.add_argument("--url", help="use an already running service (http://127.0.0.1:4000) "
                        "instead of starting --binary; give it --pool-size's WARM_POOL_SIZE")
    parser.add_argument("--quick", action="store_true", help="fewer rounds (40 / 10 / 15)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds of (b), (d) and the "
                        "floors (200); half as many back to back")
    parser.add_argument("--idle-rounds", type=int, help="rounds of (b) and (d) after an idle "
                        "gap (60)")
    parser.add_argument("--gap-ms", type=float, default=50,
                        help="the idle gap before each idle round's request (50 ms)")
    parser.add_argument("--oneshot-rounds", type=int, help="rounds of (a), (a') and (c) (50)")
    parser.add_argument("--warmup", type=int, help="warm-up rounds, not counted (20; quick 5; "
                        "one-shot at most 3)")
    parser.add_argument("--pool-size", type=int, default=2,
                        help="WARM_POOL_SIZE of the started service (python only); default 2")
    parser.add_argument("--no-jupyter", action="store_true", help="skip (d)")
    parser.add_argument("--log-level", default="warn", help="LOG_LEVEL of the started service")
    args = parser.parse_args()
    rounds = args.rounds or (40 if args.quick else 200)
    idle_rounds = args.idle_rounds or (15 if args.quick else 60)
    oneshot_rounds_n = args.oneshot_rounds or (10 if args.quick else 50)
    warmup = args.warmup if args.warmup is not None else (5 if args.quick else 20)
    oneshot_warmup = min(3, warmup)
    gap = args.gap_ms / 1000

    print_header()

    service = None
    if args.url:
        host, _, port_text = args.url.removeprefix("http://").rstrip("/").partition(":")
        port = int(port_text or 80)
    else:
        if not args.binary.exists():
            sys.exit(f"{args.binary} not found: scripts/bench builds it (or scripts/build "
                     "build-bench -DCMAKE_BUILD_TYPE=Release)")
        service = Service(args.binary, {"LOG_LEVEL": args.log_level, "WARM_POOL_SIZE": str(args.pool_size),
                                        "WARM_POOL_LANGUAGES": "python"})
        host, port = "127.0.0.1", service.port
    runners = runner_dir(args.binary)
    print(f"  service: {args.url or args.binary} (port {port}, WARM_POOL_SIZE={args.pool_size}, "
          f"WARM_POOL_LANGUAGES=python, LOG_LEVEL={args.log_level})")
    print(f"  rounds: {rounds} interleaved + {rounds // 2} back to back (+{warmup} warm-up), "
          f"{idle_rounds} after a {args.gap_ms:g} ms idle gap, {oneshot_rounds_n} one-shot "
          f"(+{oneshot_warmup} warm-up)")

    client = Client(host, port, service)  # http.client: control calls, and (b) via http.client
    try:
        curl = CurlClient(host, port, service)
    except ImportError:
        curl = None
        print("  pycurl missing (apt install python3-pycurl): every request goes through http.client")
    fast = curl or client
    fast_name = "pycurl" if curl else "http.client"
    print(f"  HTTP clients: {fast_name} for (a), (b) and the floors"
          + ("; (b) also through http.client" if curl else ""))

    jupyter = runner = None
    sandbox_id = None
    results: dict[str, Samples] = {}
    cpu: dict[str, str] = {}
    notes: list[str] = []
    loads: dict[str, str] = {}
    service_pid = service.proc.pid if service else None
    try:
        # ------------------------------------------------ stateful: (b), (d), floors
        if not wait_pool(client, args.pool_size, args.pool_size):
            notes.append("the warm pool did not fill within 30 s before the stateful phase")
        ready_before = client.sandboxes_ready()
        created = client.json_ok("POST", "/sandboxes", {"language": "python"}, 201)
        sandbox_id = created["sandboxId"]
        cell_path = f"/sandboxes/{sandbox_id}/execute"
        check_cell(client.json_ok("POST", cell_path, {"code": "x = 0"}, 200), "x = 0")
        if not args.no_jupyter:
            jupyter = Jupyter()
            jupyter.cell("x = 0")
        runner = DirectRunner(runners)
        runner.cell("x = 0")
        # Let the pool refill the sandbox the stateful one was taken from.
        if not wait_pool(client, args.pool_size, ready_before + 1):
            notes.append("the warm pool did not refill within 30 s before the stateful rounds")
        sandbox_cells = jupyter_cells = 0
        cell_body = json.dumps({"code": "x = x + 1"}).encode()

        def cell_b(http, samples: Samples | None) -> None:
            nonlocal sandbox_cells
            status, payload, ns = http.call("POST", cell_path, cell_body)
            if status != 200:
                raise SystemExit(f"POST {cell_path}: {status} {payload}")
            check_cell(payload, "x = x + 1")
            sandbox_cells += 1
            if samples is not None:
                samples.add_ns(ns)

        def cell_d(samples: Samples | None) -> None:
            nonlocal jupyter_cells
            ns, _ = jupyter.cell("x = x + 1")
            jupyter_cells += 1
            if samples is not None:
                samples.add_ns(ns)

        def floor(path: str, want: int, samples: Samples | None) -> None:
            status, _, ns = fast.call("GET", path)
            if status != want:
                raise SystemExit(f"GET {path}: {status}")
            if samples is not None:
                samples.add_ns(ns)

        def direct(samples: Samples | None) -> None:
            ns, _ = runner.cell("x = x + 1")
            if samples is not None:
                samples.add_ns(ns)

        # 1. Interleaved, round by round in rotating order.
        b = results["b"] = Samples(f"(b) POST /sandboxes/{{id}}/execute x = x + 1 [{fast_name}]")
        bpy = results["b_py"] = Samples("(b) the same through http.client")
        d = results["d"] = Samples("(d) Jupyter kernel x = x + 1 (execute, idle + reply)")
        f404 = results["404"] = Samples("    floor: GET /nope (404: HTTP and routing only)")
        fready = results["ready"] = Samples("    floor: GET /ready (HTTP + a locked check, no actor)")
        frun = results["runner"] = Samples("    floor: python runner over pipes, no service/sandbox")
        steps = [lambda keep: cell_b(fast, b if keep else None),
                 lambda keep: floor("/nope", 404, f404 if keep else None),
                 lambda keep: floor("/ready", 200, fready if keep else None),
                 lambda keep: direct(frun if keep else None)]
        if curl:
            steps.insert(2, lambda keep: cell_b(client, bpy if keep else None))
        if jupyter:
            steps.insert(1, lambda keep: cell_d(d if keep else None))
        loads["interleaved"] = load_line()
        for i in range(warmup + rounds):
            k = i % len(steps)
            for step in steps[k:] + steps[:k]:
                step(i >= warmup)

        # 2. Back to back: each scenario alone, as fast as it answers (a client in a loop).
        bb = results["b_burst"] = Samples(f"(b) back to back [{fast_name}]")
        db = results["d_burst"] = Samples("(d) back to back")
        meter = CpuMeter([service_pid] if service_pid else [])
        sbx_meter = CpuMeter(descendants(service_pid) if service_pid else [])
        t = time.thread_time_ns()
        for _ in range(rounds // 2):
            cell_b(fast, bb)
        client_us = (time.thread_time_ns() - t) / (rounds // 2) / 1e3
        if service_pid:
            svc_us, svc_sw = meter.per(rounds // 2)
            sbx_us, sbx_sw = sbx_meter.per(rounds // 2)
            cpu["b_burst"] = (f"per (b) back to back: service {svc_us:.0f} us CPU, {svc_sw:.0f} "
                              f"context switches; sandbox {sbx_us:.0f} us CPU; client {client_us:.0f} us CPU")
        if jupyter and jupyter.pid:
            meter = CpuMeter([jupyter.pid])
            t = time.thread_time_ns()
            for _ in range(rounds // 2):
                cell_d(db)
            client_us = (time.thread_time_ns() - t) / (rounds // 2) / 1e3
            k_us, k_sw = meter.per(rounds // 2)
            cpu["d_burst"] = (f"per (d) back to back: kernel {k_us:.0f} us CPU, {k_sw:.0f} "
                              f"context switches; client (jupyter_client) {client_us:.0f} us CPU")

        # 3. After an idle gap (an agent thinking between cells): alternately (b) and (d),
        #    each after gap ms of sleep, so every request finds the machine idle.
        bi = results["b_idle"] = Samples(f"(b) after a {args.gap_ms:g} ms idle gap [{fast_name}]")
        di = results["d_idle"] = Samples(f"(d) after a {args.gap_ms:g} ms idle gap")
        ri = results["ready_idle"] = Samples(f"    floor: GET /ready after a {args.gap_ms:g} ms idle gap")
        loads["idle"] = load_line()
        meter = CpuMeter([service_pid] if service_pid else [])
        kmeter = CpuMeter([jupyter.pid] if jupyter and jupyter.pid else [])
        for i in range(idle_rounds):
            time.sleep(gap)
            cell_b(fast, bi)
            if jupyter:
                time.sleep(gap)
                cell_d(di)
            time.sleep(gap)
            floor("/ready", 200, ri)
        if service_pid:
            svc_us, svc_sw = meter.per(idle_rounds)
            cpu["b_idle"] = (f"per (b) after a gap: service {svc_us:.0f} us CPU, {svc_sw:.0f} context "
                             f"switches (the request and the {(3 if jupyter else 2) * args.gap_ms:g} ms until the next)")
        if jupyter and jupyter.pid:
            k_us, k_sw = kmeter.per(idle_rounds)
            cpu["d_idle"] = (f"per (d) after a gap: kernel {k_us:.0f} us CPU, {k_sw:.0f} context "
                             f"switches (the same stretch)")
        loads["stateful end"] = load_line()

        # Every cell ran exactly once: x counts them.
        payload = client.json_ok("POST", cell_path, {"code": "x"}, 200)
        got = [r.get("text") for r in check_cell(payload, "x")["results"]]
        if got != [str(sandbox_cells)]:
            notes.append(f"sandbox x = {got}, expected {sandbox_cells}")
        if jupyter and jupyter.value("x") != str(jupyter_cells):
            notes.append(f"jupyter x = {jupyter.value('x')!r}, expected {jupyter_cells}")
        client.json_ok("DELETE", f"/sandboxes/{sandbox_id}", None, 204)
        sandbox_id = None
        runner.close()
        runner = None
        if jupyter:
            jupyter.close()
            jupyter = None

        # ------------------------------------------------ one-shot: (a), (a'), (c)
        a = results["a"] = Samples(f"(a) POST /execute print('hi'), pool refilled [{fast_name}]")
        a2 = results["a2"] = Samples("(a') POST /execute print('hi'), back to back")
        c = results["c"] = Samples("(c) python3 -c \"print('hi')\" spawn (subprocess.run)")
        loads["one-shot"] = load_line()
        refill_misses = oneshot_rounds(client, fast, args.pool_size, oneshot_rounds_n, oneshot_warmup, a, c)
        for i in range(oneshot_warmup + oneshot_rounds_n):
            ns = oneshot(fast)
            if i >= oneshot_warmup:
                a2.add_ns(ns)
        loads["end"] = load_line()
        if refill_misses:
            notes.append(f"{refill_misses} one-shot rounds did not see the pool refilled within 10 s")
    finally:
        if sandbox_id:
            try:
                client.call("DELETE", f"/sandboxes/{sandbox_id}")
            except SystemExit:
                pass
        if runner:
            runner.close()
        if jupyter:
            jupyter.close()
        if service:
            service.stop()

    # ------------------------------------------------------------------ report
    header = f"{'scenario':58} {'median ms':>9} {'p95 ms':>9} {'min ms':>9} {'n':>5}"
    print()
    print(f"== stateful, interleaved round by round ({loads['interleaved']})")
    print(header)
    for key in ("b", "b_py", "d", "404", "ready", "runner"):
        if results[key].ms or key != "b_py":
            print(results[key].row())
    print()
    print("== stateful, back to back / after an idle gap")
    print(f"   idle phase start: {loads['idle']}")
    print(header)
    for key in ("b_burst", "d_burst", "b_idle", "d_idle", "ready_idle"):
        print(results[key].row())
    for key in ("b_burst", "d_burst", "b_idle", "d_idle"):
        if key in cpu:
            print("  " + cpu[key])
    print()
    print(f"== one-shot ({loads['one-shot']})")
    print(header)
    for key in ("a", "a2", "c"):
        print(results[key].row())
    print(f"   end: {loads['end']}")

    print()
    print("== ratios and targets")
    has_d = bool(results["d"].ms)
    for label, bk, dk in (("interleaved", "b", "d"), ("back to back", "b_burst", "d_burst"),
                          (f"after {args.gap_ms:g} ms idle", "b_idle", "d_idle")):
        bm = results[bk].median
        line = f"  {label:18} (b) median {bm:.3f} ms <= 1 ms: {verdict(bm <= 1.0):8}"
        if has_d and results[dk].ms:
            ratio = results[dk].median / bm
            line += f"  (d)/(b) = {ratio:5.2f}x >= 3x: {verdict(ratio >= 3)}"
        print(line)
    if results["b_py"].ms:
        bm = results["b_py"].median
        print(f"  {'interleaved':18} (b) through http.client: median {bm:.3f} ms <= 1 ms: {verdict(bm <= 1.0)}"
              + (f"  (d)/(b) = {results['d'].median / bm:.2f}x" if has_d else ""))
    if not has_d:
        print("  (d): not measured (--no-jupyter)")
    am, cm = results["a"].median, results["c"].median
    print(f"  (a)/(c) = {am / cm:.2f}x <= 1x: {verdict(am <= cm)}  "
          f"(p95: {percentile(results['a'].ms, 95) / percentile(results['c'].ms, 95):.2f}x); "
          f"(a')/(c) = {results['a2'].median / cm:.2f}x (back to back, pool not waited for)")
    bm = results["b"].median
    hops = bm - results["ready"].median - results["runner"].median
    print(f"  (b) - GET /ready - direct runner = {hops:.3f} ms (interleaved medians): what the "
          "sandbox path adds beyond HTTP and the runner's own work")
    idle_extra = results["b_idle"].median - results["b"].median
    ready_extra = results["ready_idle"].median - results["ready"].median
    print(f"  an idle gap adds {idle_extra:.3f} ms to (b) and {ready_extra:.3f} ms to GET /ready "
          "(the wake-up of idle threads and CPUs on each hop)")
    if client.reconnects:
        notes.append(f"http.client re-opened its connection {client.reconnects} times (keep-alive broke)")
    if curl and curl.connects > 1:
        notes.append(f"pycurl opened {curl.connects} connections (keep-alive broke)")
    for note in notes:
        print(f"  NOTE: {note}")


if __name__ == "__main__":
    main()
