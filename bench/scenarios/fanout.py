"""5. Fan-out: 1,000 WebSocket subscribers, 100 on each of 10 clientIds, each clientId
running one stream cell at the same time; every socket must receive every line of its
clientId's execution, in order, and stay open. The baseline is one subscriber of one
stream cell, measured first in the same service."""

from __future__ import annotations

import asyncio
import resource

from lib import ws
from lib.context import Context
from lib.machine import task_times
from lib.report import Row
from lib.service import Client, wait_pool
from lib.stats import percentile

TITLE = "fan-out, 1,000 WebSocket subscribers receiving streams at once"
GROUPS = 10              # clientIds, each with one execution
SOCKETS_PER_GROUP = 100  # every socket of a clientId receives every event of it
# 10 lines/s per execution: 10,000 messages/s in all, which one Python client process
# keeps up with on 2 cores (at 50,000/s it is the bottleneck: 2.5 s of its CPU for 1 s
# of the service's, and the delays measure its backlog).
INTERVAL_MS = 100


async def fan_out(port: int, groups: int, per_group: int, code: str) -> tuple[list[ws.Received], float]:
    """(what each socket received, seconds from the first POST to the last socket done)."""
    client_ids = [f"fan-{g}" for g in range(groups) for _ in range(per_group)]
    sockets = await ws.connect_many(port, client_ids)
    try:
        receiving = [asyncio.create_task(ws.receive_stream(s)) for s in sockets]
        start = asyncio.get_running_loop().time()
        await asyncio.gather(*(ws.start_stream(port, f"fan-{g}", code) for g in range(groups)))
        received = await asyncio.wait_for(asyncio.gather(*receiving), timeout=120)
        return received, asyncio.get_running_loop().time() - start
    finally:
        await asyncio.gather(*(s.close() for s in sockets))


def run(ctx: Context) -> list[Row]:
    lines = 20 if ctx.quick else 50
    code = ws.stream_cell(lines, INTERVAL_MS)
    # A pool of one sandbox per execution: all start at once from it, so that the delays
    # measure the fan-out, not 8 sandboxes starting together (scenario 8 has that).
    with ctx.service(WARM_POOL_SIZE=str(GROUPS)) as service:
        wait_pool(Client("127.0.0.1", service.port, service), GROUPS, GROUPS)
        [single], _ = asyncio.run(fan_out(service.port, 1, 1, code))
        wait_pool(Client("127.0.0.1", service.port, service), GROUPS, GROUPS + 1)
        # CPU of each side: on 2 cores the client (Python) can bound the delays.
        service_cpu, client_cpu = task_times([service.pid])[0], resource.getrusage(resource.RUSAGE_SELF)
        received, seconds = asyncio.run(fan_out(service.port, GROUPS, SOCKETS_PER_GROUP, code))
        service_cpu = (task_times([service.pid])[0] - service_cpu) / 1e9
        usage = resource.getrusage(resource.RUSAGE_SELF)
        client_cpu = usage.ru_utime + usage.ru_stime - client_cpu.ru_utime - client_cpu.ru_stime
        peak = service.peak_rss_kib()
    sockets = GROUPS * SOCKETS_PER_GROUP
    lost = sum(lines - len(r.sequence) for r in received)
    disordered = sum(1 for r in received if not r.in_order(lines))
    closed = [r.closed for r in received if r.closed]
    failed = sum(r.failed for r in received)
    if lost or disordered or closed or failed:
        ctx.note("5", f"{lost} lines lost, {disordered} sockets out of order, {len(closed)} "
                      f"closed early ({closed[:3]}), {failed} failed executions")
    messages = sum(r.messages for r in received)
    print(f"  CPU over the {seconds:.1f} s of fan-out: service {service_cpu:.2f} s "
          f"({service_cpu / messages * 1e6:.1f} us per message delivered), this client "
          f"{client_cpu:.2f} s (connects included)")
    delays = [d for r in received for d in r.delays_ms]
    single_p99 = percentile(single.delays_ms, 99)
    p99 = percentile(delays, 99)
    ok = not (lost or disordered or closed or failed)
    return [
        Row.timed("5", "baseline: 1 subscriber, delay print -> receipt", single.delays_ms,
                  sequential=False),
        Row.timed("5", f"{sockets} subscribers ({GROUPS} x {SOCKETS_PER_GROUP}), {lost} lost, "
                       f"{len(closed)} closed", delays, sequential=False,
                  throughput=messages / seconds, throughput_unit="msg/s", peak_rss_kib=peak,
                  baseline=single_p99, ratio=p99 / single_p99,
                  target="0 lost, 0 disconnects (ratio of p99s)", met=ok),
    ]
