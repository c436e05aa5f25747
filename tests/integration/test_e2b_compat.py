"""The E2B-compatible API (E2B_COMPAT_PORT, E2B_COMPAT_DEBUG_PORTS) at the wire level:
E2B's control plane, the Code Interpreter's NDJSON /execute and contexts, envd's
files and health, routing by E2b-Sandbox-Id/-Port and by Host, E2B's error bodies
(docs/reference/e2b-protocol.md §1-§5). tests/e2b/sdk runs the official SDK
against the same listener."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.parse

import pycurl
import pytest

from helpers import http_request, wait_until
from sandbox_helpers import auth, module_instance

KEY = "e2b-compat-key"
OTHER_KEY = "e2b-compat-other"
CODE_PORT = "49999"
ENVD_PORT = "49983"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class E2b:
    """The compatible listener of one instance, spoken to as the SDK does with
    E2B_API_URL = E2B_SANDBOX_URL = its base URL."""

    def __init__(self, svc, port: int):
        self.svc = svc
        self.base = f"http://127.0.0.1:{port}"

    def api(self, method, path, body=None, key=KEY, headers=None, timeout=60):
        h = {"X-API-Key": key} if key else {}
        h.update(headers or {})
        return http_request(self.base, method, path, body, h, timeout=timeout)

    def create(self, **fields) -> dict:
        body = {"templateID": "code-interpreter-v1", "timeout": 120}
        body.update(fields)
        r = self.api("POST", "/v2/sandboxes", body)
        assert r.status == 201, r
        return r.body

    def data(self, sbx: dict, port: str, method, path, body=None, headers=None, token=True,
             timeout=60):
        h = {"E2b-Sandbox-Id": sbx["sandboxID"], "E2b-Sandbox-Port": port}
        if token:
            h["X-Access-Token"] = sbx["envdAccessToken"]
        h.update(headers or {})
        return http_request(self.base, method, path, body, h, timeout=timeout)

    def execute(self, sbx: dict, code: str, timeout=60, **fields) -> list[dict]:
        body = {"code": code, **fields}
        r = self.data(sbx, CODE_PORT, "POST", "/execute", body, timeout=timeout)
        assert r.status == 200, r
        return ndjson(r.raw)

    def kill(self, sbx: dict):
        r = self.api("DELETE", f"/sandboxes/{sbx['sandboxID']}")
        assert r.status in (204, 404), r


def ndjson(raw: bytes) -> list[dict]:
    text = raw.decode("utf-8")
    assert text.endswith("\n"), f"the stream must end with a newline: {text[-200:]!r}"
    return [json.loads(line) for line in text.split("\n")[:-1]]


def of_type(lines: list[dict], kind: str) -> list[dict]:
    return [line for line in lines if line["type"] == kind]


def stdout(lines: list[dict]) -> str:
    return "".join(line["text"] for line in of_type(lines, "stdout"))


def check_stream_shape(lines: list[dict]):
    """§3.1: number_of_executions first, end_of_execution last and once."""
    assert lines[0]["type"] == "number_of_executions", lines[:3]
    assert lines[-1] == {"type": "end_of_execution"}, lines[-3:]
    assert len(of_type(lines, "end_of_execution")) == 1
    for line in of_type(lines, "stdout") + of_type(lines, "stderr"):
        assert "timestamp" in line and line["timestamp"].endswith("+00:00"), line


@pytest.fixture(scope="module")
def e2b(request, tmp_path_factory):
    port = free_port()
    env = {"E2B_COMPAT_PORT": str(port), "API_KEYS": f"{KEY},{OTHER_KEY}",
           "KEY_RATE_LIMIT_RPS": "0"}
    for svc in module_instance(request, tmp_path_factory, env, "codeexec-e2b-compat"):
        yield E2b(svc, port)


@pytest.fixture
def sbx(e2b):
    created = e2b.create(metadata={"suite": "compat"}, envVars={"FROM_CREATE": "yes"})
    yield created
    e2b.kill(created)


# ---- control plane --------------------------------------------------------------------

def test_create_answers_e2b_sandbox_json(e2b, sbx):
    assert set(sbx) >= {"sandboxID", "templateID", "clientID", "envdVersion", "envdAccessToken",
                        "trafficAccessToken", "domain"}
    assert sbx["templateID"] == "code-interpreter-v1"
    assert tuple(int(p) for p in sbx["envdVersion"].split(".")) >= (0, 5, 7)
    assert len(sbx["envdAccessToken"]) == 32
    assert sbx["domain"] is None and sbx["trafficAccessToken"] is None


def test_control_plane_needs_a_valid_key(e2b):
    for key in (None, "wrong"):
        r = e2b.api("POST", "/v2/sandboxes", {"templateID": "base"}, key=key)
        assert r.status == 401, r
        assert r.body["code"] == 401 and r.body["message"], r.body


def test_unknown_routes_and_bad_bodies_get_e2b_errors(e2b):
    r = e2b.api("POST", "/sandboxes/x/pause")
    assert r.status == 404 and r.body["code"] == 404, r
    r = e2b.api("POST", "/v2/sandboxes", "[1,2]")
    assert r.status == 400 and r.body["code"] == 400, r
    r = e2b.api("POST", "/v2/sandboxes", {"timeout": 10 ** 9})
    assert r.status == 400 and "timeout" in r.body["message"], r
    r = e2b.api("GET", "/sandboxes/doesnotexist")
    assert r.status == 404 and r.body["code"] == 404, r


def test_list_filters_by_metadata_and_pages(e2b):
    made = [e2b.create(metadata={"suite": "paging", "n": str(i)}) for i in range(3)]
    try:
        r = e2b.api("GET", "/v2/sandboxes?metadata=" + "suite%3Dpaging")
        assert r.status == 200, r
        assert sorted(s["sandboxID"] for s in r.body) == sorted(s["sandboxID"] for s in made)
        assert r.headers["x-total-running"] == "3"
        assert all(s["state"] == "running" and s["metadata"]["suite"] == "paging" for s in r.body)
        assert all("envdAccessToken" not in s for s in r.body)

        r = e2b.api("GET", "/v2/sandboxes?metadata=suite%3Dpaging%26n%3D1")
        assert [s["metadata"]["n"] for s in r.body] == ["1"]

        seen, token = [], None
        while True:
            r = e2b.api("GET", "/v2/sandboxes?limit=2&metadata=suite%3Dpaging"
                        + (f"&nextToken={token}" if token else ""))
            seen += [s["sandboxID"] for s in r.body]
            token = r.headers.get("x-next-token")
            if not token:
                break
        assert sorted(seen) == sorted(s["sandboxID"] for s in made)
        assert e2b.api("GET", "/v2/sandboxes?state=paused").body == []
        # Another key sees none of them.
        assert e2b.api("GET", "/v2/sandboxes?metadata=suite%3Dpaging", key=OTHER_KEY).body == []
    finally:
        for s in made:
            e2b.kill(s)


def test_get_timeout_connect_and_kill(e2b):
    sbx = e2b.create(timeout=60)
    sid = sbx["sandboxID"]
    detail = e2b.api("GET", f"/sandboxes/{sid}")
    assert detail.status == 200, detail
    assert detail.body["sandboxID"] == sid and detail.body["envdAccessToken"] == sbx["envdAccessToken"]
    end_before = detail.body["endAt"]

    assert e2b.api("POST", f"/sandboxes/{sid}/timeout", {"timeout": 600}).status == 204
    assert e2b.api("GET", f"/sandboxes/{sid}").body["endAt"] > end_before

    connected = e2b.api("POST", f"/v2/sandboxes/{sid}/connect", {"timeout": 30})
    assert connected.status == 200, connected
    assert connected.body["sandboxID"] == sid
    assert connected.body["envdAccessToken"] == sbx["envdAccessToken"]

    assert e2b.api("GET", f"/sandboxes/{sid}", key=OTHER_KEY).status == 404
    assert e2b.api("DELETE", f"/sandboxes/{sid}", key=OTHER_KEY).status == 404
    assert e2b.api("DELETE", f"/sandboxes/{sid}").status == 204
    assert e2b.api("DELETE", f"/sandboxes/{sid}").status == 404
    assert e2b.api("POST", f"/v2/sandboxes/{sid}/connect").status == 404
    # The data plane now answers like E2B's edge proxy.
    r = e2b.data(sbx, CODE_PORT, "POST", "/execute", {"code": "1"})
    assert r.status == 502 and r.body == {"sandboxId": sid, "message": "The sandbox was not found",
                                          "code": 502}, r


# ---- code interpreter -----------------------------------------------------------------

def test_execute_streams_ndjson_and_keeps_state(e2b, sbx):
    lines = e2b.execute(sbx, "x = 41\nprint('hello')\nimport sys; print('oops', file=sys.stderr)\nx + 1")
    check_stream_shape(lines)
    assert lines[0]["execution_count"] == 1
    assert stdout(lines) == "hello\n"
    assert "oops" in "".join(line["text"] for line in of_type(lines, "stderr"))
    results = of_type(lines, "result")
    assert len(results) == 1 and results[0]["text"] == "42" and results[0]["is_main_result"] is True
    assert results[0]["extra"] == {}

    again = e2b.execute(sbx, "x")
    assert again[0]["execution_count"] == 2
    assert of_type(again, "result")[0]["text"] == "41"


def test_code_errors_are_lines_of_a_200_stream(e2b, sbx):
    lines = e2b.execute(sbx, "def f():\n    return 1 / 0\nf()")
    check_stream_shape(lines)
    errors = of_type(lines, "error")
    assert len(errors) == 1
    assert errors[0]["name"] == "ZeroDivisionError"
    assert errors[0]["value"] == "division by zero"
    assert "Traceback" in errors[0]["traceback"] and "1 / 0" in errors[0]["traceback"]


def test_env_vars_of_the_sandbox_and_of_one_execution(e2b, sbx):
    lines = e2b.execute(sbx, "import os; print(os.environ.get('FROM_CREATE'), os.environ.get('ONCE'))",
                        env_vars={"ONCE": "1"})
    assert stdout(lines) == "yes 1\n"
    lines = e2b.execute(sbx, "import os; print(os.environ.get('ONCE'))")
    assert stdout(lines) == "None\n"


def test_rich_results_keep_e2b_keys(e2b, sbx):
    code = ("import matplotlib\nmatplotlib.use('Agg')\nimport matplotlib.pyplot as plt\n"
            "plt.plot([1, 2, 3])\nplt.show()")
    lines = e2b.execute(sbx, code)
    check_stream_shape(lines)
    pngs = [r for r in of_type(lines, "result") if "png" in r]
    assert len(pngs) == 1, of_type(lines, "result")
    import base64
    assert base64.b64decode(pngs[0]["png"]).startswith(b"\x89PNG\r\n\x1a\n")
    assert pngs[0]["is_main_result"] is False


def test_languages_and_contexts(e2b, sbx):
    lines = e2b.execute(sbx, "const a = 20; a + 22", language="js")
    assert of_type(lines, "result")[0]["text"] == "42"

    r = e2b.data(sbx, CODE_PORT, "POST", "/contexts", {"language": "python", "cwd": "/tmp"}, token=False)
    assert r.status == 200, r
    ctx = r.body
    assert set(ctx) == {"id", "language", "cwd"} and ctx["language"] == "python" and ctx["cwd"] == "/tmp"

    e2b.execute(sbx, "y = 'own state'", context_id=ctx["id"])
    lines = e2b.execute(sbx, "import os; print(y, os.getcwd())", context_id=ctx["id"])
    assert stdout(lines) == "own state /tmp\n"
    # The default context does not share it.
    lines = e2b.execute(sbx, "y")
    assert of_type(lines, "error")[0]["name"] == "NameError"

    listed = e2b.data(sbx, CODE_PORT, "GET", "/contexts", token=False)
    assert listed.status == 200
    assert ctx["id"] in [c["id"] for c in listed.body]
    assert {"python", "javascript"} <= {c["language"] for c in listed.body}

    r = e2b.data(sbx, CODE_PORT, "POST", f"/contexts/{ctx['id']}/restart", token=False,
                 headers={"Content-Type": "application/json"})
    assert r.status == 200 and r.body is None, r
    lines = e2b.execute(sbx, "y", context_id=ctx["id"])
    assert of_type(lines, "error")[0]["name"] == "NameError"

    r = e2b.data(sbx, CODE_PORT, "DELETE", f"/contexts/{ctx['id']}", token=False)
    assert r.status == 200 and r.body is None, r
    r = e2b.data(sbx, CODE_PORT, "DELETE", f"/contexts/{ctx['id']}", token=False)
    assert r.status == 404 and r.body == f"Context {ctx['id']} not found", r


def test_execute_errors_before_the_stream(e2b, sbx):
    r = e2b.data(sbx, CODE_PORT, "POST", "/execute", {"code": "1", "context_id": "nope"})
    assert r.status == 404 and r.body == "Context nope not found", r
    r = e2b.data(sbx, CODE_PORT, "POST", "/execute", {"code": "1", "context_id": "a", "language": "python"})
    assert r.status == 400 and r.body == "Only one of context_id or language can be provided", r
    r = e2b.data(sbx, CODE_PORT, "POST", "/execute", {"language": "python"})
    assert r.status == 400, r
    r = e2b.data(sbx, CODE_PORT, "POST", "/execute", {"code": "1", "language": "cobol"})
    assert r.status == 400 and "cobol" in r.body, r


def test_execute_needs_the_sandboxs_access_token(e2b, sbx):
    r = e2b.data(sbx, CODE_PORT, "POST", "/execute", {"code": "1"}, token=False)
    assert r.status == 401, r
    r = e2b.data(sbx, CODE_PORT, "POST", "/execute", {"code": "1"},
                 headers={"X-Access-Token": "0" * 32})
    assert r.status == 401, r
    assert e2b.data(sbx, CODE_PORT, "GET", "/health", token=False).body == "OK"


def test_headers_come_before_the_code_has_run(e2b, sbx):
    """The SDK waits for headers with its request timeout: they must not wait for the
    cell (§3.1). The cell blocks until this test writes a file through envd."""
    code = ("import os, time\nwhile not os.path.exists('/home/user/go'): time.sleep(0.02)\n"
            "print('went')")
    got_status = threading.Event()
    out = {}

    def run():
        c = pycurl.Curl()
        body = bytearray()
        c.setopt(pycurl.URL, e2b.base + "/execute")
        c.setopt(pycurl.POSTFIELDS, json.dumps({"code": code}))
        c.setopt(pycurl.HTTPHEADER, [f"E2b-Sandbox-Id: {sbx['sandboxID']}", "E2b-Sandbox-Port: 49999",
                                     f"X-Access-Token: {sbx['envdAccessToken']}",
                                     "Content-Type: application/json"])
        c.setopt(pycurl.HEADERFUNCTION,
                 lambda line: got_status.set() if line.startswith(b"HTTP/1.1 200") else None)
        c.setopt(pycurl.WRITEFUNCTION, body.extend)
        c.setopt(pycurl.TIMEOUT, 60)
        c.perform()
        out["lines"] = ndjson(bytes(body))
        c.close()

    t = threading.Thread(target=run)
    t.start()
    try:
        assert got_status.wait(20), "no response headers while the cell runs"
        assert "lines" not in out
    finally:
        r = e2b.data(sbx, ENVD_PORT, "POST", "/files?path=/home/user/go", b"",
                     headers={"Content-Type": "application/octet-stream"})
        assert r.status == 200, r
        t.join(30)
    assert stdout(out["lines"]) == "went\n"


def test_keepalive_lines_while_a_cell_is_silent(e2b, sbx):
    lines = e2b.execute(sbx, "import time; time.sleep(2.5); print('done')")
    check_stream_shape(lines)
    assert of_type(lines, "keepalive"), "no keepalive during 2.5 s of silence"
    assert stdout(lines) == "done\n"


def test_a_client_that_leaves_interrupts_its_cell(e2b, sbx):
    e2b.execute(sbx, "kept = 7")
    with pytest.raises(AssertionError, match="transport error"):
        e2b.data(sbx, CODE_PORT, "POST", "/execute",
                 {"code": "import time\nfor _ in range(600): time.sleep(0.1)"}, timeout=1)
    # The next cell runs as soon as the interrupted one has stopped (not after 60 s),
    # and the state survived the interrupt.
    started = time.monotonic()
    lines = e2b.execute(sbx, "kept", timeout=30)
    assert of_type(lines, "result")[0]["text"] == "7"
    assert time.monotonic() - started < 30


# ---- envd -----------------------------------------------------------------------------

def test_files_upload_multipart_and_raw_then_read(e2b, sbx):
    payload = bytes(range(256)) * 64
    boundary = "----codeexec-test"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"data/blob.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode() \
        + payload + f"\r\n--{boundary}--\r\n".encode()
    r = e2b.data(sbx, ENVD_PORT, "POST", "/files?path=data/blob.bin&username=user", body,
                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert r.status == 200, r
    assert r.body == [{"path": "/home/user/data/blob.bin", "name": "blob.bin", "type": "file"}]
    r = e2b.data(sbx, ENVD_PORT, "GET", "/files?path=/home/user/data/blob.bin")
    assert r.status == 200 and r.raw == payload
    # The code sees it where the SDK said.
    lines = e2b.execute(sbx, "print(len(open('/home/user/data/blob.bin','rb').read()))")
    assert stdout(lines) == f"{len(payload)}\n"

    r = e2b.data(sbx, ENVD_PORT, "POST", "/files?path=/tmp/raw.txt", "é\n".encode(),
                 headers={"Content-Type": "application/octet-stream"})
    assert r.status == 200, r
    assert e2b.data(sbx, ENVD_PORT, "GET", "/files?path=/tmp/raw.txt").raw == "é\n".encode()

    r = e2b.data(sbx, ENVD_PORT, "GET", "/files?path=/home/user/missing")
    assert r.status == 404 and r.body["code"] == 404, r
    r = e2b.data(sbx, ENVD_PORT, "GET", "/files?path=/etc/passwd")
    assert r.status in (400, 403, 404) and r.body["code"] == r.status, r
    r = e2b.data(sbx, ENVD_PORT, "GET", "/files?path=/home/user/data/blob.bin", token=False)
    assert r.status == 401, r


def test_one_file_part_among_other_form_fields_goes_to_path(e2b, sbx):
    boundary = "----codeexec-fields"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhello\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"other.txt\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\nthe file\r\n--{boundary}--\r\n").encode()
    r = e2b.data(sbx, ENVD_PORT, "POST", "/files?path=fields/target.txt", body,
                 headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert r.status == 200, r
    assert r.body == [{"path": "/home/user/fields/target.txt", "name": "target.txt", "type": "file"}], r
    assert e2b.data(sbx, ENVD_PORT, "GET", "/files?path=/home/user/fields/target.txt").raw == b"the file"


def test_envd_health_and_unserved_rpc(e2b, sbx):
    assert e2b.data(sbx, ENVD_PORT, "GET", "/health", token=False).status == 204
    r = e2b.data(sbx, ENVD_PORT, "POST", "/process.Process/Start", {"process": {"cmd": "ls"}})
    assert r.status == 404 and r.body["code"] == "unimplemented", r


# ---- routing --------------------------------------------------------------------------

def test_routing_by_host_and_closed_ports(e2b, sbx):
    host = {"Host": f"49999-{sbx['sandboxID']}.e2b.local", "X-Access-Token": sbx["envdAccessToken"]}
    r = http_request(e2b.base, "POST", "/execute", {"code": "6 * 7"}, host)
    assert r.status == 200, r
    assert of_type(ndjson(r.raw), "result")[0]["text"] == "42"
    r = e2b.data(sbx, "8080", "GET", "/")
    assert r.status == 502 and r.body["message"] == "The sandbox is running but port is not open", r
    r = http_request(e2b.base, "GET", "/health",
                     headers={"E2b-Sandbox-Id": "nope", "E2b-Sandbox-Port": CODE_PORT})
    assert r.status == 502 and r.body["sandboxId"] == "nope", r


def test_debug_ports_serve_one_shared_sandbox(service_factory):
    """E2B_DEBUG=true in the SDK: no control plane, fixed ports on localhost (§4)."""
    svc = service_factory(env={"E2B_COMPAT_DEBUG_PORTS": "true"})
    code_url, envd_url = "http://127.0.0.1:49999", "http://127.0.0.1:49983"
    debug = {"E2b-Sandbox-Id": "debug_sandbox_id"}
    r = http_request(code_url, "POST", "/execute", {"code": "z = 5"}, {**debug, "E2b-Sandbox-Port": CODE_PORT})
    assert r.status == 200, r
    check_stream_shape(ndjson(r.raw))
    # No headers at all still reach the same sandbox: its state is there.
    r = http_request(code_url, "POST", "/execute", {"code": "z * 2"})
    assert of_type(ndjson(r.raw), "result")[0]["text"] == "10"
    assert http_request(envd_url, "GET", "/health").status == 204
    r = http_request(envd_url, "POST", "/files?path=note.txt", b"debug",
                     {"Content-Type": "application/octet-stream"})
    assert r.status == 200, r
    r = http_request(code_url, "POST", "/execute", {"code": "print(open('note.txt').read())"})
    assert stdout(ndjson(r.raw)) == "debug\n"
    # The debug sandbox is a sandbox of the service like any other.
    assert wait_until(lambda: svc.health()["sandboxes"]["stateful"] == 1, timeout=5)


def test_a_key_has_one_rate_budget_on_both_listeners(service_factory):
    port = free_port()
    svc = service_factory(env={"E2B_COMPAT_PORT": str(port), "API_KEYS": KEY,
                               "KEY_RATE_LIMIT_RPS": "1", "KEY_RATE_LIMIT_BURST": "2"})
    e2b = E2b(svc, port)
    # The burst of 2: one request on the native API, one on E2B's; the next is over.
    assert svc.http("GET", "/sandboxes", headers=auth(KEY)).status == 200
    assert e2b.api("GET", "/v2/sandboxes").status == 200
    limited = e2b.api("GET", "/v2/sandboxes")
    assert limited.status == 429, limited
    assert limited.body["code"] == 429 and limited.headers.get("retry-after"), limited


def test_a_new_sandbox_lists_default_python_and_javascript_contexts_first(e2b):
    sbx = e2b.create()
    try:
        listed = e2b.data(sbx, CODE_PORT, "GET", "/contexts", token=False)
        assert [c["language"] for c in listed.body] == ["python", "javascript"], listed
        r = e2b.data(sbx, CODE_PORT, "POST", "/contexts", {"language": "python"}, token=False)
        assert r.status == 200, r
        listed = e2b.data(sbx, CODE_PORT, "GET", "/contexts", token=False)
        assert [c["id"] for c in listed.body][-1] == r.body["id"], "creation order: the new one last"
        # The default javascript context is the one a `language` request uses.
        e2b.execute(sbx, "var marker = 1", language="javascript")
        javascript = listed.body[1]
        assert of_type(e2b.execute(sbx, "marker", context_id=javascript["id"]), "result")[0]["text"] == "1"
    finally:
        e2b.kill(sbx)


def test_a_sandbox_killed_during_a_cell_cuts_its_stream(e2b):
    """E2B: the NDJSON transfer fails (no end_of_execution, no final chunk), so
    the SDK asks isRunning() and reports the sandbox killed."""
    sbx = e2b.create()
    url = urllib.parse.urlsplit(e2b.base)
    body = json.dumps({"code": "import time\nprint('started', flush=True)\ntime.sleep(30)"}).encode()
    head = (f"POST /execute HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Type: application/json\r\n"
            f"E2b-Sandbox-Id: {sbx['sandboxID']}\r\nE2b-Sandbox-Port: {CODE_PORT}\r\n"
            f"X-Access-Token: {sbx['envdAccessToken']}\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    with socket.create_connection((url.hostname, url.port), timeout=30) as connection:
        connection.sendall(head + body)
        received = b""
        while b"started" not in received:
            chunk = connection.recv(65536)
            assert chunk, f"the stream ended before the cell printed: {received!r}"
            received += chunk
        e2b.kill(sbx)
        while chunk := connection.recv(65536):  # keepalive lines, then the cut
            received += chunk
    assert received.startswith(b"HTTP/1.1 200") and b"transfer-encoding: chunked" in received.lower()
    assert b"end_of_execution" not in received, received[-300:]
    assert not received.endswith(b"0\r\n\r\n"), f"the chunked body was ended cleanly: {received[-100:]!r}"
    r = e2b.data(sbx, ENVD_PORT, "GET", "/health")
    assert r.status == 502, "the killed sandbox's envd answers as E2B's edge proxy"
