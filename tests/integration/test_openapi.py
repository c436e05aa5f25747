"""GET /openapi.json and the document against the routes the service really has.

The contract itself (every response of every test checked against the document)
is openapi_contract.py, called by helpers.http_request."""

from __future__ import annotations

import re

import pytest

import openapi_contract
from openapi_contract import DOC, DOC_PATH

pytestmark = pytest.mark.validation


def test_served_document_is_the_committed_one(http):
    status, headers, body = resp = http("GET", "/openapi.json")
    assert status == 200, resp
    assert headers["content-type"].startswith("application/json"), headers
    assert resp.raw == DOC_PATH.read_bytes(), "GET /openapi.json differs from docs/openapi.json"
    assert body["openapi"].startswith("3.1"), body["openapi"]


def test_openapi_needs_no_key(service_factory):
    svc = service_factory(env={"API_KEYS": "k1"})
    assert svc.http("GET", "/openapi.json").status == 200
    assert svc.http("GET", "/sandboxes").status == 401


def test_wrong_method_on_document(http):
    status, headers, body = resp = http("POST", "/openapi.json", {})
    assert status == 405, resp
    assert headers["allow"] == "GET", headers
    assert body["error"]["code"] == "method_not_allowed", body


def _concrete(template: str) -> str:
    template = template.replace("{file}", "playground.js")
    return re.sub(r"\{[^}]+\}", "nonexistent0", template)


def test_every_documented_operation_is_served(http):
    """Each documented path and method reaches a route: never the router's 404
    not_found nor 405 (the answer itself is checked by the contract hook). The
    sandbox that `POST /sandboxes` makes on the shared instance is deleted after, so
    later tests' leak checks do not find it."""
    before = {sb["sandboxId"] for sb in http("GET", "/sandboxes").body["sandboxes"]}
    try:
        _call_every_documented_operation(http)
    finally:
        for sb in http("GET", "/sandboxes").body["sandboxes"]:
            if sb["sandboxId"] not in before:
                assert http("DELETE", f"/sandboxes/{sb['sandboxId']}").status == 204


def _call_every_documented_operation(http):
    for template, item in DOC["paths"].items():
        for method in item:
            if method == "parameters":
                continue
            if template == "/mcp" and method == "get":
                continue  # documented as 405: the server offers no SSE stream
            path = _concrete(template)
            if "files" in template:
                path += "?path=x.txt"
            body = b"" if method.upper() in ("POST", "PUT") else None
            resp = http(method.upper(), path, body)
            assert resp.status != 405, f"{method.upper()} {template}: {resp!r}"
            if resp.status == 404:
                code = resp.body["error"]["code"] if isinstance(resp.body, dict) else None
                assert code != "not_found", f"{method.upper()} {template} is not routed: {resp!r}"


def test_undocumented_path_is_a_plain_404(http):
    resp = http("GET", "/no/such/route")
    assert resp.status == 404 and resp.body["error"]["code"] == "not_found", resp


def test_contract_rejects_what_the_document_does_not_say():
    """The hook is not a no-op: a body that breaks the schema fails."""
    good = b'{"ready": true, "reasons": []}'
    openapi_contract.check_response("GET", "/ready", 200, {"content-type": "application/json"}, good, None)
    with pytest.raises(AssertionError, match="contract"):
        openapi_contract.check_response("GET", "/ready", 200, {"content-type": "application/json"},
                                        b'{"ready": "yes"}', None)
    # Any other status must carry the Error body (the operation's `default`).
    with pytest.raises(AssertionError, match="contract"):
        openapi_contract.check_response("GET", "/ready", 418, {"content-type": "application/json"}, good, None)
    with pytest.raises(AssertionError, match="not documented"):
        openapi_contract.check_response("GET", "/ready", 200, {"content-type": "text/html"}, good, None)
    with pytest.raises(AssertionError, match="contract"):
        openapi_contract.check_ws_message({"type": "stdout", "executionId": "x"})
