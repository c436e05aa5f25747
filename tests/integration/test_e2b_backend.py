"""SANDBOX_BACKEND=e2b end to end: the real binary against the test E2B server
(tests/e2b/fake_e2b_server.py, which speaks E2B's protocol and runs our runners
as its kernels), with every error of the issue injected through its
/_test/faults route.

Every test ends with no sandbox alive in the test E2B: nothing leaks on any
path. Waits are deadlines on /_test/state, never sleeps.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import conftest
from helpers import (REPO_ROOT, http_request, is_final_status, main_result, run, stderr_of,
                     stdout_of, wait_until)

FAKE_SERVER = REPO_ROOT / "tests" / "e2b" / "fake_e2b_server.py"
API_KEY = "e2b_test_key"
CREATE_RETRIES = 3


class FakeE2B:
    """The test E2B server, and its /_test routes."""

    def __init__(self, tmp_path: Path):
        port_file = tmp_path / "port"
        self.log = open(tmp_path / "fake-e2b.log", "w")
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", str(FAKE_SERVER), "--port", "0", "--port-file", str(port_file),
             "--api-key", API_KEY],
            stdout=self.log, stderr=subprocess.STDOUT, env={"PATH": "/usr/bin:/bin", "TMPDIR": str(tmp_path)})
        wait_until(lambda: port_file.exists() and port_file.read_text().strip() or self.proc.poll() is not None,
                   15, message="the test E2B server did not start")
        assert self.proc.poll() is None, "the test E2B server exited at start"
        self.url = f"http://127.0.0.1:{int(port_file.read_text())}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(15)
        self.log.close()

    def faults(self, *rules):
        resp = http_request(self.url, "POST", "/_test/faults", list(rules))
        assert resp.status in (200, 204), f"faults refused: {resp!r}"

    def reset(self):
        assert http_request(self.url, "POST", "/_test/reset").status in (200, 204)

    def state(self) -> dict:
        resp = http_request(self.url, "GET", "/_test/state")
        assert resp.status == 200, resp
        return resp.body

    def alive(self) -> list[dict]:
        return [s for s in self.state()["sandboxes"] if s["alive"]]

    def requests(self, method: str, path_part: str) -> list[dict]:
        return [r for r in self.state()["requests"] if r["method"] == method and path_part in r["path"]]

    def wait_all_killed(self, timeout: float = 15):
        wait_until(lambda: not self.alive(), timeout,
                   message=lambda _: f"E2B sandboxes still alive: {[s['sandboxID'] for s in self.alive()]}")

    def sandbox(self, sandbox_id: str) -> dict:
        return next(s for s in self.state()["sandboxes"] if s["sandboxID"] == sandbox_id)


def e2b_env(fake: FakeE2B, **extra) -> dict:
    env = {"SANDBOX_BACKEND": "e2b", "E2B_API_KEY": API_KEY, "E2B_API_URL": fake.url,
           "E2B_SANDBOX_URL": fake.url, "E2B_CREATE_RETRIES": str(CREATE_RETRIES),
           "INTERRUPT_GRACE_MS": "500"}
    env.update({k: str(v) for k, v in extra.items()})
    return env


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    server = FakeE2B(tmp_path_factory.mktemp("fake-e2b"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def svc(fake, request, tmp_path_factory):
    log = tmp_path_factory.mktemp("codeexec-e2b") / "codeexec.log"
    instance = conftest._start(e2b_env(fake), log, "codeexec-e2b", request.config)
    yield instance
    try:
        code = instance.stop(timeout=30)
        assert code == 0, f"exited with {code} after SIGTERM:\n{instance.log_tail(40)}"
        fake.wait_all_killed()
    finally:
        instance.kill()
        instance.close_log()


def wait_settled(svc, fake: FakeE2B, timeout: float = 15):
    """Waits until the service has no E2B sandbox and no E2B call under way (a create
    still in flight would make a sandbox after the check), then until E2B has no
    sandbox alive."""
    def settled():
        body = svc.health()
        return body["sandboxes"]["live"] == 0 and body["e2b"]["requestsInFlight"] == 0
    wait_until(settled, timeout, message=lambda _: f"the service is not settled: {svc.health()}")
    fake.wait_all_killed(timeout)


@pytest.fixture(autouse=True)
def clean_fake(svc, fake):
    """Each test starts without faults and ends with every E2B sandbox killed and
    nothing left under way."""
    fake.reset()
    yield
    wait_settled(svc, fake)


def execute(svc, code: str, **fields):
    return svc.http("POST", "/execute", {"code": code, **fields}, timeout=60)


def create_sandbox(svc, **fields) -> str:
    resp = svc.http("POST", "/sandboxes", fields or b"", timeout=60)
    assert resp.status == 201, resp
    return resp.body["sandboxId"]


def sexec(svc, sid: str, code: str, **fields):
    return svc.http("POST", f"/sandboxes/{sid}/execute", {"code": code, **fields}, timeout=60)


def e2b_id_of_last_create(fake: FakeE2B) -> str:
    alive = fake.alive()
    assert len(alive) == 1, alive
    return alive[0]["sandboxID"]


# =========================================================================
# Executions
# =========================================================================

def test_health_names_the_e2b_backend(svc):
    body = svc.health()
    assert body["backend"] == "e2b", body
    assert {l["language"] for l in body["languages"] if l["available"]} >= {"python", "javascript"}


def test_one_shot_execute_runs_in_a_new_e2b_sandbox_that_is_killed_after(svc, fake):
    resp = execute(svc, 'print("hi")\n1+1', language="python")
    assert resp.status == 200, resp
    result = resp.body["result"]
    assert result["status"] == "ok", result
    assert stdout_of(result) == "hi\n"
    assert main_result(result)["text"] == "2"
    fake.wait_all_killed()
    state = fake.state()
    assert len(state["killed"]) == 1, state["killed"]
    (create,) = [r for r in state["requests"] if r["path"] == "/v2/sandboxes"]
    assert create["headers"]["x-api-key"] == API_KEY
    assert create["body"]["templateID"] == "code-interpreter-v1"
    (run_request,) = [r for r in state["requests"] if r["path"] == "/execute"]
    assert run_request["headers"]["e2b-sandbox-id"] == state["killed"][0]
    assert run_request["headers"]["e2b-sandbox-port"] == "49999"
    assert run_request["headers"].get("x-access-token"), "the envd access token of create is sent"
    assert run_request["body"]["language"] == "python"


def test_code_errors_and_stderr_come_through(svc):
    result = execute(svc, 'import sys\nprint("e", file=sys.stderr)\nundefined_name').body["result"]
    assert result["status"] == "error", result
    assert result["error"]["name"] == "NameError", result
    assert "e\n" in stderr_of(result)
    js = execute(svc, "console.log(6 * 7)", language="javascript").body["result"]
    assert js["status"] == "ok" and stdout_of(js) == "42\n", js


def _stream_events(service, client_id: str, code: str) -> list[dict]:
    async def scenario():
        async with service.ws_connect(client_id) as ws:
            execution_id = await service.start_stream(client_id, code, "python", 30000)
            return await ws.collect(execution_id, until=is_final_status, timeout=30)
    return run(scenario(), timeout=60)


def _shape(events: list[dict]) -> list[tuple]:
    """Kind and order of the events: merged output, errors' names, statuses."""
    out: list[tuple] = []
    for ev in events:
        t = ev["type"]
        if t in ("stdout", "stderr"):
            if out and out[-1][0] == t:
                out[-1] = (t, out[-1][1] + ev["data"])
            else:
                out.append((t, ev["data"]))
        elif t == "error":
            out.append((t, ev["error"]["name"]))
        elif t == "result":
            out.append((t, ev["result"]["status"], [r.get("text") for r in ev["result"]["results"]]))
        else:
            out.append((t, ev["status"]))
    return out


def test_stream_events_are_those_of_the_local_backend(svc, service, client_id):
    code = 'import sys\nprint("a")\nprint("b", file=sys.stderr)\nprint("c")\n{"k": 1}\nraise ValueError("x")'
    e2b_events = _stream_events(svc, client_id, code)
    local_events = _stream_events(service, client_id + "-local", code)
    assert _shape(e2b_events) == _shape(local_events), (e2b_events, local_events)
    assert _shape(e2b_events)[0] == ("status", "running")
    assert _shape(e2b_events)[-1] == ("status", "failed")


def test_output_cap_is_enforced_on_the_stream(svc):
    result = execute(svc, 'print("x" * 100000)', limits={"outputBytes": 4096}).body["result"]
    assert result["status"] == "output_limit", result
    assert result["truncated"]["stdout"] is True
    assert len(stdout_of(result)) <= 4096


def test_stdin_is_refused_clearly_before_any_sandbox_is_made(svc, fake):
    resp = execute(svc, "input()", stdin="hello\n")
    assert resp.status == 400, resp
    assert resp.body["error"]["code"] == "not_supported_by_backend", resp
    assert not fake.requests("POST", "/v2/sandboxes"), "a refused request made a sandbox"
    sid = create_sandbox(svc)
    resp = sexec(svc, sid, "input()", interactive=True)
    assert resp.status == 400 and resp.body["error"]["code"] == "not_supported_by_backend", resp
    assert svc.http("DELETE", f"/sandboxes/{sid}").status == 204


# =========================================================================
# Stateful sandboxes
# =========================================================================

def test_stateful_sandbox_keeps_state_and_manages_contexts(svc, fake):
    sid = create_sandbox(svc, timeout=120)
    e2b_id = e2b_id_of_last_create(fake)
    assert sexec(svc, sid, "x = 41").body["result"]["status"] == "ok"
    assert main_result(sexec(svc, sid, "x + 1").body["result"])["text"] == "42"

    resp = svc.http("POST", f"/sandboxes/{sid}/contexts", {"language": "javascript"})
    assert resp.status == 201, resp
    ctx = resp.body["id"]
    assert resp.body["language"] == "javascript"
    listed = svc.http("GET", f"/sandboxes/{sid}/contexts").body["contexts"]
    assert ctx in [c["id"] for c in listed], listed
    assert {"python", "javascript"} <= {c["language"] for c in listed}
    assert stdout_of(sexec(svc, sid, "var y = 5; console.log(y)", contextId=ctx).body["result"]) == "5\n"
    assert svc.http("POST", f"/sandboxes/{sid}/contexts/{ctx}/restart").status == 200
    after = sexec(svc, sid, "console.log(typeof y)", contextId=ctx).body["result"]
    assert stdout_of(after) == "undefined\n", after
    assert svc.http("DELETE", f"/sandboxes/{sid}/contexts/{ctx}").status in (200, 204)
    missing = sexec(svc, sid, "1", contextId=ctx)
    assert missing.status == 404 and missing.body["error"]["code"] == "context_not_found", missing

    assert svc.http("DELETE", f"/sandboxes/{sid}").status == 204
    wait_until(lambda: e2b_id in fake.state()["killed"], 10, message="DELETE did not reach E2B")


def test_set_timeout_reaches_e2b(svc, fake):
    sid = create_sandbox(svc, timeout=60)
    e2b_id = e2b_id_of_last_create(fake)
    # E2B's timeout is kept beyond ours: set at adopt, then renewed by /timeout.
    assert svc.http("POST", f"/sandboxes/{sid}/timeout", {"timeout": 3000}).status == 200
    calls = wait_until(lambda: [r for r in fake.requests("POST", f"/sandboxes/{e2b_id}/timeout")
                                if r["body"]["timeout"] >= 3000], 10,
                       message="no POST /timeout of at least 3000 s reached E2B")
    assert calls[-1]["headers"]["x-api-key"] == API_KEY
    assert fake.sandbox(e2b_id)["timeout_s"] >= 3000
    assert svc.http("DELETE", f"/sandboxes/{sid}").status == 204


def test_deadline_interrupts_the_remote_cell_and_keeps_state(svc, fake):
    sid = create_sandbox(svc, timeout=120)
    e2b_id = e2b_id_of_last_create(fake)
    assert sexec(svc, sid, "kept = 7").body["result"]["status"] == "ok"
    t0 = time.monotonic()
    result = sexec(svc, sid, "import time\nwhile True: time.sleep(0.05)", timeout=1000).body["result"]
    assert time.monotonic() - t0 < 10
    assert result["status"] == "timeout", result
    assert "state is kept" in result["error"]["value"], result
    wait_until(lambda: fake.sandbox(e2b_id)["interrupts"] >= 1, 10,
               message="E2B did not see the cell interrupted")
    assert main_result(sexec(svc, sid, "kept").body["result"])["text"] == "7"
    assert svc.http("DELETE", f"/sandboxes/{sid}").status == 204


def test_deadline_of_a_one_shot_kills_its_e2b_sandbox(svc, fake):
    result = execute(svc, "import time\ntime.sleep(60)", timeout=800).body["result"]
    assert result["status"] == "timeout", result
    fake.wait_all_killed()
    assert len(fake.state()["killed"]) == 1


# =========================================================================
# E2B failures
# =========================================================================

@pytest.mark.parametrize("rule, status, code", [
    ({"status": 401}, 502, "e2b_unauthorized"),
    ({"status": 429, "retry_after": 2}, 429, "e2b_rate_limited"),
    ({"status": 500}, 503, "e2b_unavailable"),
    ({"status": 503}, 503, "e2b_unavailable"),
    ({"status": 502}, 410, "sandbox_gone"),
    # libcurl sends a request again on another connection when a reused keep-alive
    # connection dies before any byte of an answer (a server closing an idle connection
    # looks like that); it gives up after 5 tries.
    ({"reset": True, "times": 6}, 503, "e2b_unavailable"),
])
def test_execute_failures_become_specific_errors(svc, fake, rule, status, code):
    fake.faults({"op": "execute", **rule})
    resp = execute(svc, "1")
    assert resp.status == status, resp
    assert resp.body["error"]["code"] == code, resp
    if status in (429, 503):
        assert int(resp.headers["retry-after"]) == rule.get("retry_after", 1), resp.headers
    wait_until(lambda: fake.state()["killed"], 10, message="the one-shot sandbox was not killed")


def test_a_stream_cut_before_the_end_is_a_clear_sandbox_error(svc, fake):
    fake.faults({"op": "execute", "cut_after_lines": 2})
    resp = execute(svc, 'print("one", flush=True)\nimport time\ntime.sleep(1)\nprint("two")')
    assert resp.status == 200, resp
    result = resp.body["result"]
    assert result["status"] == "sandbox_error", result
    assert "ended before the end of the execution" in result["error"]["value"], result
    # What arrived before the cut is kept (an RST may discard lines still in flight).
    assert "one\n".startswith(stdout_of(result)), result


def test_a_sandbox_gone_mid_life_ends_the_stateful_sandbox(svc, fake):
    sid = create_sandbox(svc, timeout=120)
    fake.faults({"op": "execute", "status": 502})
    resp = sexec(svc, sid, "1")
    assert resp.status == 410 and resp.body["error"]["code"] == "sandbox_gone", resp
    wait_until(lambda: svc.http("GET", f"/sandboxes/{sid}").status == 404, 10,
               message="the gone sandbox is still listed")


def test_a_sandbox_gone_during_a_contexts_call_answers_it(svc, fake):
    sid = create_sandbox(svc, timeout=120)
    fake.faults({"op": "contexts", "status": 502})
    resp = svc.http("POST", f"/sandboxes/{sid}/contexts", {"language": "javascript"}, timeout=30)
    assert resp.status == 410 and resp.body["error"]["code"] == "sandbox_gone", resp
    wait_until(lambda: svc.http("GET", f"/sandboxes/{sid}").status == 404, 10,
               message="the gone sandbox is still listed")


def test_create_errors_are_not_retried_when_final(svc, fake):
    fake.faults({"op": "create", "status": 401})
    resp = execute(svc, "1")
    assert resp.status == 502 and resp.body["error"]["code"] == "e2b_unauthorized", resp
    assert "E2B_API_KEY" in resp.body["error"]["message"]
    assert len(fake.requests("POST", "/v2/sandboxes")) == 1
    resp = svc.http("POST", "/sandboxes", {})
    assert resp.status == 201 or resp.body["error"]["code"] != "sandbox_start_failed", resp
    if resp.status == 201:
        assert svc.http("DELETE", f"/sandboxes/{resp.body['sandboxId']}").status == 204


@pytest.mark.parametrize("rule", [
    {"status": 429, "retry_after": 1},
    {"status": 503},
    {"status": 500, "times": 2},
    {"reset": True},
])
def test_transient_create_failures_are_retried(svc, fake, rule):
    fake.faults({"op": "create", **rule})
    resp = execute(svc, "print('ok')")
    assert resp.status == 200 and resp.body["result"]["status"] == "ok", resp
    assert len(fake.requests("POST", "/v2/sandboxes")) == rule.get("times", 1) + 1


def test_create_retries_are_bounded(svc, fake):
    fake.faults({"op": "create", "status": 503, "times": 20})
    t0 = time.monotonic()
    resp = execute(svc, "1")
    assert resp.status == 503 and resp.body["error"]["code"] == "e2b_unavailable", resp
    assert len(fake.requests("POST", "/v2/sandboxes")) == CREATE_RETRIES + 1
    assert time.monotonic() - t0 < 15
    # A stateful sandbox that cannot be created is refused with the same error.
    fake.reset()
    fake.faults({"op": "create", "status": 401})
    resp = svc.http("POST", "/sandboxes", {})
    assert resp.status == 502 and resp.body["error"]["code"] == "e2b_unauthorized", resp


def test_a_create_answered_after_the_deadline_is_killed(svc, fake):
    # The create takes longer than the execution may: the execution ends, and the
    # sandbox E2B creates afterwards is killed, not leaked.
    fake.faults({"op": "create", "delay_ms": 1500})
    result = execute(svc, "1", timeout=300).body["result"]
    assert result["status"] == "timeout", result
    wait_until(lambda: fake.state()["killed"], 10, message="the late sandbox was not killed")


def test_kill_failures_are_retried(svc, fake):
    fake.faults({"op": "kill", "status": 503})
    assert execute(svc, "1").body["result"]["status"] == "ok"
    wait_until(lambda: len(fake.requests("DELETE", "/sandboxes/")) >= 2, 10,
               message="the failed DELETE was not retried")


# =========================================================================
# Shutdown
# =========================================================================

def test_shutdown_kills_every_remote_sandbox(fake, service_factory):
    instance = service_factory(e2b_env(fake))
    sids = [create_sandbox(instance, timeout=300) for _ in range(2)]
    assert len(fake.alive()) == 2
    assert instance.stop(timeout=30) == 0
    # Killed before the process exited: nothing is left to wait for.
    assert not fake.alive(), fake.alive()
    assert len(fake.state()["killed"]) == 2, sids
