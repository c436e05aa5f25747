"""Shared helpers for the integration suite: starting the real binary, an
independent HTTP client (libcurl via pycurl), an independent WebSocket client
(python3-websockets 10.4, asyncio API), polling with deadlines, and host-side
scans for sandbox leftovers.

Nothing here knows anything about the server's internals: it only uses the
public HTTP/WebSocket API, the process's stderr log lines and what any user
can see on the host (/proc, /sys/fs/cgroup).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import io
import json
import os
import signal
import subprocess
import threading
import time
import urllib.parse
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Optional

import pycurl
import websockets
import websockets.exceptions

import openapi_contract

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_BINARY = REPO_ROOT / "build" / "codeexec"

# Host uids used by sandboxes (launcher_config::uid_base / uid_count): the service's
# default, or the SANDBOX_UID_BASE that CODEEXEC_TEST_ENV gives every instance (so that
# two test runs on one host, e.g. two checkouts, never share a sandbox uid).
SANDBOX_UID_BASE = int(json.loads(os.environ.get("CODEEXEC_TEST_ENV") or "{}").get("SANDBOX_UID_BASE", 200000))
SANDBOX_UID_COUNT = 1024
CGROUP_ROOT = "/sys/fs/cgroup"
# The binary is an ASan/UBSan build (set by CTest): tests that measure the service's
# cost (time, RSS) would measure the instrumentation instead.
SANITIZED = bool(os.environ.get("CODEEXEC_SANITIZED"))

MIB = 1024 * 1024

# Environment of the session-wide instance (see the brief in conftest.py).
BASE_ENV = {
    "PORT": "0",
    "HOST": "127.0.0.1",
    "LOG_LEVEL": "debug",
    "STREAM_REPLAY_WINDOW_MS": "10000",
    "MAX_TIMEOUT_MS": "120000",
    # The leak checks count every sandbox process: instances start without a warm
    # pool unless a test asks for one (test_sandboxes.py tests the pool itself).
    "WARM_POOL_SIZE": "0",
}

FINAL_STATUSES = ("completed", "failed")
RESULT_STATUSES = ("ok", "error", "timeout", "memory_limit", "output_limit", "killed", "sandbox_error")


def binary_path() -> Path:
    return Path(os.environ.get("CODEEXEC_BIN", str(DEFAULT_BINARY)))


# --------------------------------------------------------------------------
# Polling with a deadline
# --------------------------------------------------------------------------

def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.05,
               message: str | Callable[[Any], str] = "condition not met"):
    """Polls `predicate` until it returns a truthy value; returns that value.

    Only for state that has no event to wait for (e.g. /health counters, the
    host process table). Raises AssertionError with `message` (a string or a
    function of the last returned value) after `timeout` seconds.
    """
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() >= deadline:
            text = message(last) if callable(message) else message
            raise AssertionError(f"after {timeout:.1f}s: {text} (last value: {last!r})")
        time.sleep(interval)


# --------------------------------------------------------------------------
# HTTP (pycurl)
# --------------------------------------------------------------------------

class HttpResponse(tuple):
    """(status, headers, body) where body is parsed JSON when it parses, else
    text. Also has .status, .headers, .body and .raw (bytes)."""

    def __new__(cls, status: int, headers: dict, body: Any, raw: bytes):
        self = tuple.__new__(cls, (status, headers, body))
        self.status = status
        self.headers = headers
        self.body = body
        self.raw = raw
        return self

    def __repr__(self) -> str:
        text = self.raw[:600].decode("utf-8", "replace")
        return f"<HTTP {self.status} {text!r}{'...' if len(self.raw) > 600 else ''}>"


def _encode_body(body) -> tuple[Optional[bytes], Optional[str]]:
    if body is None:
        return None, None
    if isinstance(body, bytes):
        return body, "application/json"
    if isinstance(body, str):
        return body.encode("utf-8"), "application/json"
    return json.dumps(body, ensure_ascii=False).encode("utf-8"), "application/json"


def http_request(base_url: str, method: str, path: str, body=None, headers=None,
                 timeout: float = 60, curl: Optional[pycurl.Curl] = None) -> HttpResponse:
    """One HTTP/1.1 request with libcurl. `body`: None, bytes (sent as is),
    str (UTF-8) or anything JSON-serialisable. Returns an HttpResponse."""
    data, content_type = _encode_body(body)
    own = curl is None
    c = curl if curl is not None else pycurl.Curl()
    out = io.BytesIO()
    resp_headers: dict[str, str] = {}
    status_line = [None]

    def on_header(line: bytes):
        text = line.decode("iso-8859-1").rstrip("\r\n")
        if text.startswith("HTTP/"):
            resp_headers.clear()  # a 100 Continue or similar precedes the final one
            status_line[0] = text
        elif ":" in text:
            k, v = text.split(":", 1)
            resp_headers[k.strip().lower()] = v.strip()

    req_headers = {"Expect": ""}  # no 100-continue round trip for large bodies
    if content_type:
        req_headers["Content-Type"] = content_type
    req_headers.update(headers or {})
    try:
        c.reset()
        c.setopt(pycurl.URL, base_url + path)
        c.setopt(pycurl.WRITEDATA, out)
        c.setopt(pycurl.HEADERFUNCTION, on_header)
        c.setopt(pycurl.TIMEOUT_MS, int(timeout * 1000))
        c.setopt(pycurl.CONNECTTIMEOUT_MS, 5000)
        c.setopt(pycurl.NOSIGNAL, 1)
        c.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_1_1)
        c.setopt(pycurl.HTTPHEADER, [f"{k}: {v}" if v != "" else f"{k}:" for k, v in req_headers.items()])
        if data is not None:
            c.setopt(pycurl.POST, 1)
            c.setopt(pycurl.READDATA, io.BytesIO(data))
            c.setopt(pycurl.POSTFIELDSIZE_LARGE, len(data))
            if method != "POST":
                c.setopt(pycurl.CUSTOMREQUEST, method)
        elif method == "GET":
            c.setopt(pycurl.HTTPGET, 1)
        elif method == "HEAD":
            c.setopt(pycurl.NOBODY, 1)
        elif method == "POST":
            c.setopt(pycurl.POST, 1)
            c.setopt(pycurl.POSTFIELDSIZE_LARGE, 0)
            c.setopt(pycurl.READDATA, io.BytesIO(b""))
        else:
            c.setopt(pycurl.CUSTOMREQUEST, method)
        try:
            c.perform()
        except pycurl.error as e:
            raise AssertionError(f"{method} {path}: transport error {e.args} "
                                 f"(partial response: {out.getvalue()[:300]!r})") from None
        status = c.getinfo(pycurl.RESPONSE_CODE)
    finally:
        if own:
            c.close()
    raw = out.getvalue()
    parsed: Any
    try:
        parsed = json.loads(raw.decode("utf-8")) if raw else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        parsed = raw.decode("utf-8", "replace")
    if openapi_contract.applies_to(base_url):
        openapi_contract.check_response(method, path, status, resp_headers, raw, parsed)
    return HttpResponse(status, resp_headers, parsed, raw)


# --------------------------------------------------------------------------
# WebSocket (websockets 10.4, asyncio)
# --------------------------------------------------------------------------

class WsClient:
    """A connected WebSocket with a per-execution stash, so that collecting the
    events of one execution never loses another execution's events."""

    def __init__(self, conn, client_id: str):
        self.conn = conn
        self.client_id = client_id
        self.stash: dict[Optional[str], list[dict]] = defaultdict(list)
        self.received: list[dict] = []  # every message, in arrival order

    async def recv_json(self, timeout: float) -> dict:
        msg = await asyncio.wait_for(self.conn.recv(), timeout)
        assert isinstance(msg, str), f"expected a text frame, got {type(msg).__name__}: {msg[:200]!r}"
        try:
            ev = json.loads(msg)
        except json.JSONDecodeError as e:
            raise AssertionError(f"WebSocket message is not JSON ({e}): {msg[:300]!r}") from None
        assert isinstance(ev, dict), f"WebSocket message is not a JSON object: {msg[:300]!r}"
        openapi_contract.check_ws_message(ev)
        self.received.append(ev)
        return ev

    async def collect(self, execution_id: str, until: Callable[[dict], bool] = None,
                      timeout: float = 30) -> list[dict]:
        """Events of `execution_id` in arrival order, up to and including the
        first for which `until(ev)` is true (default: the final status)."""
        until = until or is_final_status
        events: list[dict] = []
        pending = self.stash.pop(execution_id, [])
        for i, ev in enumerate(pending):
            events.append(ev)
            if until(ev):
                if pending[i + 1:]:
                    self.stash[execution_id] = pending[i + 1:]
                return events
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = deadline - loop.time()
            try:
                if remaining <= 0:
                    raise asyncio.TimeoutError
                ev = await self.recv_json(remaining)
            except asyncio.TimeoutError:
                raise AssertionError(
                    f"clientId={self.client_id}: no matching event for execution {execution_id} "
                    f"within {timeout}s; got so far: {summarize(events)}") from None
            except websockets.exceptions.ConnectionClosed as e:
                raise AssertionError(
                    f"clientId={self.client_id}: WebSocket closed ({e}) while waiting for execution "
                    f"{execution_id}; got so far: {summarize(events)}") from None
            if ev.get("executionId") != execution_id:
                self.stash[ev.get("executionId")].append(ev)
                continue
            events.append(ev)
            if until(ev):
                return events

    async def close(self):
        await self.conn.close()


@contextlib.asynccontextmanager
async def ws_connect(ws_url: str, client_id: Optional[str], open_timeout: float = 10):
    """`async with ws_connect(url, "c1") as ws:` -> WsClient. client_id=None
    connects without the query parameter."""
    url = ws_url + "/"
    if client_id is not None:
        url += "?clientId=" + urllib.parse.quote(client_id, safe="")
    conn = await websockets.connect(url, max_size=None, open_timeout=open_timeout, close_timeout=5)
    client = WsClient(conn, client_id)
    try:
        yield client
    finally:
        await conn.close()


async def collect_events(ws: WsClient, execution_id: str, until: Callable[[dict], bool] = None,
                         timeout: float = 30) -> list[dict]:
    return await ws.collect(execution_id, until=until, timeout=timeout)


def is_final_status(ev: dict) -> bool:
    return ev.get("type") == "status" and ev.get("status") in FINAL_STATUSES


def is_output(stream: str, needle: str) -> Callable[[dict], bool]:
    return lambda ev: ev.get("type") == stream and needle in ev.get("data", "")


def summarize(events: list[dict], limit: int = 40) -> str:
    parts = []
    for ev in events[:limit]:
        t = ev.get("type")
        if t in ("stdout", "stderr"):
            parts.append(f"{t}:{ev.get('data', '')[:40]!r}")
        elif t == "status":
            parts.append(f"status:{ev.get('status')}")
        elif t == "error":
            parts.append(f"error:{(ev.get('error') or {}).get('name')}")
        else:
            parts.append(str(t))
    more = f" ... (+{len(events) - limit})" if len(events) > limit else ""
    return "[" + ", ".join(parts) + more + "]"


def run(coro, timeout: float = 60):
    """Runs an async scenario from a sync test, with an overall deadline."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


# --------------------------------------------------------------------------
# Response / event checks
# --------------------------------------------------------------------------

def run_hostile(service, code, language, timeout_ms, limits) -> tuple[dict, float]:
    """Runs one hostile program under `limits`; returns (result, seconds the request took)."""
    t0 = time.monotonic()
    body = service.execute(code, language, timeout_ms, http_timeout=60, limits=limits)
    return body["result"], time.monotonic() - t0


def check_error_obj(err, where: str):
    assert isinstance(err, dict), f"{where}: error must be an object, got {err!r}"
    for k in ("name", "value", "traceback"):
        assert isinstance(err.get(k), str), f"{where}: error.{k} must be a string, got {err!r}"
    assert err["name"], f"{where}: error.name is empty: {err!r}"


def check_result_obj(result, where: str = "result"):
    """Shape of /execute's `result` (also the `result` event's)."""
    assert isinstance(result, dict), f"{where} must be an object, got {result!r}"
    assert isinstance(result.get("results"), list), f"{where}.results must be a list: {result!r}"
    for r in result["results"]:
        assert isinstance(r, dict), f"{where}.results items must be objects: {r!r}"
        assert isinstance(r.get("is_main_result"), bool), f"E2B Result without is_main_result: {r!r}"
    logs = result.get("logs")
    assert isinstance(logs, dict), f"{where}.logs must be an object: {result!r}"
    for s in ("stdout", "stderr"):
        assert isinstance(logs.get(s), list) and all(isinstance(x, str) for x in logs[s]), \
            f"{where}.logs.{s} must be a list of strings: {logs!r}"
    assert "error" in result, f"{where}.error must be present (null when no error): {result!r}"
    if result["error"] is not None:
        check_error_obj(result["error"], f"{where}.error")
    assert result.get("status") in RESULT_STATUSES, f"{where}.status unexpected: {result.get('status')!r}"
    assert (result["status"] == "ok") == (result["error"] is None), \
        f"{where}: status {result['status']!r} inconsistent with error {result['error']!r}"


def check_execute_response(resp: HttpResponse) -> dict:
    assert resp.status == 200, f"POST /execute: expected 200, got {resp!r}"
    assert "application/json" in resp.headers.get("content-type", ""), \
        f"POST /execute: Content-Type is {resp.headers.get('content-type')!r}"
    body = resp.body
    assert isinstance(body, dict), f"/execute body is not a JSON object: {resp!r}"
    assert isinstance(body.get("executionId"), str) and body["executionId"], f"no executionId: {body!r}"
    check_result_obj(body.get("result"), "result")
    d = body.get("duration")
    assert isinstance(d, (int, float)) and not isinstance(d, bool) and d >= 0, f"bad duration: {body!r}"
    return body


def stdout_of(result: dict) -> str:
    return "".join(result["logs"]["stdout"])


def stderr_of(result: dict) -> str:
    return "".join(result["logs"]["stderr"])


def main_result(result: dict) -> Optional[dict]:
    mains = [r for r in result["results"] if r.get("is_main_result")]
    assert len(mains) <= 1, f"more than one main result: {result['results']!r}"
    return mains[0] if mains else None


def merged_output(events: list[dict]) -> list[tuple[str, str]]:
    """stdout/stderr events with consecutive same-stream chunks merged:
    [("stdout", "a\\n"), ("stderr", "b\\n"), ...] (independent of chunking)."""
    out: list[tuple[str, str]] = []
    for ev in events:
        if ev.get("type") in ("stdout", "stderr"):
            if out and out[-1][0] == ev["type"]:
                out[-1] = (ev["type"], out[-1][1] + ev["data"])
            else:
                out.append((ev["type"], ev["data"]))
    return out


def check_stream_sequence(events: list[dict], execution_id: str) -> dict:
    """Asserts the documented event order of one execution:
    status running, stdout/stderr*, error?, result, status completed|failed.
    Returns {"stdout", "stderr", "result", "duration", "error", "final"}."""
    s = summarize(events)
    assert events, "no events"
    for ev in events:
        assert ev.get("executionId") == execution_id, f"event for another execution: {ev!r}"
        assert isinstance(ev.get("type"), str), f"event without type: {ev!r}"
    first, last = events[0], events[-1]
    assert first["type"] == "status" and first.get("status") == "running", \
        f"first event must be status running: {first!r}; sequence {s}"
    assert isinstance(first.get("message"), str), f"status event without message: {first!r}"
    assert is_final_status(last), f"last event must be status completed|failed: {last!r}; sequence {s}"
    assert isinstance(last.get("message"), str), f"status event without message: {last!r}"
    results = [i for i, ev in enumerate(events) if ev["type"] == "result"]
    assert results == [len(events) - 2], f"exactly one result event, just before the final status: {s}"
    res_ev = events[-2]
    check_result_obj(res_ev.get("result"), "result event .result")
    d = res_ev.get("duration")
    assert isinstance(d, (int, float)) and not isinstance(d, bool) and d >= 0, f"bad duration: {res_ev!r}"
    errors = [i for i, ev in enumerate(events) if ev["type"] == "error"]
    result = res_ev["result"]
    if result["error"] is None:
        assert not errors, f"error event but result.error is null: {s}"
        assert last["status"] == "completed", f"result.error is null but final status {last['status']}: {s}"
    else:
        assert errors == [len(events) - 3], \
            f"result.error is set: expected exactly one error event just before the result: {s}"
        check_error_obj(events[-3].get("error"), "error event")
        assert events[-3]["error"] == result["error"], \
            f"error event {events[-3]['error']!r} != result.error {result['error']!r}"
        assert last["status"] == "failed", f"result.error is set but final status {last['status']}: {s}"
    middle = events[1:errors[0] if errors else len(events) - 2]
    for ev in middle:
        assert ev["type"] in ("stdout", "stderr", "display"), \
            f"unexpected event between start and result: {ev!r}; {s}"
        if ev["type"] != "display":
            assert isinstance(ev.get("data"), str), f"output event without string data: {ev!r}"
    displayed = [ev["result"] for ev in middle if ev["type"] == "display"]
    assert displayed == result["results"], \
        f"display events {str(displayed)[:300]} differ from result.results: {s}"
    stdout = "".join(ev["data"] for ev in middle if ev["type"] == "stdout")
    stderr = "".join(ev["data"] for ev in middle if ev["type"] == "stderr")
    assert stdout == stdout_of(result), \
        f"stdout events {stdout[:200]!r} differ from result.logs.stdout {stdout_of(result)[:200]!r}"
    assert stderr == stderr_of(result), \
        f"stderr events {stderr[:200]!r} differ from result.logs.stderr {stderr_of(result)[:200]!r}"
    return {"stdout": stdout, "stderr": stderr, "result": result, "duration": d,
            "error": result["error"], "final": last["status"]}


# --------------------------------------------------------------------------
# Host-side leak scans
# --------------------------------------------------------------------------

def sandbox_processes() -> list[str]:
    """Processes whose real/effective/saved/fs host uid is in the sandbox range
    (zombies included: an unreaped sandbox process is a leak too)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            status = Path(f"/proc/{name}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        try:
            uids = [int(x) for x in fields.get("Uid", "").split()]
        except ValueError:
            continue
        if any(SANDBOX_UID_BASE <= u < SANDBOX_UID_BASE + SANDBOX_UID_COUNT for u in uids):
            try:
                cmd = Path(f"/proc/{name}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                cmd = ""
            found.append(f"pid={name} uid={uids[0]} state={fields.get('State', '?').strip()} "
                         f"ppid={fields.get('PPid', '?').strip()} cmd={cmd.strip()[:80]!r}")
    return found


def sandbox_cgroups() -> list[str]:
    """Every directory named sbx-* anywhere under /sys/fs/cgroup."""
    found = []
    for dirpath, dirnames, _ in os.walk(CGROUP_ROOT, onerror=lambda e: None, followlinks=False):
        for d in list(dirnames):
            if d.startswith("sbx-"):
                found.append(os.path.join(dirpath, d))
                dirnames.remove(d)
    return found


def _cgroup_paths(pid: str) -> list[str]:
    try:
        return [line.split(":", 2)[2] for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines()
                if line.count(":") >= 2]
    except OSError:
        return []


def own_leftovers(service: "Service") -> dict:
    """Like leftovers(), but only what `service` may have left: its own
    sbx-<service pid>-* cgroups, the sandbox-uid processes inside them, and
    sandbox-uid processes in no sbx-* cgroup at all (escaped from tracking:
    a leak whoever made it). For hosts where other instances run at the same
    time, whose live sandboxes are not this test's leftovers."""
    tag = f"/sbx-{service.proc.pid}-"
    procs = []
    for p in sandbox_processes():
        pid = p.split()[0].split("=", 1)[1]
        paths = _cgroup_paths(pid)
        if not paths:
            continue  # gone meanwhile
        if any(tag in c for c in paths) or not any("/sbx-" in c for c in paths):
            procs.append(p)
    cgroups = [c for c in sandbox_cgroups() if tag in c]
    return {"processes": procs, "cgroups": cgroups, "live": service.live_sandboxes()}


def leftovers(service: Optional["Service"] = None, own_only: bool = False) -> dict:
    if own_only and service is not None:
        return own_leftovers(service)
    out = {"processes": sandbox_processes(), "cgroups": sandbox_cgroups()}
    if service is not None:
        out["live"] = service.live_sandboxes()
    return out


def assert_nothing_left(service: Optional["Service"] = None, timeout: float = 10,
                        own_only: bool = False):
    """Waits (deadline) until no sandbox process, no sbx-* cgroup and, if a
    running service is given, sandboxes.live == 0. own_only: only what
    `service` created counts (see own_leftovers)."""
    seen = []
    t0 = time.monotonic()

    def clean():
        lo = leftovers(service, own_only)
        ok = not lo["processes"] and not lo["cgroups"] and lo.get("live", 0) == 0
        if not ok and not seen:
            seen.append(lo)
        return ok or None
    state = {}

    def msg(_):
        state.update(leftovers(service, own_only))
        return f"sandbox leftovers remain: {json.dumps(state, indent=1)}"
    wait_until(clean, timeout, 0.05, msg)
    waited = time.monotonic() - t0
    if waited > 1:  # visible with -s or in the captured output of a failing test
        print(f"assert_nothing_left: waited {waited:.1f}s; first seen: {json.dumps(seen[0])}")


def assert_contained(service: "Service", timeout: float = 10):
    """After a hostile run: nothing of `service` left behind (own_leftovers),
    no execution running, and the next request on it works."""
    assert service.running, f"{service.name} died:\n{service.log_tail(20)}"
    assert_nothing_left(service, timeout, own_only=True)
    wait_until(lambda: (service.health().get("executions") or {}).get("running") == 0, timeout,
               message="executions.running did not return to 0")
    r = service.execute("print('ok')", "python", 10000, http_timeout=30)["result"]
    assert r["status"] == "ok" and stdout_of(r) == "ok\n", f"the next request failed: {r!r}"


# --------------------------------------------------------------------------
# Watching the service while something runs
# --------------------------------------------------------------------------

def process_rss_bytes(pid: int) -> int:
    """Resident set size of a host process (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class HealthProbe:
    """`with HealthProbe(service) as probe:` polls GET /health (own libcurl
    handle, a thread) every `interval` seconds while the block runs, and
    samples the service's RSS. Afterwards: probe.latencies (seconds; a
    failed or non-200 request counts as `failure_latency`), probe.failures,
    probe.max_latency, probe.max_rss."""

    def __init__(self, service: "Service", interval: float = 0.05, request_timeout: float = 5):
        self.service = service
        self.interval = interval
        self.request_timeout = request_timeout
        self.failure_latency = float(request_timeout)
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self.rss: list[int] = []
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def _run(self):
        curl = pycurl.Curl()
        try:
            while not self._stop.is_set():
                self.rss.append(process_rss_bytes(self.service.proc.pid))
                t0 = time.monotonic()
                try:
                    resp = self.service.http("GET", "/health", timeout=self.request_timeout, curl=curl)
                    ok = resp.status == 200
                    if not ok:
                        self.failures.append(repr(resp))
                except AssertionError as e:
                    ok = False
                    self.failures.append(str(e)[:200])
                self.latencies.append(time.monotonic() - t0 if ok else self.failure_latency)
                self._stop.wait(self.interval)
        finally:
            curl.close()

    def __enter__(self) -> "HealthProbe":
        self._thread = threading.Thread(target=self._run, daemon=True, name="health-probe")
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(self.request_timeout + 5)
        return False

    @property
    def max_latency(self) -> float:
        return max(self.latencies, default=0.0)

    @property
    def max_rss(self) -> int:
        return max(self.rss, default=0)

    def summary(self) -> str:
        lat = sorted(self.latencies)
        p50 = lat[len(lat) // 2] if lat else 0.0
        return (f"{len(lat)} /health requests, p50 {p50 * 1000:.1f} ms, max {self.max_latency * 1000:.1f} ms, "
                f"failures {self.failures[:3]}, max RSS {self.max_rss / MIB:.0f} MiB")


# --------------------------------------------------------------------------
# The service process
# --------------------------------------------------------------------------

_PR_SET_PDEATHSIG = 1
try:  # resolved before any fork: the child only makes the call
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):
    _prctl = None


def _die_with_parent():
    # If pytest dies, the service gets SIGTERM (graceful: it kills its sandboxes).
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)


class Service:
    """One running instance of the real binary."""

    def __init__(self, env_overrides: Optional[dict] = None, log_path: Optional[Path] = None,
                 name: str = "codeexec"):
        self.name = name
        self.binary = binary_path()
        self.env = {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin")}
        self.env.update(BASE_ENV)
        extra = os.environ.get("CODEEXEC_TEST_ENV")
        if extra:
            self.env.update({k: str(v) for k, v in json.loads(extra).items()})
        self.env.update({k: str(v) for k, v in (env_overrides or {}).items()})
        self.log_path = log_path
        # Run outside the source tree: the binary must not depend on its cwd, and a
        # developer's .env there must not leak into the tests.
        self.cwd = log_path.parent if log_path else Path("/tmp")
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self._listening = threading.Event()
        self.port: Optional[int] = None
        self.proc: Optional[subprocess.Popen] = None
        self.exit_code: Optional[int] = None
        self._threads: list[threading.Thread] = []
        self._log_file = None

    # -- start / stop ------------------------------------------------------

    def start(self, listen_timeout: float = 60, health_timeout: float = 30) -> "Service":
        if not self.binary.exists():
            raise FileNotFoundError(
                f"service binary not found at {self.binary}; build it (cmake --build build) "
                f"or set CODEEXEC_BIN")
        if self.log_path:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log_file = open(self.log_path, "w", encoding="utf-8", buffering=1)
        self.proc = subprocess.Popen(
            [str(self.binary)], env=self.env, cwd=str(self.cwd),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            preexec_fn=_die_with_parent)
        for stream, tag in ((self.proc.stderr, ""), (self.proc.stdout, "[stdout] ")):
            t = threading.Thread(target=self._reader, args=(stream, tag), daemon=True,
                                 name=f"{self.name}-reader{tag.strip()}")
            t.start()
            self._threads.append(t)
        deadline = time.monotonic() + listen_timeout
        while not self._listening.wait(0.05):
            if self.proc.poll() is not None:
                self._join_readers()
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} before listening:\n"
                                   + self.log_tail(60))
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"{self.name}: no {{\"msg\": \"listening\", \"port\": N}} log line "
                                   f"within {listen_timeout}s:\n" + self.log_tail(60))

        def healthy():
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode} during start-up:\n"
                                   + self.log_tail(60))
            try:
                return self.http("GET", "/health", timeout=2).status == 200
            except AssertionError:
                return False
        wait_until(healthy, health_timeout, 0.05, f"{self.name}: GET /health never returned 200")
        return self

    def _reader(self, stream, tag: str):
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._lock:
                self.lines.append(tag + line)
                if self._log_file:
                    try:
                        self._log_file.write(tag + line + "\n")
                    except ValueError:
                        pass
            if not tag and not self._listening.is_set():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(rec, dict) and rec.get("msg") == "listening" and isinstance(rec.get("port"), int):
                    self.port = rec["port"]
                    openapi_contract.register(self.base_url)
                    self._listening.set()
        stream.close()

    def _join_readers(self, timeout: float = 5):
        for t in self._threads:
            t.join(timeout)

    def signal(self, sig: int):
        assert self.proc is not None and self.proc.poll() is None, f"{self.name} is not running"
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float = 30) -> int:
        try:
            self.exit_code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.name} did not exit within {timeout}s; killed it. Log tail:\n"
                                 + self.log_tail(60)) from None
        self._join_readers()
        if self.port is not None:
            openapi_contract.unregister(self.base_url)
        return self.exit_code

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, wait with a deadline, return the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait_exit(timeout)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._join_readers()

    def close_log(self):
        if self._log_file:
            with self._lock:
                self._log_file.close()
                self._log_file = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # -- logs ----------------------------------------------------------------

    def log_tail(self, n: int = 80) -> str:
        with self._lock:
            return "\n".join(self.lines[-n:])

    def log_records(self) -> list[dict]:
        with self._lock:
            lines = list(self.lines)
        out = []
        for line in lines:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(rec, dict):
                out.append(rec)
        return out

    # -- clients ---------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def http(self, method: str, path: str, body=None, headers=None, timeout: float = 60,
             curl: Optional[pycurl.Curl] = None) -> HttpResponse:
        return http_request(self.base_url, method, path, body, headers, timeout, curl)

    async def ahttp(self, method: str, path: str, body=None, headers=None, timeout: float = 60) -> HttpResponse:
        """http() in a thread, so the event loop keeps reading WebSockets."""
        return await asyncio.to_thread(self.http, method, path, body, headers, timeout)

    def ws_connect(self, client_id: Optional[str], open_timeout: float = 10):
        return ws_connect(self.ws_url, client_id, open_timeout)

    # -- API shortcuts -----------------------------------------------------------

    def execute(self, code: str, language: Optional[str] = None, timeout_ms: Optional[int] = None,
                http_timeout: float = 60, limits: Optional[dict] = None,
                env_vars: Optional[dict] = None) -> dict:
        """POST /execute, asserts 200 and the response shape; returns the body."""
        payload: dict[str, Any] = {"code": code}
        if language is not None:
            payload["language"] = language
        if timeout_ms is not None:
            payload["timeout"] = timeout_ms
        if limits is not None:
            payload["limits"] = limits
        if env_vars is not None:
            payload["envVars"] = env_vars
        return check_execute_response(self.http("POST", "/execute", payload, timeout=http_timeout))

    async def start_stream(self, client_id: str, code: str, language: Optional[str] = None,
                           timeout_ms: Optional[int] = None) -> str:
        """POST /execute-stream, asserts the acknowledgement; returns executionId."""
        payload: dict[str, Any] = {"code": code, "clientId": client_id}
        if language is not None:
            payload["language"] = language
        if timeout_ms is not None:
            payload["timeout"] = timeout_ms
        resp = await self.ahttp("POST", "/execute-stream", payload, timeout=30)
        assert resp.status == 200, f"POST /execute-stream: expected 200, got {resp!r}"
        body = resp.body
        assert isinstance(body, dict) and isinstance(body.get("executionId"), str) and body["executionId"], \
            f"/execute-stream: no executionId: {resp!r}"
        assert body.get("status") == "streaming", f"/execute-stream: status must be 'streaming': {body!r}"
        assert body.get("clientId") == client_id, f"/execute-stream: clientId not echoed: {body!r}"
        return body["executionId"]

    def health(self) -> dict:
        resp = self.http("GET", "/health", timeout=10)
        assert resp.status == 200, f"GET /health: {resp!r}"
        assert isinstance(resp.body, dict), f"GET /health: not a JSON object: {resp!r}"
        return resp.body

    def live_sandboxes(self) -> int:
        body = self.health()
        live = (body.get("sandboxes") or {}).get("live")
        assert isinstance(live, int) and not isinstance(live, bool), f"/health sandboxes.live: {body!r}"
        return live
