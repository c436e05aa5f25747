"""What the service is compared against: the Python runner over pipes (no service, no
sandbox), a local Jupyter kernel, and a bare interpreter spawn."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import struct
import subprocess
import tempfile
import time
from pathlib import Path

from lib.machine import PYTHON, ROOT


class DirectRunner:
    """python_runner.py over pipes (fd 3 requests, fd 4 events), outside any sandbox."""

    def __init__(self, runner_dir: Path) -> None:
        req_r, self.req_w = os.pipe()
        self.ev_r, ev_w = os.pipe()
        self.home = home = tempfile.mkdtemp(prefix="codeexec-bench-runner-")

        def fds() -> None:
            # Above 10 first: the pipes (or subprocess's own) may sit on 3 and 4.
            high_r = fcntl.fcntl(req_r, fcntl.F_DUPFD, 10)
            high_w = fcntl.fcntl(ev_w, fcntl.F_DUPFD, 10)
            os.dup2(high_r, 3)  # inheritable
            os.dup2(high_w, 4)

        self.proc = subprocess.Popen(
            [PYTHON, "-I", "-u", str((runner_dir / "python_runner.py").resolve())], preexec_fn=fds,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            cwd=home, close_fds=False)
        os.close(req_r)
        os.close(ev_w)
        self.buf = b""
        first = self.event()
        if first.get("type") != "ready":
            raise SystemExit(f"runner: expected ready, got {first}")
        self.count = 0

    def event(self) -> dict:
        while True:
            if len(self.buf) >= 4:
                (size,) = struct.unpack(">I", self.buf[:4])
                if len(self.buf) >= 4 + size:
                    frame, self.buf = self.buf[4:4 + size], self.buf[4 + size:]
                    return json.loads(frame)
            chunk = os.read(self.ev_r, 1 << 16)
            if not chunk:
                raise SystemExit("runner exited")
            self.buf += chunk

    def cell(self, code: str) -> tuple[int, list[dict]]:
        self.count += 1
        payload = json.dumps({"op": "exec", "id": f"c{self.count}", "code": code}).encode()
        start = time.perf_counter_ns()
        os.write(self.req_w, struct.pack(">I", len(payload)) + payload)
        events = []
        while True:
            ev = self.event()
            events.append(ev)
            if ev.get("type") == "end":
                break
        elapsed = time.perf_counter_ns() - start
        if events[-1].get("status") not in ("ok", None) or any(e.get("type") == "error" for e in events):
            raise SystemExit(f"runner: cell {code!r} failed: {events}")
        return elapsed, events

    def close(self) -> None:
        os.close(self.req_w)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        os.close(self.ev_r)
        shutil.rmtree(self.home, ignore_errors=True)


class Jupyter:
    """A local ipykernel driven by jupyter_client, as a Jupyter-based service does per cell."""

    def __init__(self) -> None:
        from jupyter_client.manager import KernelManager  # python3-jupyter-client
        os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
        self.km = KernelManager(kernel_name="python3")
        self.km.start_kernel(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)

    @property
    def pid(self) -> int | None:
        provisioner = getattr(self.km, "provisioner", None)
        process = getattr(provisioner, "process", None) or getattr(self.km, "kernel", None)
        return getattr(process, "pid", None)

    def cell(self, code: str) -> tuple[int, list[dict]]:
        start = time.perf_counter_ns()
        msg_id = self.kc.execute(code)
        outputs = []
        while True:
            msg = self.kc.get_iopub_msg(timeout=30)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
            outputs.append(msg)
        while True:
            reply = self.kc.get_shell_msg(timeout=30)
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        elapsed = time.perf_counter_ns() - start
        if reply["content"]["status"] != "ok":
            raise SystemExit(f"jupyter: cell {code!r} failed: {reply['content']}")
        return elapsed, outputs

    def value(self, expr: str) -> str:
        _, outputs = self.cell(expr)
        for msg in outputs:
            if msg["msg_type"] == "execute_result":
                return msg["content"]["data"]["text/plain"]
        return ""

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


def spawn_python() -> int:
    start = time.perf_counter_ns()
    out = subprocess.run([PYTHON, "-c", "print('hi')"], capture_output=True, check=True).stdout
    elapsed = time.perf_counter_ns() - start
    if out != b"hi\n":
        raise SystemExit(f"python3 -c: unexpected output {out!r}")
    return elapsed


def runner_dir(binary: Path) -> Path:
    """The runners installed beside the binary, else the source tree's."""
    built = binary.parent / "runners"
    return built if (built / "python_runner.py").exists() else ROOT / "sandbox" / "runners"


def runner_start(directory: Path) -> int:
    """ns to start a bare python_runner.py (no service, no sandbox) and run print('hi'):
    the floor of a sandbox that starts its kernel on the request path."""
    start = time.perf_counter_ns()
    runner = DirectRunner(directory)
    runner.cell("print('hi')")
    elapsed = time.perf_counter_ns() - start
    runner.close()
    return elapsed
