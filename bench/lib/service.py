"""The service under test (the binary started as a child on a free loopback port) and
HTTP clients that time one request each over one keep-alive connection."""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from lib import machine
from lib.kernels import spawn_python
from lib.stats import Samples

JSON_HEADERS = {"Content-Type": "application/json"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Service:
    """The binary, started with PORT (free), HOST=127.0.0.1 and `env`; stopped with
    SIGTERM. Its log (stderr) is kept in a temporary file when it exits badly."""

    def __init__(self, binary: Path, env: dict[str, str]) -> None:
        self.port = free_port()
        self.env = env
        self.log = tempfile.NamedTemporaryFile(prefix="codeexec-bench-", suffix=".log", delete=False)
        full_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PORT": str(self.port),
                    "HOST": "127.0.0.1", **env}
        self.proc = subprocess.Popen([str(binary)], env=full_env, stdout=subprocess.DEVNULL,
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

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss_kib(self) -> int:
        return machine.rss_kib(self.pid)

    def peak_rss_kib(self) -> int:
        return machine.peak_rss_kib(self.pid)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
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

    def __enter__(self) -> Service:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


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


def wait_zygote(client: Client, timeout: float = 60) -> bool:
    """Waits until the service's zygote (ZYGOTE=auto) reports ready."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (client.json_ok("GET", "/health", None, 200).get("zygote") or {}).get("state") == "ready":
            return True
        time.sleep(0.05)
    return False


def zygote_counts(client: Client) -> dict:
    """/health's zygote object (forks, fallbacks, starts...), {} without one."""
    return client.json_ok("GET", "/health", None, 200).get("zygote") or {}


def wait_pool(client: Client, target: int, ready_at_least: int, timeout: float = 30) -> bool:
    """Waits until `target` sandboxes are pooled and `ready_at_least` sandboxes have
    reported ready (so the pooled ones are not still starting their kernel)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if client.pool() >= target and client.sandboxes_ready() >= ready_at_least:
            return True
        time.sleep(0.005)
    return False


def check_cell(payload: object, what: str) -> dict:
    result = payload.get("result") if isinstance(payload, dict) else None
    if not result or result.get("status") != "ok" or result.get("error"):
        raise SystemExit(f"{what}: unexpected answer {payload}")
    return result


def oneshot(client: Client) -> int:
    body = json.dumps({"code": "print('hi')", "language": "python"}).encode()
    status, payload, elapsed = client.call("POST", "/execute", body)
    result = check_cell(payload, f"POST /execute ({status})")
    if status != 200 or result["logs"]["stdout"] != ["hi\n"]:
        raise SystemExit(f"POST /execute: unexpected answer {status} {payload}")
    return elapsed


def oneshot_rounds(control: Client, fast: Client | CurlClient, pool_size: int, rounds: int,
                   warmup: int, oneshot_ms: Samples, spawn_ms: Samples) -> int:
    """Alternately a bare `python3 -c` spawn and a POST /execute taken from a full warm
    pool: after each, untimed, the pool refills and the new kernel reports ready.
    Returns how many rounds did not see the pool refilled within 10 s."""
    misses = 0
    for i in range(warmup + rounds):
        ready = control.sandboxes_ready()
        ns_spawn = spawn_python()
        ns_oneshot = oneshot(fast)
        if not wait_pool(control, pool_size, ready + 1, timeout=10):
            misses += 1
        if i >= warmup:
            spawn_ms.add_ns(ns_spawn)
            oneshot_ms.add_ns(ns_oneshot)
    return misses
