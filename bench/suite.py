#!/usr/bin/python3
"""The benchmark suite of issue #7: every scenario against a freshly started service,
each beside its baseline measured in the same run, in one table.

    bench/suite.py [--binary build-bench/codeexec] [--quick] [--soak] [--soak-minutes N]
                   [--only 3,4] [--json FILE] [--markdown FILE]

scripts/bench installs what it needs, builds Release into build-bench/ and runs it.
Scenarios (bench/README.md says how each is measured and against what):
  1 one-shot POST /execute, sequential, vs python3 -c     5 fan-out to 1,000 WebSockets
  2 warm stateful execute vs a Jupyter kernel             6 10,000 idle WebSockets: RSS
  3 one-shot throughput at concurrency 16 (wrk)           7 200 live Python sandboxes
  4 streaming latency, print to WebSocket receipt         8 soak: 1-4 together (--soak)
Targets are printed as MET / NOT MET, never asserted.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from pathlib import Path

from lib import report
from lib.context import BENCH_ENV, Context
from lib.machine import ROOT, load_line, machine_facts, print_header, raise_nofile

SCENARIOS = {"1": "oneshot", "2": "stateful", "3": "throughput", "4": "streaming",
             "5": "fanout", "6": "idle", "7": "sandboxes", "8": "soak"}
# 10,000 idle sockets (scenario 6) in this process and as many in the service, which
# inherits this limit, plus the sandboxes' fds.
NOFILE = 65536


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", type=Path, default=ROOT / "build-bench" / "codeexec")
    parser.add_argument("--quick", action="store_true",
                        help="fewer rounds and smaller counts (under 2 minutes)")
    parser.add_argument("--soak", action="store_true", help="add scenario 8 (10 minutes)")
    parser.add_argument("--soak-minutes", type=float, default=10,
                        help="length of the soak (10); implies --soak")
    parser.add_argument("--only", help="comma-separated scenario numbers, e.g. 3,4")
    parser.add_argument("--json", type=Path, help="also write the table as JSON here "
                        "(default: bench-report.json beside the binary)")
    parser.add_argument("--markdown", type=Path, help="and as Markdown (default: "
                        "bench-report.md beside the binary)")
    args = parser.parse_args()
    soak = args.soak or "--soak-minutes" in " ".join(sys.argv)
    if args.only:
        chosen = [s.strip() for s in args.only.split(",") if s.strip()]
        unknown = [s for s in chosen if s not in SCENARIOS]
        if unknown:
            parser.error(f"unknown scenarios {unknown}; they are 1-8")
    else:
        chosen = [s for s in SCENARIOS if s != "8" or soak]
    if os.geteuid() != 0:
        sys.exit("the service needs root (namespaces, cgroups, uid maps)")
    if not args.binary.exists():
        sys.exit(f"{args.binary} not found: scripts/bench builds it")

    nofile = raise_nofile(NOFILE)
    print_header()
    header = machine_facts()
    env_text = " ".join(f"{k}={v}" for k, v in BENCH_ENV.items())
    print(f"  service: {args.binary}; a fresh instance per scenario with {env_text}; "
          f"RLIMIT_NOFILE {nofile}")
    print(f"  mode: {'quick' if args.quick else 'full'}; scenarios {','.join(chosen)}")
    header.append(f"service env: {env_text}; RLIMIT_NOFILE {nofile}")
    header.append(f"mode: {'quick' if args.quick else 'full'}")

    ctx = Context(args.binary, args.quick, args.soak_minutes * 60)
    rows: list[report.Row] = []
    started = time.monotonic()
    for number in chosen:
        module = importlib.import_module(f"scenarios.{SCENARIOS[number]}")
        print(f"\n== {number}. {module.TITLE} ({load_line()})", flush=True)
        t = time.monotonic()
        scenario_rows = module.run(ctx)
        print(report.text_table(scenario_rows))
        print(f"   {time.monotonic() - t:.0f} s", flush=True)
        rows += scenario_rows
    elapsed = time.monotonic() - started

    header.append(f"end: {load_line()}; scenarios took {elapsed:.0f} s")
    print(f"\n== all scenarios ({elapsed:.0f} s; {load_line()})")
    print(report.text_table(rows))
    for note in ctx.notes:
        print(f"  NOTE {note}")
    out_dir = args.binary.parent
    json_path = args.json or out_dir / "bench-report.json"
    markdown_path = args.markdown or out_dir / "bench-report.md"
    report.write(rows, header, ctx.notes, json_path, markdown_path)
    print(f"  written: {json_path}, {markdown_path}")


if __name__ == "__main__":
    main()
