"""6. Idle scale: 10,000 connected idle WebSocket clients (one clientId each); the
service's resident memory per client, (VmRSS with them - VmRSS before) / clients. No
baseline process: the target is the yardstick."""

from __future__ import annotations

import asyncio
import time

from lib import ws
from lib.context import POOL_SIZE, Context
from lib.report import Row
from lib.service import Client, wait_pool

TITLE = "10,000 idle WebSocket clients: service RSS per client"


def connected(control: Client) -> int:
    return control.json_ok("GET", "/health", None, 200)["clients"]["connected"]


def wait_connected(control: Client, want: int, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while (now := connected(control)) != want and time.monotonic() < deadline:
        time.sleep(0.1)
    return now


async def hold_idle(port: int, clients: int, measure) -> float:
    """Connects the clients, calls measure() while they are all open, closes them;
    returns the seconds the connects took."""
    start = time.monotonic()
    sockets = await ws.connect_many(port, [f"idle-{i}" for i in range(clients)], batch=500)
    seconds = time.monotonic() - start
    try:
        await asyncio.to_thread(measure)
    finally:
        await asyncio.gather(*(s.close() for s in sockets))
    return seconds


def run(ctx: Context) -> list[Row]:
    clients = 2000 if ctx.quick else 10_000
    with ctx.service() as service:
        control = Client("127.0.0.1", service.port, service)
        wait_pool(control, POOL_SIZE, POOL_SIZE)
        time.sleep(1)  # the pool's kernels settle
        before = service.rss_kib()
        with_clients = 0

        def measure() -> None:
            nonlocal with_clients
            if wait_connected(control, clients) != clients:
                ctx.note("6", f"/health counts {connected(control)} clients, not {clients}")
            time.sleep(2)  # sessions' first pings, allocator settling
            with_clients = service.rss_kib()

        connect_seconds = asyncio.run(hold_idle(service.port, clients, measure))
        left = wait_connected(control, 0)
        after = service.rss_kib()
        peak = service.peak_rss_kib()
    if left:
        ctx.note("6", f"{left} clients still counted after all closed")
    per_client = (with_clients - before) / clients
    print(f"  service VmRSS: {before} KiB before, {with_clients} KiB with {clients} clients, "
          f"{after} KiB after they closed")
    return [Row("6", f"RSS per idle WebSocket ({clients} clients)", unit="KiB", median=per_client,
                throughput=clients / connect_seconds, throughput_unit="conn/s", peak_rss_kib=peak,
                target="<= 16 KiB per client", met=per_client <= 16)]
