"""Execution records: GET /executions/{id} (state, and once ended the result /execute
returns) and POST /executions/{id}/cancel, visible only to the key that started it."""
import pytest

from helpers import collect_events, run, wait_until

KEY, OTHER = "records-key-1", "records-key-2"


@pytest.fixture
def keyed(service_factory):
    return service_factory({"API_KEYS": f"{KEY},{OTHER}", "KEY_RATE_LIMIT_RPS": "0"})


def auth(key):
    return {"Authorization": f"Bearer {key}"}


def record(svc, eid, key=KEY):
    return svc.http("GET", f"/executions/{eid}", headers=auth(key))


def test_a_completed_execution_has_the_result_execute_returned(keyed):
    resp = keyed.http("POST", "/execute", {"code": "print('hi')\n6*7"}, headers=auth(KEY))
    assert resp.status == 200, resp
    eid = resp.body["executionId"]
    got = record(keyed, eid)
    assert got.status == 200, got
    assert got.body["executionId"] == eid and got.body["state"] == "completed", got.body
    assert got.body["result"] == resp.body["result"], (got.body["result"], resp.body["result"])
    assert got.body["duration"] == resp.body["duration"]
    assert got.body["startedAt"] <= got.body["endedAt"], got.body


def test_a_failed_execution_is_failed(keyed):
    resp = keyed.http("POST", "/execute", {"code": "raise ValueError('nope')"}, headers=auth(KEY))
    got = record(keyed, resp.body["executionId"])
    assert got.body["state"] == "failed", got.body
    assert got.body["result"]["error"]["name"] == "ValueError", got.body


def test_a_streamed_execution_is_running_then_cancelled(keyed, client_id):
    async def scenario():
        async with _ws(keyed, client_id) as ws:
            resp = await keyed.ahttp("POST", "/execute-stream",
                                     {"code": "import time\nprint('up', flush=True)\ntime.sleep(60)",
                                      "clientId": client_id}, headers=auth(KEY))
            eid = resp.body["executionId"]
            await collect_events(ws, eid, until=lambda ev: ev.get("type") == "stdout")
            running = await keyed.ahttp("GET", f"/executions/{eid}", headers=auth(KEY))
            cancel = await keyed.ahttp("POST", f"/executions/{eid}/cancel", headers=auth(KEY))
            events = await collect_events(ws, eid, timeout=30)
            return eid, running, cancel, events
    eid, running, cancel, events = run(scenario())
    assert running.status == 200 and running.body["state"] == "running", running
    assert "result" not in running.body and "endedAt" not in running.body, running.body
    assert cancel.status == 202 and cancel.body["executionId"] == eid, cancel
    assert events[-1]["status"] == "failed", events[-1]
    wait_until(lambda: record(keyed, eid).body.get("state") == "cancelled", 10, 0.05,
               "the record never became cancelled")
    got = record(keyed, eid).body
    assert got["result"]["error"]["name"] == "ExecutionCancelled", got
    assert got["result"] == events[-2]["result"], "the record differs from the stream's result"
    again = keyed.http("POST", f"/executions/{eid}/cancel", headers=auth(KEY))
    assert again.status == 409 and again.body["error"]["code"] == "execution_ended", again


def _ws(svc, client_id):
    import contextlib
    import urllib.parse
    import websockets
    from helpers import WsClient

    @contextlib.asynccontextmanager
    async def connect():
        url = f"{svc.ws_url}/?clientId={urllib.parse.quote(client_id, safe='')}&token={KEY}"
        conn = await websockets.connect(url, max_size=None, open_timeout=10)
        try:
            yield WsClient(conn, client_id)
        finally:
            await conn.close()
    return connect()


def test_unknown_and_other_keys_records_are_404(keyed):
    resp = keyed.http("POST", "/execute", {"code": "1"}, headers=auth(KEY))
    eid = resp.body["executionId"]
    for key, path in ((OTHER, f"/executions/{eid}"), (KEY, "/executions/no-such-id")):
        got = keyed.http("GET", path, headers=auth(key))
        assert got.status == 404 and got.body["error"]["code"] == "execution_not_found", got
        cancel = keyed.http("POST", path + "/cancel", headers=auth(key))
        assert cancel.status == 404, cancel
    assert keyed.http("GET", f"/executions/{eid}").status == 401
    assert keyed.http("DELETE", f"/executions/{eid}", headers=auth(KEY)).status == 405


def test_records_are_bounded_least_recently_used_first(service_factory):
    svc = service_factory({"EXECUTION_RECORDS_MAX": "2"})
    ids = [svc.http("POST", "/execute", {"code": str(i)}).body["executionId"] for i in range(3)]
    assert svc.http("GET", f"/executions/{ids[0]}").status == 404
    assert svc.http("GET", f"/executions/{ids[1]}").status == 200
    assert svc.http("GET", f"/executions/{ids[2]}").status == 200
