"""Request validation and HTTP error mapping: 4xx {"error": {"code", "message"}},
never a 500, a crash or a hang."""

import json

import pytest

from helpers import MIB, check_execute_response, stdout_of

pytestmark = pytest.mark.validation

ENDPOINTS = ["/execute", "/execute-stream"]


def check_error(resp, status: int, code, what: str):
    """code: a string or a tuple of acceptable codes."""
    assert resp.status == status, f"{what}: expected HTTP {status}, got {resp!r}"
    assert "application/json" in resp.headers.get("content-type", ""), \
        f"{what}: error Content-Type is {resp.headers.get('content-type')!r}"
    body = resp.body
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), \
        f"{what}: body must be {{\"error\": {{\"code\", \"message\"}}}}, got {resp!r}"
    err = body["error"]
    codes = code if isinstance(code, tuple) else (code,)
    assert err.get("code") in codes, f"{what}: error.code {err.get('code')!r}, expected {codes}: {body!r}"
    assert isinstance(err.get("message"), str) and err["message"].strip(), f"{what}: empty message: {body!r}"
    return err


def with_client(endpoint, payload):
    if endpoint == "/execute-stream" and isinstance(payload, dict) and "clientId" not in payload:
        payload = dict(payload, clientId="validation-client")
    return payload


# Raw bodies (bytes) that are not valid JSON.
INVALID_JSON = {
    "truncated": b'{"code": "print(1)"',
    "garbage": b"not json at all",
    "trailing-comma": b'{"code": "1",}',
    "single-quotes": b"{'code': '1'}",
    "bad-utf8": b'{"code": "\xff\xfe"}',
    "empty": b"",
}


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("name", list(INVALID_JSON))
def test_invalid_json(service, endpoint, name):
    resp = service.http("POST", endpoint, INVALID_JSON[name], timeout=10)
    check_error(resp, 400, "invalid_json", f"{endpoint} body {name}")


# JSON bodies that are valid JSON but not valid requests -> 400 invalid_request.
INVALID_REQUEST = {
    "array": [],
    "array-with-object": [{"code": "1"}],
    "string": "print(1)",
    "number": 42,
    "null": None,
    "missing-code": {"language": "python"},
    "empty-code": {"code": ""},
    "code-null": {"code": None},
    "code-number": {"code": 123},
    "code-array": {"code": ["print(1)"]},
    "code-object": {"code": {"src": "print(1)"}},
    "nul-byte": {"code": "print(1)\u0000"},
    "nul-byte-middle": {"code": "print('a')\u0000print('b')"},
    "timeout-string": {"code": "1", "timeout": "1000"},
    "timeout-float": {"code": "1", "timeout": 1.5},
    "timeout-bool": {"code": "1", "timeout": True},
    "timeout-zero": {"code": "1", "timeout": 0},
    "timeout-negative": {"code": "1", "timeout": -1},
    "timeout-over-max": {"code": "1", "timeout": 120001},
    "timeout-huge": {"code": "1", "timeout": 10 ** 30},
    "language-number": {"code": "1", "language": 3},
    "language-array": {"code": "1", "language": ["python"]},
    "language-bool": {"code": "1", "language": True},
}


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("name", list(INVALID_REQUEST))
def test_invalid_request(service, endpoint, name):
    payload = with_client(endpoint, INVALID_REQUEST[name])
    body = json.dumps(payload).encode()
    resp = service.http("POST", endpoint, body, timeout=10)
    check_error(resp, 400, "invalid_request", f"{endpoint} {name} {body[:80]!r}")


@pytest.mark.parametrize("client", [None, "", 42, ["c"]], ids=["missing", "empty", "number", "array"])
def test_execute_stream_needs_client_id(service, client):
    payload = {"code": "print(1)"}
    if client is not None:
        payload["clientId"] = client
    resp = service.http("POST", "/execute-stream", payload, timeout=10)
    check_error(resp, 400, "invalid_request", f"/execute-stream clientId={client!r}")


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("language", ["ruby", "python2", "java script", "c++", "PYTHON3"])
def test_unsupported_language(service, endpoint, language):
    resp = service.http("POST", endpoint, with_client(endpoint, {"code": "1", "language": language}),
                        timeout=10)
    err = check_error(resp, 400, "unsupported_language", f"{endpoint} language={language!r}")
    msg = err["message"].lower()
    for supported in ("python", "javascript", "bash"):
        assert supported in msg, f"message should name the supported languages: {err['message']!r}"


def test_empty_language_is_rejected(service):
    resp = service.http("POST", "/execute", {"code": "1", "language": ""}, timeout=10)
    check_error(resp, 400, ("unsupported_language", "invalid_request"), "language=''")


# ---------------------------------------------------------------- sizes

@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_code_over_1mib_is_413(service, endpoint):
    code = "#" * (MIB + 1)
    resp = service.http("POST", endpoint, with_client(endpoint, {"code": code}), timeout=30)
    check_error(resp, 413, "payload_too_large", f"{endpoint} code of 1 MiB + 1 byte")


def test_code_over_1mib_in_utf8_bytes_is_413(service):
    """The limit is on UTF-8 bytes: 524 289 characters, 1 MiB + 1 bytes."""
    code = "#" + "é" * (MIB // 2)
    assert len(code.encode()) == MIB + 1
    resp = service.http("POST", "/execute", {"code": code}, timeout=30)
    check_error(resp, 413, "payload_too_large", "code of 1 MiB + 1 UTF-8 bytes")


def test_much_larger_body_is_413(service):
    resp = service.http("POST", "/execute", {"code": "#" * (8 * MIB)}, timeout=30)
    check_error(resp, 413, "payload_too_large", "code of 8 MiB")


def test_code_of_exactly_1mib_runs(service):
    code = "print('big ok')\n" + "#" * (MIB - len("print('big ok')\n"))
    assert len(code.encode()) == MIB
    body = service.execute(code, "python", http_timeout=60)
    assert body["result"]["error"] is None, body["result"]
    assert stdout_of(body["result"]) == "big ok\n", body["result"]


def test_code_of_exactly_1mib_with_json_escapes_runs(service):
    """1 MiB of decoded code whose JSON encoding is 2 MiB (every byte escaped):
    the limit applies to the code, not to the raw request body."""
    code = "print('escaped ok')" + "\n" * (MIB - len("print('escaped ok')"))
    assert len(code.encode()) == MIB
    body = json.dumps({"code": code}).encode()
    assert len(body) > 2 * MIB - 100
    resp = service.http("POST", "/execute", body, timeout=60)
    result = check_execute_response(resp)["result"]
    assert stdout_of(result) == "escaped ok\n", result


def test_timeout_at_max_is_accepted(service):
    body = service.execute("print('max ok')", "python", timeout_ms=120000)
    assert stdout_of(body["result"]) == "max ok\n", body


def test_timeout_minimum_is_accepted(service):
    body = service.execute("1", "python", timeout_ms=1)
    assert body["result"]["status"] in ("ok", "timeout"), body


# ---------------------------------------------------------------- routes and methods

@pytest.mark.parametrize("method,path", [
    ("GET", "/nope"), ("POST", "/nope"), ("GET", "/execute/extra"), ("POST", "/execute/x"),
    ("GET", "/healthz"), ("DELETE", "/no/such/route"), ("POST", "/v2/sandboxes"),
])
def test_unknown_route_is_404(service, method, path):
    resp = service.http(method, path, timeout=10)
    check_error(resp, 404, "not_found", f"{method} {path}")


@pytest.mark.parametrize("method,path", [
    ("GET", "/execute"), ("PUT", "/execute"), ("DELETE", "/execute"),
    ("GET", "/execute-stream"), ("PATCH", "/execute-stream"),
    ("POST", "/health"), ("DELETE", "/health"),
])
def test_wrong_method_is_405(service, method, path):
    resp = service.http(method, path, timeout=10)
    check_error(resp, 405, "method_not_allowed", f"{method} {path}")


def test_service_healthy_after_bad_requests(service):
    """Garbage of all kinds above must not have hurt the service."""
    for body in (b"\x00\x01\x02", b"{" * 10000, b"[" * 100000, b'{"code": "' + b"\\u0000" * 10 + b'"}',
                 b'{"code": "1", "code": 2}' * 3):
        resp = service.http("POST", "/execute", body, timeout=10)
        assert 400 <= resp.status < 500, f"body {body[:40]!r}: {resp!r}"
    assert service.health()["status"] == "ok"
    assert stdout_of(service.execute("print('ok after garbage')")["result"]) == "ok after garbage\n"
