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
import fcntl
import http.client
import io
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
JSON_HEADERS = {"Content-Type": "application/json"}
PYTHON = "/usr/bin/python3"


# ---------------------------------------------------------------------------- stats

def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


class Samples:
    def __init__(self, name: str) -> None:
        self.name = name
        self.ms: list[float] = []

    def add_ns(self, ns: int) -> None:
        self.ms.append(ns / 1e6)

    @property
    def median(self) -> float:
        return statistics.median(self.ms)

    def row(self) -> str:
        if not self.ms:
            return f"{self.name:58} {'-':>9} {'-':>9} {'-':>9} {0:>5}"
        return (f"{self.name:58} {self.median:9.3f} {percentile(self.ms, 95):9.3f} "
                f"{min(self.ms):9.3f} {len(self.ms):>5}")


# ---------------------------------------------------------------------------- machine

def machine_facts() -> list[str]:
    facts = []
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    facts.append(f"cpus: {os.cpu_count()} online, {len(os.sched_getaffinity(0))} usable; {model}")
    facts.append(f"kernel: {platform.release()}; python {platform.python_version()}")
    facts.append(load_line())
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        facts.append(f"codeexec commit: {commit}{' (+ uncommitted changes)' if dirty else ''}")
    except (OSError, subprocess.SubprocessError):
        pass
    return facts


def load_line() -> str:
    one, five, fifteen = os.getloadavg()
    running = "?"
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("procs_running"):
                running = line.split()[1]
    except OSError:
        pass
    psi = ""
    try:
        some = Path("/proc/pressure/cpu").read_text().splitlines()[0]
        psi = "; cpu pressure " + " ".join(some.split()[1:3])
    except (OSError, IndexError):
        pass
    return f"load average: {one:.2f} {five:.2f} {fifteen:.2f}; procs running now: {running}{psi}"


def task_times(pids: list[int]) -> tuple[int, int]:
    """Summed on-CPU time (ns, from schedstat) and context switches of every thread of
    these processes."""
    cpu = switches = 0
    for pid in pids:
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                cpu += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
                for line in Path(f"/proc/{pid}/task/{tid}/status").read_text().splitlines():
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        switches += int(line.split()[1])
            except (OSError, ValueError, IndexError):
                continue
    return cpu, switches


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        except (OSError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


# ---------------------------------------------------------------------------- service

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Service:
    def __init__(self, binary: Path, pool_size: int, log_level: str) -> None:
        self.port = free_port()
        self.log = tempfile.NamedTemporaryFile(prefix="codeexec-bench-", suffix=".log", delete=False)
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PORT": str(self.port),
               "HOST": "127.0.0.1", "LOG_LEVEL": log_level,
               "WARM_POOL_SIZE": str(pool_size), "WARM_POOL_LANGUAGES": "python"}
        self.proc = subprocess.Popen([str(binary)], env=env, stdout=subprocess.DEVNULL,
                                     stderr=self.log)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"service exited early with {self.proc.returncode}; "
                                 f"log: {self.log.name}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/health")
                if conn.getresponse().status == 200:
                    conn.close()
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise SystemExit("service did not answer /health within 60 s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        if self.proc.returncode in (0, -signal.SIGTERM):
            os.unlink(self.log.name)  # kept when the service failed, for its log
        else:
            print(f"  NOTE: the service exited with {self.proc.returncode}; log: {self.log.name}")

    def alive(self) -> bool:
        return self.proc.poll() is None


class Client:
    """One keep-alive connection; counts reconnects (there should be none)."""

    def __init__(self, host: str, port: int, service: Service | None) -> None:
        self.conn = http.client.HTTPConnection(host, port, timeout=60)
        self.conn.connect()
        self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = self.conn.sock
        self.reconnects = 0
        self.service = service

    def call(self, method: str, path: str, body: bytes | None = None) -> tuple[int, object, int]:
        """(status, decoded JSON or text, elapsed ns) of one request."""
        try:
            start = time.perf_counter_ns()
            self.conn.request(method, path, body, JSON_HEADERS if body is not None else {})
            response = self.conn.getresponse()
            raw = response.read()
            elapsed = time.perf_counter_ns() - start
        except (OSError, http.client.HTTPException) as e:
            if self.service and not self.service.alive():
                raise SystemExit(f"{method} {path}: the service died (exit "
                                 f"{self.service.proc.returncode}); log: {self.service.log.name}")
            raise SystemExit(f"{method} {path}: {e!r}")
        if self.conn.sock is not self.sock:
            self.reconnects += 1
            self.sock = self.conn.sock
        ctype = response.getheader("Content-Type", "")
        payload = json.loads(raw) if raw and "json" in ctype else raw.decode(errors="replace")
        return response.status, payload, elapsed

    def json_ok(self, method: str, path: str, body: object | None, want: int) -> object:
        status, payload, _ = self.call(method, path, None if body is None else json.dumps(body).encode())
        if status != want:
            raise SystemExit(f"{method} {path}: expected {want}, got {status} {payload}")
        return payload

    def pool(self) -> int:
        return self.json_ok("GET", "/health", None, 200)["sandboxes"].get("pooled", 0)

    def sandboxes_ready(self) -> int:
        """How many sandboxes have reported their kernel ready since the start."""
        _, text, _ = self.call("GET", "/metrics")
        m = re.search(r"^codeexec_sandbox_start_seconds_count(?:\{\})?\s+([0-9.e+]+)", text, re.M)
        return int(float(m.group(1))) if m else 0


class CurlClient:
    """The same calls through pycurl (libcurl, one handle reused: one keep-alive
    connection), whose per-request client cost is a fraction of http.client's."""

    def __init__(self, host: str, port: int, service: Service | None) -> None:
        import pycurl  # python3-pycurl (scripts/deps --test)
        self.pycurl = pycurl
        self.base = f"http://{host}:{port}"
        self.curl = pycurl.Curl()
        self.buf = io.BytesIO()
        self.headers: list[bytes] = []
        self.curl.setopt(pycurl.WRITEDATA, self.buf)
        self.curl.setopt(pycurl.HEADERFUNCTION, self.headers.append)
        self.curl.setopt(pycurl.TCP_NODELAY, 1)
        self.curl.setopt(pycurl.HTTPHEADER, ["Content-Type: application/json", "Expect:"])
        self.curl.setopt(pycurl.TIMEOUT, 60)
        self.connects = 0
        self.service = service

    def call(self, method: str, path: str, body: bytes | None = None) -> tuple[int, object, int]:
        pycurl = self.pycurl
        self.buf.seek(0)
        self.buf.truncate()
        self.headers.clear()
        self.curl.setopt(pycurl.URL, self.base + path)
        if method == "GET":
            self.curl.unsetopt(pycurl.CUSTOMREQUEST)
            self.curl.setopt(pycurl.HTTPGET, 1)
        else:
            self.curl.setopt(pycurl.POSTFIELDS, body or b"")
            self.curl.setopt(pycurl.CUSTOMREQUEST, method)
        try:
            start = time.perf_counter_ns()
            self.curl.perform()
            elapsed = time.perf_counter_ns() - start
        except pycurl.error as e:
            if self.service and not self.service.alive():
                raise SystemExit(f"{method} {path}: the service died (exit "
                                 f"{self.service.proc.returncode}); log: {self.service.log.name}")
            raise SystemExit(f"{method} {path}: {e!r}")
        self.connects += self.curl.getinfo(pycurl.NUM_CONNECTS)
        raw = self.buf.getvalue()
        json_body = any(h.lower().startswith(b"content-type:") and b"json" in h.lower()
                        for h in self.headers)
        payload = json.loads(raw) if raw and json_body else raw.decode(errors="replace")
        return self.curl.getinfo(pycurl.RESPONSE_CODE), payload, elapsed


def wait_pool(client: Client, target: int, ready_at_least: int, timeout: float = 30) -> bool:
    """Waits until `target` sandboxes are pooled and `ready_at_least` sandboxes have
    reported ready (so the pooled ones are not still starting their kernel)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.pool() >= target and client.sandboxes_ready() >= ready_at_least:
            return True
        time.sleep(0.005)
    return False


# ---------------------------------------------------------------------------- scenarios

def check_cell(payload: object, what: str) -> dict:
    result = payload.get("result") if isinstance(payload, dict) else None
    if not result or result.get("status") != "ok" or result.get("error"):
        raise SystemExit(f"{what}: unexpected answer {payload}")
    return result


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


def oneshot(client: Client) -> int:
    body = json.dumps({"code": "print('hi')", "language": "python"}).encode()
    status, payload, elapsed = client.call("POST", "/execute", body)
    result = check_cell(payload, f"POST /execute ({status})")
    if status != 200 or result["logs"]["stdout"] != ["hi\n"]:
        raise SystemExit(f"POST /execute: unexpected answer {status} {payload}")
    return elapsed


# ---------------------------------------------------------------------------- main

def verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


class CpuMeter:
    """On-CPU time and context switches of some processes over a stretch of the run."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.start = task_times(pids)

    def per(self, n: int) -> tuple[float, float]:
        """(us of CPU, context switches) per one of n operations since the start."""
        cpu, switches = task_times(self.pids)
        return (cpu - self.start[0]) / n / 1e3, (switches - self.start[1]) / n


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
    oneshot_rounds = args.oneshot_rounds or (10 if args.quick else 50)
    warmup = args.warmup if args.warmup is not None else (5 if args.quick else 20)
    oneshot_warmup = min(3, warmup)
    gap = args.gap_ms / 1000

    print("== machine")
    for fact in machine_facts():
        print("  " + fact)
    if os.getloadavg()[0] > (os.cpu_count() or 1):
        print(f"  WARNING: the 1-min load average exceeds the {os.cpu_count()} cores: other work "
              "competes for the CPU and the numbers below are inflated; rerun when idle.")

    service = None
    if args.url:
        host, _, port_text = args.url.removeprefix("http://").rstrip("/").partition(":")
        port = int(port_text or 80)
    else:
        if not args.binary.exists():
            sys.exit(f"{args.binary} not found: scripts/bench builds it (or scripts/build "
                     "build-bench -DCMAKE_BUILD_TYPE=Release)")
        service = Service(args.binary, args.pool_size, args.log_level)
        host, port = "127.0.0.1", service.port
    runner_dir = args.binary.parent / "runners"
    if not (runner_dir / "python_runner.py").exists():
        runner_dir = ROOT / "sandbox" / "runners"
    print(f"  service: {args.url or args.binary} (port {port}, WARM_POOL_SIZE={args.pool_size}, "
          f"WARM_POOL_LANGUAGES=python, LOG_LEVEL={args.log_level})")
    print(f"  rounds: {rounds} interleaved + {rounds // 2} back to back (+{warmup} warm-up), "
          f"{idle_rounds} after a {args.gap_ms:g} ms idle gap, {oneshot_rounds} one-shot "
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
        runner = DirectRunner(runner_dir)
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
        refill_misses = 0
        loads["one-shot"] = load_line()
        for i in range(oneshot_warmup + oneshot_rounds):
            keep = i >= oneshot_warmup
            ready = client.sandboxes_ready()
            ns_c = spawn_python()
            ns_a = oneshot(fast)
            # Untimed: the pool refills the sandbox (a) took; its kernel must be up.
            if not wait_pool(client, args.pool_size, ready + 1, timeout=10):
                refill_misses += 1
            if keep:
                c.add_ns(ns_c)
                a.add_ns(ns_a)
        for i in range(oneshot_warmup + oneshot_rounds):
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
