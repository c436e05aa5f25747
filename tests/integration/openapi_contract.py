"""The contract test: every HTTP response the integration tests receive from the
native listener, and every WebSocket message, is checked against docs/openapi.json
(python3-jsonschema, JSON Schema 2020-12). An undocumented route, method, status,
content type or body shape fails the test that received it, so the document
cannot drift from the service.

helpers.http_request calls check_response for the base URLs that Service.start
registered (the E2B-compatible listeners speak E2B's API, which this document
does not describe); WsClient.recv_json calls check_ws_message.
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from typing import Any

import jsonschema

DOC_PATH = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
DOC = json.loads(DOC_PATH.read_text(encoding="utf-8"))
_RESOLVER = jsonschema.RefResolver.from_schema(DOC)
_lock = threading.Lock()
_validators: dict[str, jsonschema.Draft202012Validator] = {}
_bases: set[str] = set()
# What was checked, for the report at the end of the session (conftest).
checked: dict[str, int] = {}


def _template_regex(template: str) -> re.Pattern:
    parts = [re.escape(p) if not p.startswith("{") else "[^/]+" for p in template.strip("/").split("/")]
    return re.compile("^/" + "/".join(parts) + "$" if parts != [""] else "^/$")


_ROUTES = [(_template_regex(t), t, item) for t, item in DOC["paths"].items()]


def register(base_url: str) -> None:
    """Responses from `base_url` (a native listener) are checked from now on."""
    with _lock:
        _bases.add(base_url)


def unregister(base_url: str) -> None:
    """The listener is gone: its port may be reused by something else."""
    with _lock:
        _bases.discard(base_url)


def applies_to(base_url: str) -> bool:
    with _lock:
        return base_url in _bases


def resolve(node: dict) -> dict:
    """Follows a local $ref ("#/components/…") until a non-reference."""
    while isinstance(node, dict) and "$ref" in node:
        target: Any = DOC
        for key in node["$ref"].lstrip("#/").split("/"):
            target = target[key]
        node = target
    return node


def _validator(schema: dict) -> jsonschema.Draft202012Validator:
    key = json.dumps(schema, sort_keys=True)
    with _lock:
        v = _validators.get(key)
        if v is None:
            v = jsonschema.Draft202012Validator(schema, resolver=_RESOLVER)
            _validators[key] = v
    return v


def _fail(what: str, detail: str) -> None:
    raise AssertionError(f"contract: {what} does not match docs/openapi.json: {detail}")


def validate(schema: dict, instance: Any, what: str) -> None:
    errors = sorted(_validator(schema).iter_errors(instance), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        where = "/".join(str(p) for p in e.absolute_path) or "(root)"
        _fail(what, f"at {where}: {e.message[:400]}")


def find_route(path: str):
    """(template, path item) of a concrete path, or None."""
    if len(path) > 1 and path.endswith("/"):
        path = path[:-1]  # the service tolerates one trailing slash
    for regex, template, item in _ROUTES:
        if regex.match(path):
            return template, item
    return None


def check_response(method: str, path: str, status: int, headers: dict, raw: bytes, body: Any) -> None:
    """Raises AssertionError when the response is not one the document describes."""
    method = method.upper()
    if method in ("OPTIONS", "HEAD"):
        return  # CORS preflights and HEAD carry no body of their own
    path = path.split("?", 1)[0]
    what = f"{method} {path} -> {status}"
    route = find_route(path)
    if route is None:
        # No such route: the one answer is 404 not_found.
        if status != 404:
            _fail(what, "the path is not in the document")
        validate(DOC["components"]["schemas"]["Error"], body, what)
        _count("unknown path 404")
        return
    template, item = route
    op = item.get(method.lower())
    if op is None:
        if status != 405:
            _fail(what, f"{template} has no {method} operation")
        if "allow" not in headers:
            _fail(what, "a 405 must carry Allow")
        validate(DOC["components"]["schemas"]["Error"], body, what)
        _count(f"{template} 405")
        return
    responses = op["responses"]
    documented = responses.get(str(status)) or responses.get(f"{str(status)[0]}XX") or responses.get("default")
    if documented is None:
        _fail(what, f"status {status} is not documented for {method} {template}")
    documented = resolve(documented)
    for name, header in (documented.get("headers") or {}).items():
        if resolve(header).get("required") and name.lower() not in headers:
            _fail(what, f"header {name} is required")
    content = documented.get("content")
    if not content:
        if raw:
            _fail(what, f"no body is documented, got {raw[:200]!r}")
        _count(f"{method} {template} {status}")
        return
    ctype = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    media = content.get(ctype)
    if media is None:
        _fail(what, f"content type {ctype!r} is not documented (documented: {', '.join(content)})")
    if ctype == "application/json":
        try:
            parsed = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            _fail(what, f"the body is not JSON ({e}): {raw[:200]!r}")
        validate(media.get("schema", {}), parsed, what)
    _count(f"{method} {template} {status}")


def check_ws_message(message: dict) -> None:
    validate({"$ref": "#/components/schemas/WsServerMessage"}, message,
             f"WebSocket message {json.dumps(message)[:200]}")
    _count(f"ws {message.get('type')}")


def _count(key: str) -> None:
    with _lock:
        checked[key] = checked.get(key, 0) + 1
