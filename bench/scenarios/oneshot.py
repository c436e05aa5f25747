"""1. One-shot POST /execute print('hi'), sequential, against a bare `python3 -c` spawn:
without a warm pool (every request starts a sandbox), the same with its kernel forked
from the zygote (ZYGOTE=auto), and from a full warm pool."""

from __future__ import annotations

from lib.context import POOL_SIZE, Context
from lib.kernels import runner_dir, runner_start, spawn_python
from lib.report import Row
from lib.service import (Client, CurlClient, oneshot, oneshot_rounds, wait_pool, wait_zygote,
                         zygote_counts)
from lib.stats import Samples

TITLE = "one-shot POST /execute print('hi'), sequential"


def run(ctx: Context) -> list[Row]:
    rounds = 10 if ctx.quick else 50
    warmup = 3
    spawn = Samples("spawn")

    # Without a pool: every request clones, sets up and starts a sandbox, alternating
    # with a bare spawn so that load drifts hit both alike.
    # The bare kernel start (python_runner.py over pipes) tells the kernel's own share.
    cold, kernel = Samples("cold"), Samples("kernel")
    runners = runner_dir(ctx.binary)
    with ctx.service(WARM_POOL_SIZE="0") as service:
        fast = CurlClient("127.0.0.1", service.port, service)
        for i in range(warmup + rounds):
            ns_spawn, ns_cold, ns_kernel = spawn_python(), oneshot(fast), runner_start(runners)
            if i >= warmup:
                spawn.add_ns(ns_spawn)
                cold.add_ns(ns_cold)
                kernel.add_ns(ns_kernel)
        cold_rss = service.peak_rss_kib()

    # Without a pool, every kernel forked from the zygote, again beside bare spawns.
    zygote, zspawn = Samples("zygote"), Samples("spawn")
    with ctx.service(WARM_POOL_SIZE="0", ZYGOTE="auto") as service:
        control = Client("127.0.0.1", service.port, service)
        if not wait_zygote(control):
            ctx.note("1", "the zygote did not become ready within 60 s")
        fast = CurlClient("127.0.0.1", service.port, service)
        for i in range(warmup + rounds):
            ns_spawn, ns_zygote = spawn_python(), oneshot(fast)
            if i >= warmup:
                zspawn.add_ns(ns_spawn)
                zygote.add_ns(ns_zygote)
        counts = zygote_counts(control)
        if counts.get("fallbacks"):
            ctx.note("1", f"zygote: {counts['fallbacks']} launches took the exec path ({counts})")
        zygote_rss = service.peak_rss_kib()

    # From the pool: refilled (and its kernel ready) before each request, then back to
    # back, a client in a loop that does not leave the pool time to refill.
    warm, back_to_back = Samples("warm"), Samples("back to back")
    with ctx.service() as service:
        control = Client("127.0.0.1", service.port, service)
        fast = CurlClient("127.0.0.1", service.port, service)
        if not wait_pool(control, POOL_SIZE, POOL_SIZE):
            ctx.note("1", "the warm pool did not fill within 30 s")
        misses = oneshot_rounds(control, fast, POOL_SIZE, rounds, warmup, warm, spawn)
        if misses:
            ctx.note("1", f"{misses} rounds did not see the pool refilled within 10 s")
        for i in range(warmup + rounds):
            ns = oneshot(fast)
            if i >= warmup:
                back_to_back.add_ns(ns)
        warm_rss = service.peak_rss_kib()

    base = spawn.median
    return [
        Row.timed("1", "baseline: python3 -c spawn (subprocess.run)", spawn.ms),
        Row.timed("1", "floor: bare python_runner.py start + cell", kernel.ms, baseline=base,
                  ratio=kernel.median / base),
        Row.timed("1", "no warm pool (WARM_POOL_SIZE=0)", cold.ms, peak_rss_kib=cold_rss,
                  baseline=base, ratio=cold.median / base, target="median <= 1.5x spawn",
                  met=cold.median <= 1.5 * base),
        Row.timed("1", "no warm pool, kernels forked from the zygote (ZYGOTE=auto)", zygote.ms,
                  peak_rss_kib=zygote_rss, baseline=zspawn.median,
                  ratio=zygote.median / zspawn.median, target="median <= 1.0x spawn (#17)",
                  met=zygote.median <= zspawn.median),
        Row.timed("1", "warm pool, refilled before each", warm.ms, peak_rss_kib=warm_rss,
                  baseline=base, ratio=warm.median / base, target="median <= 1.0x spawn",
                  met=warm.median <= base),
        Row.timed("1", "warm pool, back to back (no refill wait)", back_to_back.ms,
                  peak_rss_kib=warm_rss, baseline=base, ratio=back_to_back.median / base),
    ]
