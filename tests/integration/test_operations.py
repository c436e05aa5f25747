"""Operations: Prometheus metrics, readiness, API keys, per-key limits (429),
service-wide saturation (503), WebSocket limits, CORS and graceful shutdown,
each against a real instance started for the test."""

from __future__ import annotations

import asyncio
import resource
import signal
import time

import pytest
import websockets
from prometheus_client.parser import text_string_to_metric_families

from helpers import (assert_nothing_left, collect_events, is_final_status, is_output, run,
                     stdout_of, wait_until)

pytestmark = pytest.mark.lifecycle

SLEEPY = "import time\nprint('started', flush=True)\ntime.sleep(60)"


def metric_samples(svc) -> dict[tuple, float]:
    """Every sample of /metrics as {(name, frozenset(labels)): value}, parsed with
    the Prometheus client's own text-format parser."""
    resp = svc.http("GET", "/metrics", timeout=10)
    assert resp.status == 200, resp
    assert resp.headers.get("content-type", "").startswith("text/plain"), resp.headers
    text = resp.raw.decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
    return samples


def sample(samples: dict, name: str, **labels) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_metrics_parse_and_move_with_executions(service):
    before = metric_samples(service)
    for name in ("process_resident_memory_bytes", "process_open_fds", "process_cpu_seconds_total"):
        assert any(key[0] == name for key in before), f"{name} missing from /metrics"
    body = service.execute("print('metrics')", "python")
    assert stdout_of(body["result"]) == "metrics\n"
    after = metric_samples(service)
    ok_before = sample(before, "codeexec_executions_total", language="python", status="ok")
    ok_after = sample(after, "codeexec_executions_total", language="python", status="ok")
    assert ok_after == ok_before + 1, (ok_before, ok_after)
    http_key = dict(route="/execute", status="200")
    assert sample(after, "codeexec_http_requests_total", **http_key) >= \
        sample(before, "codeexec_http_requests_total", **http_key) + 1
    count_key = "codeexec_execution_duration_seconds_count"
    assert sample(after, count_key, language="python") == sample(before, count_key, language="python") + 1
    assert sample(after, "codeexec_sandbox_start_seconds_count") > \
        sample(before, "codeexec_sandbox_start_seconds_count")


def test_ready_is_503_when_saturated(service_factory):
    svc = service_factory(env={"MAX_CONCURRENT_EXECUTIONS": "1"})
    assert svc.http("GET", "/ready").status == 200

    async def scenario():
        async with svc.ws_connect("sat") as ws:
            eid = await svc.start_stream("sat", SLEEPY, "python", timeout_ms=30000)
            await collect_events(ws, eid, until=is_output("stdout", "started"), timeout=20)
            over = await svc.ahttp("POST", "/execute", {"code": "print(1)"})
            ready = await svc.ahttp("GET", "/ready")
            return over, ready
    over, ready = run(scenario(), timeout=60)
    assert over.status == 503, over
    assert over.body["error"]["code"] == "overloaded", over
    assert int(over.headers["retry-after"]) >= 1, over.headers
    assert ready.status == 503 and ready.body["ready"] is False, ready
    wait_until(lambda: svc.live_sandboxes() == 0, 15, 0.05, "the cancelled sandbox stayed live")
    assert svc.http("GET", "/ready").status == 200


@pytest.fixture
def keyed(service_factory):
    return service_factory(env={"API_KEYS": "alpha-key,beta-key", "KEY_RATE_LIMIT_RPS": "0",
                                "KEY_MAX_CONCURRENT_EXECUTIONS": "1"})


def auth(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def test_api_keys_guard_every_route_but_health_ready_metrics(keyed):
    for path in ("/health", "/ready", "/metrics"):
        assert keyed.http("GET", path).status == 200, path
    refused = keyed.http("POST", "/execute", {"code": "print(1)"})
    assert refused.status == 401, refused
    assert refused.body["error"]["code"] == "unauthorized"
    assert refused.headers.get("www-authenticate") == "Bearer"
    assert keyed.http("POST", "/execute", {"code": "print(1)"}, auth("wrong")).status == 401
    ok = keyed.http("POST", "/execute", {"code": "print('hi')"}, auth("beta-key"))
    assert ok.status == 200 and stdout_of(ok.body["result"]) == "hi\n", ok


def test_websocket_needs_a_key_and_client_ids_belong_to_their_key(keyed):
    async def scenario():
        with pytest.raises(websockets.exceptions.InvalidStatusCode) as refused:
            await websockets.connect(keyed.ws_url + "/?clientId=shared", open_timeout=10)
        assert refused.value.status_code == 401
        alpha = await websockets.connect(keyed.ws_url + "/?clientId=shared&token=alpha-key")
        beta = await websockets.connect(keyed.ws_url + "/?clientId=shared",
                                        extra_headers=auth("beta-key"))
        try:
            resp = await keyed.ahttp("POST", "/execute-stream",
                                     {"code": "print('for alpha')", "clientId": "shared"},
                                     auth("alpha-key"))
            assert resp.status == 200, resp
            eid = resp.body["executionId"]
            import json
            seen = []
            while True:
                ev = json.loads(await asyncio.wait_for(alpha.recv(), 20))
                seen.append(ev)
                if ev.get("executionId") == eid and is_final_status(ev):
                    break
            assert any(ev.get("type") == "stdout" and ev.get("data") == "for alpha\n" for ev in seen)
            # beta's socket on the same clientId heard nothing of alpha's execution.
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(beta.recv(), 0.5)
        finally:
            await alpha.close()
            await beta.close()
    run(scenario(), timeout=60)


def test_per_key_concurrency_is_429_with_retry_after(keyed):
    async def scenario():
        ws = await websockets.connect(keyed.ws_url + "/?clientId=c&token=alpha-key")
        try:
            first = await keyed.ahttp("POST", "/execute-stream",
                                      {"code": SLEEPY, "clientId": "c"}, auth("alpha-key"))
            assert first.status == 200, first
            second = await keyed.ahttp("POST", "/execute", {"code": "print(1)"}, auth("alpha-key"))
            other_key = await keyed.ahttp("POST", "/execute", {"code": "print(2)"}, auth("beta-key"))
            return second, other_key
        finally:
            await ws.close()
    second, other_key = run(scenario(), timeout=60)
    assert second.status == 429, second
    assert second.body["error"]["code"] == "too_many_executions"
    assert int(second.headers["retry-after"]) >= 1
    assert other_key.status == 200, other_key  # the limit is per key
    wait_until(lambda: keyed.live_sandboxes() == 0, 15, 0.05, "the cancelled sandbox stayed live")


def test_per_key_rate_limit_is_429(service_factory):
    svc = service_factory(env={"API_KEYS": "k", "KEY_RATE_LIMIT_RPS": "1", "KEY_RATE_LIMIT_BURST": "2"})
    statuses = [svc.http("POST", "/execute", {"code": ""}, auth("k")).status for _ in range(3)]
    assert statuses[:2] == [400, 400], statuses
    assert statuses[2] == 429, statuses


def test_cors_answers_allowed_origins_only(service_factory):
    svc = service_factory(env={"CORS_ORIGINS": "https://app.example"})
    allowed = svc.http("GET", "/health", headers={"Origin": "https://app.example"})
    assert allowed.headers.get("access-control-allow-origin") == "https://app.example"
    other = svc.http("GET", "/health", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers
    preflight = svc.http("OPTIONS", "/execute", headers={"Origin": "https://app.example"})
    assert preflight.status == 204, preflight
    assert preflight.headers.get("access-control-allow-methods") == "POST"


def test_websocket_message_limits_close_with_clear_codes(service_factory):
    svc = service_factory(env={"WS_MAX_MESSAGE_BYTES": "1024", "WS_MAX_MESSAGES_PER_SECOND": "5"})

    async def scenario():
        big = await websockets.connect(svc.ws_url + "/?clientId=big")
        await big.send("x" * 2048)
        await asyncio.wait_for(big.wait_closed(), 10)
        chatty = await websockets.connect(svc.ws_url + "/?clientId=chatty")
        for _ in range(20):
            try:
                await chatty.send("{}")
            except websockets.exceptions.ConnectionClosed:
                break
        await asyncio.wait_for(chatty.wait_closed(), 10)
        return big.close_code, chatty.close_code
    big_code, chatty_code = run(scenario(), timeout=30)
    assert big_code == 1009, big_code
    assert chatty_code == 1008, chatty_code


def test_sigterm_lets_a_running_execution_finish_then_closes_sockets_1001(service_factory):
    svc = service_factory(env={"SHUTDOWN_GRACE_MS": "20000"})
    code = "import time\nprint('working', flush=True)\ntime.sleep(1.5)\nprint('done')"

    async def scenario():
        async with svc.ws_connect("graceful") as ws:
            eid = await svc.start_stream("graceful", code, "python", timeout_ms=30000)
            await collect_events(ws, eid, until=is_output("stdout", "working"), timeout=20)
            svc.signal(signal.SIGTERM)
            # The signal is handled asynchronously: once /ready says the service is
            # shutting down, new work is refused for the rest of the grace period.
            deadline = time.monotonic() + 10
            while (await svc.ahttp("GET", "/ready")).status != 503:
                assert time.monotonic() < deadline, "/ready never reported the shutdown"
                await asyncio.sleep(0.01)
            refused = await svc.ahttp("POST", "/execute", {"code": "print(1)"})
            events = await collect_events(ws, eid, timeout=20)
            notice = await ws.recv_json(10)
            await asyncio.wait_for(ws.conn.wait_closed(), 10)
            return refused, events, notice, ws.conn.close_code
    refused, events, notice, close_code = run(scenario(), timeout=60)
    assert refused.status == 503 and refused.body["error"]["code"] == "shutting_down", refused
    result = next(ev for ev in events if ev["type"] == "result")
    assert result["result"]["status"] == "ok", result
    assert "".join(result["result"]["logs"]["stdout"]) == "working\ndone\n"
    assert events[-1]["status"] == "completed"
    assert notice == {"type": "status", "executionId": None, "status": "shutting_down",
                      "message": "The service is shutting down"}, notice
    assert close_code == 1001
    assert svc.wait_exit(30) == 0, svc.log_tail(40)
    assert_nothing_left(None, timeout=10)


def test_second_sigterm_cancels_what_still_runs(service_factory):
    svc = service_factory(env={"SHUTDOWN_GRACE_MS": "60000"})

    async def scenario():
        async with svc.ws_connect("impatient") as ws:
            eid = await svc.start_stream("impatient", SLEEPY, "python", timeout_ms=90000)
            await collect_events(ws, eid, until=is_output("stdout", "started"), timeout=20)
            svc.signal(signal.SIGTERM)
            await asyncio.to_thread(wait_until, lambda: "shutting down" in svc.log_tail(20), 10, 0.05,
                                    "the service did not start shutting down")
            t0 = time.monotonic()
            svc.signal(signal.SIGTERM)
            events = await collect_events(ws, eid, timeout=20)
            return events, time.monotonic() - t0
    events, took = run(scenario(), timeout=60)
    result = next(ev for ev in events if ev["type"] == "result")
    assert result["result"]["status"] == "killed", result
    assert took < 10, f"the second SIGTERM took {took:.1f}s to cancel"
    assert svc.wait_exit(30) == 0, svc.log_tail(40)
    assert_nothing_left(None, timeout=10)


class RawWebSocket:
    """A bare RFC 6455 client over a TCP socket that does only what a test asks:
    it never answers pings and reads only when told, unlike real clients."""

    def __init__(self, port: int, path: str, rcvbuf: int | None = None):
        import base64
        import os
        import socket
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(10)
        self.sock.connect(("127.0.0.1", port))
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                           f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                           "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self.sock.recv(4096)
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head

    def _need(self, n: int, deadline: float) -> bool:
        while len(self.buffer) < n:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = self.sock.recv(65536)
            except TimeoutError:
                raise AssertionError("no close frame from the server before the deadline") from None
            if not chunk:
                return False
            self.buffer += chunk
        return True

    def frames(self, timeout: float):
        """Yields (opcode, payload) up to and including the server's close frame."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._need(2, deadline):
                return
            opcode, length = self.buffer[0] & 0x0F, self.buffer[1] & 0x7F
            header = 2
            if length == 126:
                self._need(4, deadline)
                length, header = int.from_bytes(self.buffer[2:4], "big"), 4
            elif length == 127:
                self._need(10, deadline)
                length, header = int.from_bytes(self.buffer[2:10], "big"), 10
            if not self._need(header + length, deadline):
                return
            payload = self.buffer[header:header + length]
            self.buffer = self.buffer[header + length:]
            yield opcode, payload
            if opcode == 0x8:
                return
        raise AssertionError(f"the server kept the connection open for {timeout}s")

    def close(self):
        self.sock.close()


def close_code(payload: bytes) -> int:
    return int.from_bytes(payload[:2], "big")


def test_a_client_that_ignores_pings_is_closed(service_factory):
    svc = service_factory(env={"WS_PING_INTERVAL_MS": "200"})
    ws = RawWebSocket(svc.port, "/?clientId=silent")
    try:
        seen = [(op, payload) for op, payload in ws.frames(timeout=10)]
    finally:
        ws.close()
    opcodes = [op for op, _ in seen]
    assert 0x9 in opcodes, f"no ping before the close: {opcodes}"
    assert opcodes[-1] == 0x8, f"no close frame: {opcodes}"
    assert close_code(seen[-1][1]) == 1001, seen[-1]
    assert b"ping timeout" in seen[-1][1]


def test_a_slow_consumer_is_closed_with_1008(service_factory):
    svc = service_factory(env={"WS_SEND_BUFFER_BYTES": "65536", "WS_PING_INTERVAL_MS": "0"})
    ws = RawWebSocket(svc.port, "/?clientId=slow", rcvbuf=4096)
    try:
        code = "import sys\nfor i in range(20000):\n    print('y' * 200)\n"
        resp = svc.http("POST", "/execute-stream", {"code": code, "clientId": "slow", "timeout": 20000})
        assert resp.status == 200, resp
        # Let the server's queue for us fill up while we do not read.
        wait_until(lambda: "too slow" in svc.log_tail(50), 20, 0.05,
                   "the server never gave up on the slow client")
        last = None
        for op, payload in ws.frames(timeout=20):
            last = (op, payload)
    finally:
        ws.close()
    assert last is not None and last[0] == 0x8, f"the stream did not end with a close frame: {last!r}"
    assert close_code(last[1]) == 1008, last
    assert b"too slow" in last[1]
    assert svc.http("GET", "/health").status == 200


def test_the_open_files_limit_is_raised_to_the_hard_limit(service_factory):
    """Sockets, sandboxes and their cgroup files all hold descriptors: a service started
    with a soft limit of 1024 raises it to the hard limit the operator allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low = min(1024, hard)
    if low == hard:
        pytest.skip(f"the hard limit ({hard}) leaves nothing to raise")
    resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard))  # the service inherits it
    try:
        svc = service_factory()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    with open(f"/proc/{svc.proc.pid}/limits") as f:
        line = next(l for l in f if l.startswith("Max open files"))
    assert line.split()[3:5] == [str(hard), str(hard)], line
