"""2. A warm stateful cell, POST /sandboxes/{id}/execute `x = x + 1`, against the same
cell on a local Jupyter kernel (Debian's ipykernel + jupyter_client), interleaved
round by round. bench/stateful_latency.py takes this apart further (floors, CPU)."""

from __future__ import annotations

import json

from lib.context import Context
from lib.kernels import Jupyter
from lib.report import Row
from lib.service import Client, CurlClient, check_cell
from lib.stats import Samples

TITLE = "warm stateful execute x = x + 1 vs a Jupyter kernel"
CELL = "x = x + 1"


def run(ctx: Context) -> list[Row]:
    rounds = 50 if ctx.quick else 300
    warmup = 10
    sandbox, jupyter = Samples("sandbox"), Samples("jupyter")
    with ctx.service() as service:
        control = Client("127.0.0.1", service.port, service)
        fast = CurlClient("127.0.0.1", service.port, service)  # libcurl: the leanest client
        sandbox_id = control.json_ok("POST", "/sandboxes", {"language": "python"}, 201)["sandboxId"]
        path = f"/sandboxes/{sandbox_id}/execute"
        check_cell(control.json_ok("POST", path, {"code": "x = 0"}, 200), "x = 0")
        kernel = Jupyter()
        try:
            kernel.cell("x = 0")
            body = json.dumps({"code": CELL}).encode()
            for i in range(warmup + rounds):
                status, payload, ns_sandbox = fast.call("POST", path, body)
                if status != 200:
                    raise SystemExit(f"POST {path}: {status} {payload}")
                check_cell(payload, CELL)
                ns_jupyter, _ = kernel.cell(CELL)
                if i >= warmup:
                    sandbox.add_ns(ns_sandbox)
                    jupyter.add_ns(ns_jupyter)
            # Every cell ran exactly once in both.
            got = check_cell(control.json_ok("POST", path, {"code": "x"}, 200), "x")["results"]
            if [r.get("text") for r in got] != [str(warmup + rounds)] or \
                    kernel.value("x") != str(warmup + rounds):
                ctx.note("2", f"x is not {warmup + rounds} after as many cells")
        finally:
            kernel.close()
        control.json_ok("DELETE", f"/sandboxes/{sandbox_id}", None, 204)
        peak = service.peak_rss_kib()

    ratio = jupyter.median / sandbox.median
    return [
        Row.timed("2", "baseline: Jupyter kernel round trip", jupyter.ms),
        Row.timed("2", "POST /sandboxes/{id}/execute (pycurl)", sandbox.ms, peak_rss_kib=peak,
                  baseline=jupyter.median, ratio=ratio,
                  target="median <= 1 ms; Jupyter/this >= 3x",
                  met=sandbox.median <= 1.0 and ratio >= 3),
    ]
