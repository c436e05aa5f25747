"""7. 200 live idle Python sandboxes: the memory each costs the machine and the latency
of a cell on the 200th (against the 1st while it was alone). Baseline for the memory:
as many bare Python runners (the same kernel, python_runner.py over pipes, no sandbox)."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from lib.context import Context
from lib.kernels import DirectRunner, runner_dir
from lib.machine import descendants, mem_available_kib, pss_kib
from lib.report import Row
from lib.service import Client, check_cell
from lib.stats import Samples

TITLE = "200 live idle Python sandboxes: memory each, execute on the 200th"
PARALLEL = 4  # creations and deletions in flight
CELL = "x = x + 1"


def bare_runners(directory: Path, count: int) -> tuple[float, float]:
    """(MemAvailable drop, summed PSS) per bare runner, KiB, with `count` of them live."""
    available = mem_available_kib()
    runners = [DirectRunner(directory) for _ in range(count)]
    try:
        for runner in runners:
            runner.cell("x = 0")
        time.sleep(1)
        drop = available - mem_available_kib()
        pss = sum(pss_kib(r.proc.pid) for r in runners)
    finally:
        for runner in runners:
            runner.close()
    return drop / count, pss / count


def cgroup_kib(pids: list[int]) -> int:
    """Summed memory usage of the memory cgroups these processes are in (kernel memory
    and the page cache charged to them included): cgroup v1's memory controller where
    it is mounted (this machine), else v2's."""
    files = set()
    for pid in pids:
        try:
            lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            _, controllers, path = line.split(":", 2)
            if "memory" in controllers.split(","):
                files.add(f"/sys/fs/cgroup/memory{path}/memory.usage_in_bytes")
                break
        else:
            files.add(f"/sys/fs/cgroup{lines[-1].split(':', 2)[2]}/memory.current")
    total = 0
    for name in files:
        try:
            total += int(Path(name).read_text())
        except (OSError, ValueError):
            pass
    return total // 1024


def cell_latency(client: Client, sandbox_id: str, rounds: int) -> Samples:
    samples = Samples(sandbox_id)
    path = f"/sandboxes/{sandbox_id}/execute"
    body = json.dumps({"code": CELL}).encode()
    check_cell(client.json_ok("POST", path, {"code": "x = 0"}, 200), "x = 0")
    for i in range(rounds + 3):
        status, payload, ns = client.call("POST", path, body)
        if status != 200:
            raise SystemExit(f"POST {path}: {status} {payload}")
        check_cell(payload, CELL)
        if i >= 3:
            samples.add_ns(ns)
    return samples


def run(ctx: Context) -> list[Row]:
    count = 50 if ctx.quick else 200
    rounds = 30 if ctx.quick else 100
    bare_drop, bare_pss = bare_runners(runner_dir(ctx.binary), count)

    # No warm pool: the live sandboxes are exactly the ones created here.
    with ctx.service(WARM_POOL_SIZE="0") as service:
        control = Client("127.0.0.1", service.port, service)
        time.sleep(1)
        available, service_rss = mem_available_kib(), service.rss_kib()

        def create(_: int) -> str:
            client = Client("127.0.0.1", service.port, service)
            return client.json_ok("POST", "/sandboxes", {"language": "python"}, 201)["sandboxId"]

        def delete(sandbox_id: str) -> None:
            Client("127.0.0.1", service.port, service).json_ok(
                "DELETE", f"/sandboxes/{sandbox_id}", None, 204)

        ids = [create(0)]
        first = cell_latency(control, ids[0], rounds)
        start = time.monotonic()
        with ThreadPoolExecutor(PARALLEL) as pool:
            ids += list(pool.map(create, range(count - 1)))
        create_rate = (count - 1) / (time.monotonic() - start)
        time.sleep(2)
        processes = descendants(service.pid)
        drop = (available - mem_available_kib()) / count
        service_delta = service.rss_kib() - service_rss
        pss = (sum(pss_kib(pid) for pid in processes) + service_delta) / count
        cgroup = cgroup_kib(processes) / count
        last = cell_latency(control, ids[-1], rounds)
        print(f"  {len(processes)} sandbox processes; service VmRSS +{service_delta} KiB; bare "
              f"runner PSS {bare_pss:.0f} KiB, MemAvailable drop {bare_drop:.0f} KiB each")
        with ThreadPoolExecutor(PARALLEL) as pool:
            list(pool.map(delete, ids))
        time.sleep(1)
        live = control.json_ok("GET", "/health", None, 200)["sandboxes"]["live"]
        left = descendants(service.pid)
        if live or left:
            ctx.note("7", f"after deleting all: {live} live sandboxes, {len(left)} processes left")
        peak = service.peak_rss_kib()

    mib = 1024
    return [
        Row("7", f"baseline: {count} bare python runners, PSS each", unit="MiB",
            median=bare_pss / mib),
        Row("7", f"{count} sandboxes: PSS per sandbox (+ service delta)", unit="MiB",
            median=pss / mib, throughput=create_rate, throughput_unit="created/s",
            peak_rss_kib=peak, baseline=bare_pss / mib, ratio=pss / bare_pss),
        Row("7", "  cgroup memory usage per sandbox", unit="MiB", median=cgroup / mib),
        Row("7", "  MemAvailable drop per sandbox (noisy)", unit="MiB", median=drop / mib,
            baseline=bare_drop / mib, ratio=drop / bare_drop),
        Row.timed("7", "baseline: execute x = x + 1 on the 1st, alone", first.ms),
        Row.timed("7", f"execute x = x + 1 on the {count}th of {count}", last.ms,
                  baseline=first.median, ratio=last.median / first.median),
    ]
