"""Helpers for the stateful-sandbox tests (test_sandboxes.py, test_sandbox_files.py,
test_stdin.py): a module-scoped dedicated instance, thin wrappers around the
/sandboxes API that assert the documented shapes, and host-side views of one
instance's sandboxes (their processes, host uids and cgroups).

Like helpers.py, nothing here knows the server's internals: only the public
HTTP/WebSocket API and what any root user sees in /proc and /sys/fs/cgroup.
"""

from __future__ import annotations

import base64
import datetime as _dt
import os
import struct
import time
from pathlib import Path
from typing import Any, Optional

import pytest

import conftest  # the suite's conftest: _start() registers the instance for log capture
from helpers import (SANDBOX_UID_BASE, SANDBOX_UID_COUNT, HttpResponse, _cgroup_paths,
                     assert_nothing_left, check_execute_response, sandbox_cgroups, wait_until)

# The dedicated instance most sandbox tests use: no warm pool (so host-side
# leak checks are exact), a short interrupt grace (fast escalation tests), few
# contexts per sandbox (cheap to hit the limit) and a small body limit (cheap to
# hit "file too big").
SBX_ENV = {
    "INTERRUPT_GRACE_MS": "500",
    "WARM_POOL_SIZE": "0",
    "MAX_CONTEXTS_PER_SANDBOX": "4",
    "MAX_BODY_BYTES": str(4 * 1024 * 1024),
    "SHUTDOWN_GRACE_MS": "1000",
}
SBX_MAX_CONTEXTS = 4
SBX_MAX_BODY = 4 * 1024 * 1024

SANDBOX_FIELDS = ("sandboxId", "language", "state", "createdAt", "expiresAt", "metadata", "limits")
LIMIT_FIELDS = ("memoryMb", "pids", "workspaceMb", "fileSizeMb", "openFiles", "outputBytes")
CONTEXT_FIELDS = ("id", "language", "cwd", "default", "running", "queued")


def module_instance(request, tmp_path_factory, env: dict, name: str):
    """Generator body for a module-scoped fixture: starts a dedicated instance
    with `env` on top of the suite's base env, yields it, and at the end checks
    that it left nothing behind and exits 0 on SIGTERM."""
    log = tmp_path_factory.mktemp(name) / "codeexec.log"
    svc = conftest._start(env, log, name, request.config)
    try:
        yield svc
        if svc.running:
            # Every test deletes what it created: nothing of this instance may remain.
            for sb in (svc.http("GET", "/sandboxes").body or {}).get("sandboxes", []):
                svc.http("DELETE", f"/sandboxes/{sb['sandboxId']}")
            assert_nothing_left(svc, timeout=15, own_only=True)
            code = svc.stop(timeout=30)
            assert code == 0, f"{name} exited with {code} after SIGTERM:\n{svc.log_tail(40)}"
    finally:
        svc.kill()
        svc.close_log()


# --------------------------------------------------------------------------
# API wrappers
# --------------------------------------------------------------------------

def auth(key: Optional[str]) -> Optional[dict]:
    return {"Authorization": f"Bearer {key}"} if key else None


def parse_time(text: str) -> float:
    """ISO 8601 (with Z or an offset, optional fraction) -> unix seconds."""
    assert isinstance(text, str) and text, f"not a timestamp: {text!r}"
    t = text.replace("Z", "+00:00")
    parsed = _dt.datetime.fromisoformat(t)
    assert parsed.tzinfo is not None, f"timestamp without a time zone: {text!r}"
    return parsed.timestamp()


def check_sandbox_obj(sb: Any, where: str = "sandbox") -> dict:
    assert isinstance(sb, dict), f"{where}: not an object: {sb!r}"
    for k in SANDBOX_FIELDS:
        assert k in sb, f"{where}: missing {k!r}: {sb!r}"
    assert isinstance(sb["sandboxId"], str) and sb["sandboxId"], f"{where}: bad sandboxId: {sb!r}"
    assert "/" not in sb["sandboxId"] and "?" not in sb["sandboxId"], f"{where}: sandboxId not URL-safe: {sb!r}"
    assert sb["state"] == "running", f"{where}: state must be 'running': {sb!r}"
    created, expires = parse_time(sb["createdAt"]), parse_time(sb["expiresAt"])
    assert expires > created, f"{where}: expiresAt not after createdAt: {sb!r}"
    assert isinstance(sb["metadata"], dict), f"{where}: metadata must be an object: {sb!r}"
    assert isinstance(sb["limits"], dict), f"{where}: limits must be an object: {sb!r}"
    for k in LIMIT_FIELDS:
        v = sb["limits"].get(k)
        assert isinstance(v, int) and not isinstance(v, bool) and v > 0, f"{where}: limits.{k}: {sb!r}"
    return sb


def create_sandbox_raw(svc, body=None, key: Optional[str] = None, timeout: float = 60) -> HttpResponse:
    return svc.http("POST", "/sandboxes", body if body is not None else {}, headers=auth(key),
                    timeout=timeout)


def create_sandbox(svc, body=None, key: Optional[str] = None, timeout: float = 60) -> dict:
    """POST /sandboxes, asserts 201 and the documented shape; returns the body."""
    resp = create_sandbox_raw(svc, body, key, timeout)
    assert resp.status == 201, f"POST /sandboxes {body!r}: expected 201, got {resp!r}"
    return check_sandbox_obj(resp.body, "POST /sandboxes")


def delete_sandbox(svc, sid: str, key: Optional[str] = None) -> int:
    return svc.http("DELETE", f"/sandboxes/{sid}", headers=auth(key), timeout=30).status


def get_sandbox(svc, sid: str, key: Optional[str] = None) -> HttpResponse:
    return svc.http("GET", f"/sandboxes/{sid}", headers=auth(key), timeout=30)


def sexec_raw(svc, sid: str, code: str, key: Optional[str] = None, http_timeout: float = 60,
              **fields) -> HttpResponse:
    body = {"code": code}
    body.update({k: v for k, v in fields.items() if v is not None})
    return svc.http("POST", f"/sandboxes/{sid}/execute", body, headers=auth(key), timeout=http_timeout)


def sexec(svc, sid: str, code: str, key: Optional[str] = None, http_timeout: float = 60,
          **fields) -> dict:
    """POST /sandboxes/{sid}/execute; asserts the /execute response shape; returns
    `result`. Extra keyword fields go into the body (timeout, language, contextId,
    stdin, interactive, envVars, limits)."""
    resp = sexec_raw(svc, sid, code, key, http_timeout, **fields)
    return check_execute_response(resp)["result"]


def text_of(result: dict) -> Optional[str]:
    """The main result's text, or None."""
    mains = [r for r in result["results"] if r.get("is_main_result")]
    assert len(mains) <= 1, f"more than one main result: {result['results']!r}"
    return mains[0].get("text") if mains else None


def ok_text(svc, sid: str, code: str, **fields) -> Optional[str]:
    """Runs `code`, asserts status ok, returns the main result's text."""
    r = sexec(svc, sid, code, **fields)
    assert r["status"] == "ok", f"{code!r} in {sid}: {r!r}"
    return text_of(r)


def create_context(svc, sid: str, body=None, key: Optional[str] = None) -> dict:
    resp = svc.http("POST", f"/sandboxes/{sid}/contexts", body if body is not None else {},
                    headers=auth(key), timeout=60)
    assert resp.status == 201, f"POST /sandboxes/{sid}/contexts {body!r}: expected 201, got {resp!r}"
    check_context_obj(resp.body)
    return resp.body


def check_context_obj(ctx: Any, where: str = "context") -> dict:
    assert isinstance(ctx, dict), f"{where}: not an object: {ctx!r}"
    for k in CONTEXT_FIELDS:
        assert k in ctx, f"{where}: missing {k!r}: {ctx!r}"
    assert isinstance(ctx["id"], str) and ctx["id"], f"{where}: bad id: {ctx!r}"
    assert isinstance(ctx["default"], bool), f"{where}: default must be a bool: {ctx!r}"
    assert isinstance(ctx["cwd"], str) and ctx["cwd"].startswith("/"), f"{where}: bad cwd: {ctx!r}"
    return ctx


def list_contexts(svc, sid: str, key: Optional[str] = None) -> list[dict]:
    resp = svc.http("GET", f"/sandboxes/{sid}/contexts", headers=auth(key), timeout=30)
    assert resp.status == 200, f"GET /sandboxes/{sid}/contexts: {resp!r}"
    ctxs = resp.body.get("contexts")
    assert isinstance(ctxs, list), f"GET contexts: no list: {resp!r}"
    for c in ctxs:
        check_context_obj(c, "listed context")
    return ctxs


def sandbox_counts(svc) -> dict:
    """/health sandboxes: {live, stateful, pooled} (asserted to be integers)."""
    sb = svc.health().get("sandboxes") or {}
    for k in ("live", "stateful", "pooled"):
        v = sb.get(k)
        assert isinstance(v, int) and not isinstance(v, bool) and v >= 0, f"/health sandboxes.{k}: {sb!r}"
    return sb


def languages_of(svc) -> dict[str, dict]:
    langs = svc.health().get("languages")
    assert isinstance(langs, list), f"/health languages must be a list: {langs!r}"
    out = {}
    for entry in langs:
        assert isinstance(entry, dict) and isinstance(entry.get("language"), str), entry
        assert isinstance(entry.get("available"), bool), f"languages entry: {entry!r}"
        if not entry["available"]:
            assert isinstance(entry.get("reason"), str) and entry["reason"], \
                f"an unavailable language needs a reason: {entry!r}"
        out[entry["language"]] = entry
    return out


def require_language(svc, lang: str):
    entry = languages_of(svc).get(lang)
    if not entry or not entry["available"]:
        pytest.skip(f"{lang} is not available on this host: {entry!r}")


def error_code(resp: HttpResponse) -> Optional[str]:
    body = resp.body
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return body["error"].get("code")
    return None


def assert_api_error(resp: HttpResponse, status: int, code: Optional[str] = None, what: str = ""):
    assert resp.status == status, f"{what}: expected {status} {code or ''}, got {resp!r}"
    body = resp.body
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), \
        f"{what}: error body must be {{'error': {{code, message}}}}: {resp!r}"
    assert isinstance(body["error"].get("message"), str) and body["error"]["message"], f"{what}: {resp!r}"
    if code is not None:
        assert body["error"].get("code") == code, f"{what}: expected code {code!r}: {resp!r}"


# --------------------------------------------------------------------------
# Host-side views of one instance's sandboxes
# --------------------------------------------------------------------------

def _status_uids(pid: str) -> Optional[list[int]]:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Uid:"):
                return [int(x) for x in line.split()[1:]]
    except (OSError, ValueError):
        return None
    return None


def instance_processes(svc) -> dict[int, int]:
    """{host pid: host uid} of every sandbox-uid process in one of `svc`'s
    sbx-<service pid>-* cgroups (i.e. its sandboxes, pooled ones included)."""
    tag = f"/sbx-{svc.proc.pid}-"
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        uids = _status_uids(name)
        if not uids or not any(SANDBOX_UID_BASE <= u < SANDBOX_UID_BASE + SANDBOX_UID_COUNT for u in uids):
            continue
        if any(tag in c for c in _cgroup_paths(name)):
            out[int(name)] = uids[0]
    return out


def instance_cgroups(svc_pid: int) -> list[str]:
    tag = f"sbx-{svc_pid}-"
    return [c for c in sandbox_cgroups() if os.path.basename(c).startswith(tag) or f"/{tag}" in c]


def alive(pids) -> list[int]:
    """Those of `pids` that still exist (zombies included)."""
    return [p for p in pids if os.path.exists(f"/proc/{p}")]


# Prints the host uid the code runs as: the uid_map line that maps its own uid.
UID_MAP_CODE = ("import os\n"
                "for line in open('/proc/self/uid_map'):\n"
                "    inside, outside, count = map(int, line.split())\n"
                "    if inside <= os.getuid() < inside + count:\n"
                "        print(outside + os.getuid() - inside)\n")


def host_uid_inside(svc, sid: str, key: Optional[str] = None, **fields) -> int:
    """The host uid a sandbox runs as, read from inside (its /proc/self/uid_map)."""
    r = sexec(svc, sid, UID_MAP_CODE, key=key, **fields)
    assert r["status"] == "ok", r
    return int("".join(r["logs"]["stdout"]).strip())


def pids_of_uid(svc, uid: int) -> list[int]:
    return [p for p, u in instance_processes(svc).items() if u == uid]


def cgroups_of(pids) -> set[str]:
    out = set()
    for p in pids:
        for c in _cgroup_paths(str(p)):
            if "/sbx-" in c:
                out.add(c)
    return out


def cgroup_dirs_exist(paths) -> list[str]:
    """Which of the cgroup paths (as in /proc/PID/cgroup) still exist under
    /sys/fs/cgroup (v2 unified or any v1 hierarchy)."""
    found = []
    roots = ["/sys/fs/cgroup"] + [str(p) for p in Path("/sys/fs/cgroup").iterdir() if p.is_dir()] \
        if Path("/sys/fs/cgroup").exists() else []
    for c in paths:
        rel = c.lstrip("/")
        for r in roots:
            if rel and os.path.isdir(os.path.join(r, rel)):
                found.append(os.path.join(r, rel))
                break
    return found


def wait_gone(svc, sid: str, timeout: float, key: Optional[str] = None) -> float:
    """Polls GET /sandboxes/{sid} until 404 (deadline); returns when it was seen."""
    def gone():
        r = get_sandbox(svc, sid, key)
        assert r.status in (200, 404), f"GET /sandboxes/{sid}: {r!r}"
        return r.status == 404
    wait_until(gone, timeout, 0.1, f"sandbox {sid} still exists")
    return time.monotonic()


# --------------------------------------------------------------------------
# Rich results
# --------------------------------------------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(b64: str) -> tuple[int, int]:
    """Decodes a base64 PNG, checks its signature and IHDR chunk; returns (w, h)."""
    raw = base64.b64decode(b64, validate=True)
    assert raw[:8] == PNG_SIGNATURE, f"not a PNG: {raw[:16]!r}"
    length, ctype = struct.unpack(">I4s", raw[8:16])
    assert ctype == b"IHDR" and length == 13, f"first chunk is not a 13-byte IHDR: {raw[8:16]!r}"
    width, height = struct.unpack(">II", raw[16:24])
    assert raw[-12:-8] == b"\x00\x00\x00\x00" and raw[-8:-4] == b"IEND", "PNG does not end with IEND"
    return width, height


# --------------------------------------------------------------------------
# Streaming in a sandbox
# --------------------------------------------------------------------------

async def start_sandbox_stream(svc, sid: str, client_id: str, code: str, key: Optional[str] = None,
                               **fields) -> str:
    """POST /sandboxes/{sid}/execute-stream; asserts the acknowledgement; returns executionId."""
    body = {"code": code, "clientId": client_id}
    body.update({k: v for k, v in fields.items() if v is not None})
    resp = await svc.ahttp("POST", f"/sandboxes/{sid}/execute-stream", body, headers=auth(key), timeout=30)
    assert resp.status == 200, f"POST /sandboxes/{sid}/execute-stream: expected 200, got {resp!r}"
    b = resp.body
    assert isinstance(b, dict) and isinstance(b.get("executionId"), str) and b["executionId"], resp
    assert b.get("status") == "streaming" and b.get("clientId") == client_id, resp
    return b["executionId"]
