"""Fixtures for the fake E2B's own tests: a running server and a small client."""

import http.client
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SERVER = Path(__file__).resolve().parent / "fake_e2b_server.py"
API_KEY = "e2b_test_key"
DEADLINE_S = 10.0  # generous; only reached when something is broken


def wait_for(predicate, what, timeout=DEADLINE_S):
    """Polls `predicate` until it returns something truthy; returns that."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)
    return value


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # http.client.HTTPMessage: case-insensitive
        self.body = body

    def json(self):
        return json.loads(self.body)

    @property
    def text(self):
        return self.body.decode()


class FakeE2B:
    """A running fake_e2b_server.py and requests to it."""

    def __init__(self, tmp_path, *extra_args):
        port_file = tmp_path / "port"
        self.process = subprocess.Popen(
            [sys.executable, str(SERVER), "--port-file", str(port_file), "--api-key", API_KEY, *extra_args],
            stdout=subprocess.DEVNULL, env={**os.environ, "TMPDIR": str(tmp_path)})
        wait_for(lambda: port_file.exists() or self.process.poll() is not None, "the port file")
        assert self.process.poll() is None, "the server exited at start"
        self.port = int(port_file.read_text())

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(DEADLINE_S)
        return self.process.returncode

    # ---- requests -----------------------------------------------------------

    def connect(self, port=None):
        return http.client.HTTPConnection("127.0.0.1", port or self.port, timeout=DEADLINE_S)

    def request(self, method, path, body=None, headers=None, port=None):
        """One request on a fresh connection; `body` may be bytes or JSON-able."""
        if body is not None and not isinstance(body, bytes):
            body = json.dumps(body).encode()
        connection = self.connect(port)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return Response(response.status, response.headers, response.read())
        finally:
            connection.close()

    def api(self, method, path, body=None, key=API_KEY):
        """A control-plane request with the API key."""
        return self.request(method, path, body, {"X-API-Key": key} if key else {})

    def data(self, sandbox, port, method, path, body=None, headers=None, token=True):
        """A data-plane request routed by E2b-Sandbox-Id/E2b-Sandbox-Port (§2)."""
        all_headers = {"E2b-Sandbox-Id": sandbox["sandboxID"], "E2b-Sandbox-Port": str(port)}
        if token and sandbox.get("envdAccessToken"):
            all_headers["X-Access-Token"] = sandbox["envdAccessToken"]
        all_headers.update(headers or {})
        return self.request(method, path, body, all_headers)

    def create(self, **fields):
        response = self.api("POST", "/v2/sandboxes", {"templateID": "code-interpreter-v1", **fields})
        assert response.status == 201, response.body
        return response.json()

    def state(self):
        return self.request("GET", "/_test/state").json()

    def sandbox_state(self, sandbox_id):
        return next(s for s in self.state()["sandboxes"] if s["sandboxID"] == sandbox_id)

    def faults(self, *rules):
        response = self.request("POST", "/_test/faults", list(rules))
        assert response.status == 200, response.body
        return response.json()

    def open_execute(self, sandbox, body, port=None, headers=None):
        """Starts POST /execute; returns (connection, response) to read lines from."""
        connection = self.connect(port)
        all_headers = {"E2b-Sandbox-Id": sandbox["sandboxID"], "E2b-Sandbox-Port": "49999",
                       "Content-Type": "application/json"}
        if sandbox.get("envdAccessToken"):
            all_headers["X-Access-Token"] = sandbox["envdAccessToken"]
        all_headers.update(headers or {})
        connection.request("POST", "/execute", body=json.dumps(body).encode(), headers=all_headers)
        return connection, connection.getresponse()

    def execute(self, sandbox, code, **fields):
        """The NDJSON lines of one execution, parsed, as raw strings too."""
        connection, response = self.open_execute(sandbox, {"code": code, **fields})
        try:
            assert response.status == 200, response.read()
            raw = response.read().decode().splitlines()
        finally:
            connection.close()
        return [json.loads(line) for line in raw], raw


def main_result(lines):
    return next((line["text"] for line in lines if line["type"] == "result" and line["is_main_result"]), None)


def pid_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    fake = FakeE2B(tmp_path_factory.mktemp("fake-e2b"))
    yield fake
    fake.stop()


@pytest.fixture(autouse=True)
def clean_server(request):
    """Each test starts with no sandboxes, faults or logged requests."""
    if "server" in request.fixturenames:
        fake = request.getfixturevalue("server")
        assert fake.request("POST", "/_test/reset").status == 200
    yield


@pytest.fixture
def sandbox(server):
    return server.create()
