"""The fake E2B server against the protocol it claims to speak
(docs/reference/e2b-protocol.md; § numbers below are that file's), and
each kind of injected fault."""

import gzip
import http.client
import json
import re
import socket
import time
from datetime import datetime

import pytest

from conftest import API_KEY, DEADLINE_S, FakeE2B, main_result, pid_alive, wait_for
from fake_e2b.kernels import descendants

NOT_FOUND_MESSAGE = "Sandbox \"{}\" doesn't exist or you don't have access to it"


def edge_not_found(sandbox_id):
    return {"sandboxId": sandbox_id, "message": "The sandbox was not found", "code": 502}


# ---- control plane (§1) ------------------------------------------------------

def test_the_api_key_is_required(server):
    for key in (None, "wrong"):
        response = server.api("POST", "/v2/sandboxes", {"templateID": "base"}, key=key)
        assert response.status == 401
        assert response.json()["code"] == 401
        assert "Invalid API key" in response.json()["message"]
    assert server.request("GET", "/_test/state").status == 200, "the /_test routes need no key"


def test_create_answers_a_sandbox_and_honours_its_fields(server):
    response = server.api("POST", "/v2/sandboxes", {
        "templateID": "code-interpreter-v1", "timeout": 120,
        "metadata": {"owner": "ci"}, "envVars": {"GREETING": "hello"}})
    assert response.status == 201
    sandbox = response.json()
    assert set(sandbox) == {"sandboxID", "templateID", "clientID", "envdVersion", "envdAccessToken",
                            "trafficAccessToken", "domain", "alias"}
    assert re.fullmatch(r"[a-z0-9]{20}", sandbox["sandboxID"])
    assert sandbox["alias"] == "code-interpreter-v1" and sandbox["templateID"] != sandbox["alias"]
    assert tuple(map(int, sandbox["envdVersion"].split("."))) >= (0, 5, 7)
    assert re.fullmatch(r"[0-9a-f]{32}", sandbox["envdAccessToken"])
    assert sandbox["trafficAccessToken"] is None and sandbox["domain"] is None

    state = server.sandbox_state(sandbox["sandboxID"])
    assert state["timeout_s"] == 120 and state["alive"]
    assert sorted(c["language"] for c in state["contexts"]) == ["javascript", "python"]
    lines, _ = server.execute(sandbox, "import os; os.environ['GREETING']")
    assert main_result(lines) == "hello", "envVars are the kernels' environment"
    detail = server.api("GET", f"/sandboxes/{sandbox['sandboxID']}").json()
    assert detail["metadata"] == {"owner": "ci"} and detail["state"] == "running"


def test_create_defaults_to_300_seconds_and_rejects_bad_bodies(server):
    sandbox = server.create()
    assert server.sandbox_state(sandbox["sandboxID"])["timeout_s"] == 300
    for body in ({}, {"templateID": "base", "timeout": "long"}, {"templateID": "base", "envVars": {"A": 1}}):
        response = server.api("POST", "/v2/sandboxes", body)
        assert response.status == 400 and response.json()["code"] == 400, body


def test_list_filters_and_pages(server):
    first = server.create(metadata={"team": "a"})
    second = server.create(metadata={"team": "b", "x": "y z"})
    third = server.create(metadata={"team": "a"})
    listed = server.api("GET", "/v2/sandboxes")
    assert [s["sandboxID"] for s in listed.json()] == [s["sandboxID"] for s in (first, second, third)]
    assert listed.headers["X-Total-Running"] == "3" and "X-Next-Token" not in listed.headers
    assert set(listed.json()[0]) >= {"sandboxID", "templateID", "clientID", "startedAt", "endAt", "state",
                                     "cpuCount", "memoryMB", "envdVersion", "metadata"}

    # The SDK's metadata query: each pair URL-encoded, then the whole value (§1).
    team_a = server.api("GET", "/v2/sandboxes?metadata=team%3Da").json()
    assert [s["sandboxID"] for s in team_a] == [first["sandboxID"], third["sandboxID"]]
    spaced = server.api("GET", "/v2/sandboxes?metadata=x%3Dy%252520z").json()
    assert [s["sandboxID"] for s in spaced] == [second["sandboxID"]]
    assert server.api("GET", "/v2/sandboxes?state=paused").json() == []
    assert len(server.api("GET", "/v2/sandboxes?state=running,paused").json()) == 3

    page = server.api("GET", "/v2/sandboxes?limit=2")
    assert [s["sandboxID"] for s in page.json()] == [first["sandboxID"], second["sandboxID"]]
    rest = server.api("GET", f"/v2/sandboxes?limit=2&nextToken={page.headers['X-Next-Token']}")
    assert [s["sandboxID"] for s in rest.json()] == [third["sandboxID"]]
    assert "X-Next-Token" not in rest.headers
    assert server.api("GET", "/v2/sandboxes?limit=0").status == 400


def test_timeout_connect_and_kill(server, sandbox):
    sandbox_id = sandbox["sandboxID"]
    before = server.sandbox_state(sandbox_id)["end_at"]
    assert server.api("POST", f"/sandboxes/{sandbox_id}/timeout", {"timeout": 900}).status == 204
    after = server.sandbox_state(sandbox_id)
    assert after["timeout_s"] == 900 and after["end_at"] > before
    connected = server.api("POST", f"/v2/sandboxes/{sandbox_id}/connect", {"timeout": 10})
    assert connected.status == 200 and connected.json()["sandboxID"] == sandbox_id
    assert server.sandbox_state(sandbox_id)["end_at"] == after["end_at"], "connect never shortens"

    pids = [c["pid"] for c in after["contexts"]]
    assert server.api("DELETE", f"/sandboxes/{sandbox_id}").status == 204
    state = server.state()
    assert state["killed"] == [sandbox_id]
    assert not any(map(pid_alive, pids)), "every kernel of a killed sandbox is gone"
    assert server.data(sandbox, 49983, "GET", "/health").json() == edge_not_found(sandbox_id)
    for method, path, body in (("DELETE", f"/sandboxes/{sandbox_id}", None),
                               ("GET", f"/sandboxes/{sandbox_id}", None),
                               ("POST", f"/sandboxes/{sandbox_id}/timeout", {"timeout": 1}),
                               ("POST", f"/v2/sandboxes/{sandbox_id}/connect", {})):
        response = server.api(method, path, body)
        assert response.status == 404, path
        assert response.json() == {"code": 404, "message": NOT_FOUND_MESSAGE.format(sandbox_id)}


def test_an_expired_sandbox_is_killed(server):
    sandbox = server.create(timeout=1)
    wait_for(lambda: sandbox["sandboxID"] in server.state()["killed"], "the reaper")
    response = server.data(sandbox, 49999, "POST", "/execute", {"code": "1"})
    assert response.status == 502 and response.json() == edge_not_found(sandbox["sandboxID"])


# ---- data-plane routing (§2) ---------------------------------------------------

def test_health_routes_and_unknown_ports(server, sandbox):
    response = server.data(sandbox, 49999, "GET", "/health")
    assert (response.status, response.json()) == (200, "OK")
    assert server.data(sandbox, 49983, "GET", "/health").status == 204
    closed = server.data(sandbox, 50005, "GET", "/")
    assert closed.status == 502 and closed.json()["message"] == "The sandbox is running but port is not open"
    unknown = server.data({"sandboxID": "nope"}, 49999, "GET", "/health")
    assert unknown.status == 502 and unknown.json() == edge_not_found("nope")
    assert unknown.headers["Content-Type"] == "application/json; charset=utf-8"


def test_routing_by_host_name(server, sandbox):
    host = {"Host": f"49983-{sandbox['sandboxID']}.e2b.test"}
    assert server.request("GET", "/health", headers=host).status == 204


def test_access_token_on_execute_and_files_only(server, sandbox):
    assert server.data(sandbox, 49999, "POST", "/execute", {"code": "1"}, token=False).status == 401
    assert server.data(sandbox, 49983, "GET", "/files?path=x", token=False).status == 401
    wrong = {"X-Access-Token": "0" * 32}
    assert server.data(sandbox, 49983, "POST", "/files?path=x", b"x", headers=wrong, token=False).status == 401
    # The SDK sends no token to /contexts (§2), and envd's /health is open.
    assert server.data(sandbox, 49999, "GET", "/contexts", token=False).status == 200
    assert server.data(sandbox, 49983, "GET", "/health", token=False).status == 204


# ---- /execute (§3.1) -----------------------------------------------------------

def test_execute_lines_are_e2b_ndjson(server, sandbox):
    connection, response = server.open_execute(
        sandbox, {"code": "import sys\nprint('out')\nprint('err', file=sys.stderr)\n1/0"})
    assert response.status == 200
    assert response.headers["Transfer-Encoding"] == "chunked" and "Content-Type" not in response.headers
    raw = response.read().decode().splitlines()
    connection.close()
    lines = [json.loads(line) for line in raw]
    assert all(line == json.dumps(parsed) for line, parsed in zip(raw, lines)), "json.dumps separators"
    assert lines[0] == {"type": "number_of_executions", "execution_count": 1}
    assert [line["type"] for line in lines] == ["number_of_executions", "stdout", "stderr", "error",
                                                "end_of_execution"]
    stdout, stderr, error = lines[1:4]
    assert stdout["text"] == "out\n" and stderr["text"] == "err\n"
    assert list(stdout) == ["type", "text", "timestamp"]
    assert datetime.fromisoformat(stdout["timestamp"]).utcoffset().total_seconds() == 0
    assert error["name"] == "ZeroDivisionError" and error["value"] == "division by zero"
    assert isinstance(error["traceback"], str) and "ZeroDivisionError" in error["traceback"]


def test_results_carry_known_keys_extra_and_is_main_result(server, sandbox):
    lines, _ = server.execute(sandbox, "import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()\n'done'")
    results = [line for line in lines if line["type"] == "result"]
    figure, main = results
    assert figure["png"].startswith("iVBORw0KGgo") and figure["is_main_result"] is False
    assert main == {"type": "result", "text": "done", "extra": {}, "is_main_result": True}
    allowed = {"type", "text", "html", "markdown", "svg", "png", "jpeg", "pdf", "latex", "json",
               "javascript", "data", "chart", "extra", "is_main_result"}
    assert all(set(result) <= allowed for result in results)
    second, _ = server.execute(sandbox, "2")
    assert second[0]["execution_count"] == 2, "the count goes on in a context"


def test_headers_come_before_the_code_finishes(server, sandbox):
    """The cell waits for a file that the test writes only after it got the
    status line and the first line: no timing involved."""
    connection, response = server.open_execute(
        sandbox, {"code": "import os, time\nwhile not os.path.exists('go'): time.sleep(0.01)\nprint('went')"})
    assert response.status == 200
    assert json.loads(response.readline())["type"] == "number_of_executions"
    assert server.data(sandbox, 49983, "POST", "/files?path=go", b"",
                       headers={"Content-Type": "application/octet-stream"}).status == 200
    rest = [json.loads(line) for line in response.read().decode().splitlines()]
    connection.close()
    assert rest[0]["text"] == "went\n" and rest[-1] == {"type": "end_of_execution"}


def test_keepalive_after_five_quiet_seconds(server, sandbox):
    lines, _ = server.execute(sandbox, "import time; time.sleep(5.5); print('late')")
    assert [line["type"] for line in lines] == ["number_of_executions", "keepalive", "stdout",
                                                "end_of_execution"]


@pytest.mark.parametrize("body, expected", [
    ({"code": "1", "language": "python", "context_id": "x"}, (400, "Only one of context_id or language")),
    ({"code": "1", "context_id": "nope"}, (404, "Context nope not found")),
    ({"code": "1", "language": "cobol"}, (500, "Failed to create context")),
    ({"language": "python"}, (422, "detail")),
])
def test_execute_errors(server, sandbox, body, expected):
    status, text = expected
    response = server.data(sandbox, 49999, "POST", "/execute", body)
    assert response.status == status, response.body
    assert text in response.text


def test_languages_and_their_default_contexts(server, sandbox):
    assert main_result(server.execute(sandbox, "[1, 2].length", language="js")[0]) == "2"
    assert main_result(server.execute(sandbox, "const n: number = 3; n * 2", language="TS ")[0]) == "6"
    assert server.execute(sandbox, "echo from-bash", language="bash")[0][1]["text"] == "from-bash\n"
    assert main_result(server.execute(sandbox, "import sys; sys.version_info[0]")[0]) == "3"
    languages = sorted(c["language"] for c in server.sandbox_state(sandbox["sandboxID"])["contexts"])
    assert languages == ["bash", "javascript", "python", "typescript"], "ts runs in its own default context"


def test_env_vars_apply_to_one_cell(server, sandbox):
    code = "import os; os.environ.get('CELL_ONLY', 'unset')"
    assert main_result(server.execute(sandbox, code, env_vars={"CELL_ONLY": "1"})[0]) == "1"
    assert main_result(server.execute(sandbox, code)[0]) == "unset"


def test_executions_on_one_context_are_serialized(server, sandbox):
    """The first cell waits for a file; the second appends to the log at once
    if it may run. Serialized, the log reads first-then-second."""
    first = server.open_execute(sandbox, {
        "code": "import os, time\nwhile not os.path.exists('go'): time.sleep(0.01)\n"
                "open('log', 'a').write('first ')"})
    assert json.loads(first[1].readline())["type"] == "number_of_executions"
    second = server.open_execute(sandbox, {"code": "open('log', 'a').write('second')"})
    assert second[1].status == 200, "headers come at once even while the context is busy"
    server.data(sandbox, 49983, "POST", "/files?path=go", b"", headers={"Content-Type": "application/octet-stream"})
    for connection, response in (first, second):
        assert json.loads(response.read().decode().splitlines()[-1]) == {"type": "end_of_execution"}
        connection.close()
    assert server.data(sandbox, 49983, "GET", "/files?path=log").text == "first second"


def test_a_client_that_leaves_interrupts_the_cell(server, sandbox):
    server.execute(sandbox, "kept = 7")
    connection, response = server.open_execute(sandbox, {"code": "import time; time.sleep(60)"})
    assert json.loads(response.readline())["type"] == "number_of_executions"
    connection.close()
    wait_for(lambda: server.sandbox_state(sandbox["sandboxID"])["interrupts"] == 1, "the interrupt")
    started = time.monotonic()
    assert main_result(server.execute(sandbox, "kept")[0]) == "7", "interrupted, not restarted"
    assert time.monotonic() - started < DEADLINE_S


def test_a_kernel_that_dies_is_restarted(server, sandbox):
    lines, _ = server.execute(sandbox, "import os; os._exit(3)")
    assert lines[-2] == {"type": "error", "name": "ContextRestarting", "value": "Context was restarted",
                         "traceback": ""}
    assert main_result(server.execute(sandbox, "1 + 1")[0]) == "2"


def test_killing_a_sandbox_mid_cell_drops_the_connection(server, sandbox):
    connection, response = server.open_execute(sandbox, {"code": "import time; time.sleep(60)"})
    response.readline()
    assert server.api("DELETE", f"/sandboxes/{sandbox['sandboxID']}").status == 204
    with pytest.raises((http.client.IncompleteRead, ConnectionResetError)):
        response.read()
    connection.close()


# ---- contexts (§3.2) -------------------------------------------------------------

def test_contexts(server, sandbox):
    listed = server.data(sandbox, 49999, "GET", "/contexts").json()
    assert sorted((c["language"], c["cwd"]) for c in listed) == [("javascript", "/home/user"),
                                                                 ("python", "/home/user")]
    created = server.data(sandbox, 49999, "POST", "/contexts", {"language": "Python", "cwd": "/tmp/work"})
    assert created.status == 200
    context = created.json()
    assert set(context) == {"id", "language", "cwd"} and context["language"] == "python"
    assert main_result(server.execute(sandbox, "import os; os.getcwd()", context_id=context["id"])[0]) \
        .endswith("/tmp/work")
    server.execute(sandbox, "mine = 1", context_id=context["id"])

    restart = server.data(sandbox, 49999, "POST", f"/contexts/{context['id']}/restart", b"",
                          headers={"Content-Type": "application/json"})
    assert (restart.status, restart.json()) == (200, None)
    lines, _ = server.execute(sandbox, "mine", context_id=context["id"])
    assert lines[0]["execution_count"] == 1 and lines[1]["name"] == "NameError"

    removed = server.data(sandbox, 49999, "DELETE", f"/contexts/{context['id']}")
    assert (removed.status, removed.json()) == (200, None)
    for method, path in (("DELETE", f"/contexts/{context['id']}"), ("POST", f"/contexts/{context['id']}/restart")):
        response = server.data(sandbox, 49999, method, path)
        assert (response.status, response.text) == (404, f"Context {context['id']} not found")
    bad = server.data(sandbox, 49999, "POST", "/contexts", {"language": "cobol"})
    assert bad.status == 500 and bad.headers["Content-Type"].startswith("text/plain")


# ---- envd files (§5) ----------------------------------------------------------

def multipart(parts, boundary="----fake-e2b-test"):
    body = b"".join(b"--%s\r\nContent-Disposition: form-data; name=\"file\"; filename=\"%s\"\r\n"
                    b"Content-Type: application/octet-stream\r\n\r\n%s\r\n" % (boundary.encode(), name.encode(), data)
                    for name, data in parts)
    return body + b"--%s--\r\n" % boundary.encode(), {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def test_files_upload_and_download(server, sandbox):
    binary = bytes(range(256)) + b"\r\n--not-a-boundary\r\n"
    body, headers = multipart([("/home/user/up/one.bin", binary), ("two.txt", b"two")])
    written = server.data(sandbox, 49983, "POST", "/files", body, headers)
    assert written.status == 200
    assert written.json() == [{"name": "one.bin", "type": "file", "path": "/home/user/up/one.bin"},
                              {"name": "two.txt", "type": "file", "path": "/home/user/two.txt"}]
    download = server.data(sandbox, 49983, "GET", "/files?path=up/one.bin")
    assert download.body == binary and download.headers["Content-Type"] == "application/octet-stream"

    octet = {"Content-Type": "application/octet-stream"}
    assert server.data(sandbox, 49983, "POST", "/files?path=/tmp/raw", b"raw", octet).json()[0]["path"] == "/tmp/raw"
    zipped = server.data(sandbox, 49983, "POST", "/files?path=z.txt", gzip.compress(b"unzipped"),
                         {**octet, "Content-Encoding": "gzip"})
    assert zipped.status == 200
    assert server.data(sandbox, 49983, "GET", "/files?path=/home/user/z.txt").body == b"unzipped"
    lines, _ = server.execute(sandbox, "open('two.txt').read()")
    assert main_result(lines) == "two", "the kernels' cwd is /home/user"


@pytest.mark.parametrize("path, status", [("missing.txt", 404), ("/home", 400), ("../../../etc/passwd", 400)])
def test_file_errors(server, sandbox, path, status):
    response = server.data(sandbox, 49983, "GET", f"/files?path={path}")
    assert response.status == status and response.json()["code"] == status


# ---- faults -----------------------------------------------------------------------

FAULT_CALLS = {  # op → (plane, method, path, body)
    "create": ("api", "POST", "/v2/sandboxes", {"templateID": "base"}),
    "list": ("api", "GET", "/v2/sandboxes", None),
    "get": ("api", "GET", "/sandboxes/{id}", None),
    "kill": ("api", "DELETE", "/sandboxes/{id}", None),
    "timeout": ("api", "POST", "/sandboxes/{id}/timeout", {"timeout": 60}),
    "connect": ("api", "POST", "/v2/sandboxes/{id}/connect", {}),
    "execute": (49999, "POST", "/execute", {"code": "1"}),
    "contexts": (49999, "GET", "/contexts", None),
    "files": (49983, "POST", "/files?path=x", b"data"),
    "health": (49983, "GET", "/health", None),
}


def call_op(server, sandbox, op):
    plane, method, path, body = FAULT_CALLS[op]
    path = path.format(id=sandbox["sandboxID"])
    if plane == "api":
        return server.api(method, path, body)
    return server.data(sandbox, plane, method, path, body)


# Every op and every status at least once; 404 and 502 on each plane.
STATUS_FAULTS = [("create", 401), ("create", 429), ("list", 503), ("get", 404), ("kill", 500),
                 ("timeout", 502), ("connect", 404), ("execute", 404), ("execute", 502), ("execute", 500),
                 ("contexts", 503), ("files", 404), ("files", 401), ("health", 502), ("health", 429)]


@pytest.mark.parametrize("op, status", STATUS_FAULTS)
def test_status_faults_have_e2b_bodies(server, sandbox, op, status):
    server.faults({"op": op, "status": status})
    response = call_op(server, sandbox, op)
    assert response.status == status
    if status == 502:
        assert response.json()["message"] == "The sandbox was not found"
    elif op in ("execute", "contexts"):
        assert response.headers["Content-Type"].startswith("text/plain"), "FastAPI answers text"
    else:
        assert response.json()["code"] == status
    assert call_op(server, sandbox, op).status != status, "a rule is consumed"


def test_retry_after_custom_body_and_times(server, sandbox):
    server.faults({"op": "create", "status": 429, "retry_after": 2, "times": 2},
                  {"op": "create", "status": 500, "body": {"code": 500, "message": "boom"}})
    for _ in range(2):
        response = server.api("POST", "/v2/sandboxes", {"templateID": "base"})
        assert (response.status, response.headers["Retry-After"]) == (429, "2")
    response = server.api("POST", "/v2/sandboxes", {"templateID": "base"})
    assert (response.status, response.json()) == (500, {"code": 500, "message": "boom"})
    assert server.api("POST", "/v2/sandboxes", {"templateID": "base"}).status == 201
    assert server.state()["faults"] == []


def test_reset_closes_the_connection_without_an_answer(server, sandbox):
    server.faults({"op": "execute", "reset": True})
    with pytest.raises((ConnectionResetError, http.client.RemoteDisconnected)):
        server.data(sandbox, 49999, "POST", "/execute", {"code": "1"})
    assert server.sandbox_state(sandbox["sandboxID"])["executions"] == 0, "the code never ran"


def test_cut_after_lines_ends_the_stream_early_and_interrupts(server, sandbox):
    server.faults({"op": "execute", "cut_after_lines": 2})
    connection, response = server.open_execute(
        sandbox, {"code": "print('one', flush=True)\nimport time; time.sleep(60)"})
    assert json.loads(response.readline())["type"] == "number_of_executions"
    assert json.loads(response.readline())["text"] == "one\n"
    with pytest.raises((http.client.IncompleteRead, ConnectionResetError)):
        response.read()
    connection.close()
    wait_for(lambda: server.sandbox_state(sandbox["sandboxID"])["interrupts"] == 1, "the interrupt")


def test_cut_never_sends_end_of_execution(server, sandbox):
    server.faults({"op": "execute", "cut_after_lines": 100})
    connection, response = server.open_execute(sandbox, {"code": "1"})
    lines = [json.loads(response.readline()) for _ in range(2)]
    assert [line["type"] for line in lines] == ["number_of_executions", "result"]
    with pytest.raises((http.client.IncompleteRead, ConnectionResetError)):
        response.read()
    connection.close()


def test_delay_then_normal_answer(server, sandbox):
    server.faults({"op": "health", "delay_ms": 300})
    started = time.monotonic()
    assert server.data(sandbox, 49983, "GET", "/health").status == 204
    assert time.monotonic() - started >= 0.3


@pytest.mark.parametrize("rule", [{"op": "nope", "status": 500}, {"op": "list", "status": 418},
                                  {"op": "list"}, {"op": "list", "status": 500, "reset": True},
                                  {"op": "list", "cut_after_lines": 1}, {"op": "list", "status": 500, "times": 0}])
def test_invalid_fault_rules_are_refused(server, rule):
    assert server.request("POST", "/_test/faults", [rule]).status == 400
    assert server.state()["faults"] == []


def test_reset_kills_everything_and_forgets(server, sandbox):
    server.faults({"op": "list", "status": 500})
    pids = [c["pid"] for c in server.sandbox_state(sandbox["sandboxID"])["contexts"]]
    assert server.request("POST", "/_test/reset").status == 200
    state = server.state()
    assert state == {"sandboxes": [], "killed": [], "requests": [], "faults": []}
    assert not any(map(pid_alive, pids))


def test_the_request_log(server, sandbox):
    server.data(sandbox, 49999, "POST", "/execute", {"code": "1", "env_vars": {"A": "b"}},
                headers={"Content-Type": "application/json"})
    server.api("DELETE", f"/sandboxes/{sandbox['sandboxID']}")
    create, execute, kill = server.state()["requests"]
    assert (create["method"], create["path"], create["headers"]["x-api-key"]) == ("POST", "/v2/sandboxes", API_KEY)
    assert create["body"] == {"templateID": "code-interpreter-v1"}
    assert execute["headers"]["x-access-token"] == sandbox["envdAccessToken"]
    assert execute["headers"]["e2b-sandbox-port"] == "49999"
    assert execute["body"] == {"code": "1", "env_vars": {"A": "b"}}
    assert (kill["method"], kill["path"]) == ("DELETE", f"/sandboxes/{sandbox['sandboxID']}")


# ---- the process ------------------------------------------------------------------

def port_is_free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


@pytest.mark.skipif(not (port_is_free(49999) and port_is_free(49983)), reason="49999/49983 are in use")
def test_debug_ports_serve_the_debug_sandbox(tmp_path):
    fake = FakeE2B(tmp_path, "--debug-ports")
    try:
        debug = {"sandboxID": "debug_sandbox_id"}  # no token: the SDK has none in debug mode (§4)
        connection, response = fake.open_execute(debug, {"code": "1+1"}, port=49999)
        lines = [json.loads(line) for line in response.read().decode().splitlines()]
        connection.close()
        assert main_result(lines) == "2"
        assert fake.request("GET", "/health", port=49983).status == 204
        assert fake.api("GET", "/sandboxes/debug_sandbox_id").status == 404, "no control plane knows it"
    finally:
        assert fake.stop() == 0


def test_sigterm_kills_every_kernel_and_removes_the_files(tmp_path):
    fake = FakeE2B(tmp_path)
    fake.create()
    kernels = descendants(fake.process.pid)
    (root,) = tmp_path.glob("fake-e2b-*")  # the server's TMPDIR is tmp_path
    assert len(kernels) >= 2 and any(root.iterdir())
    assert fake.stop() == 0
    assert not any(map(pid_alive, kernels)) and not root.exists()
