"""Files of a stateful sandbox: PUT/GET /sandboxes/{id}/files?path=…, GET
/sandboxes/{id}/files/list?path=…. Round trips (binary, relative paths, parents),
sharing with the code, listings, size limits, and the confinement to /home/user
and /tmp: traversal, absolute host paths and symlinks planted by the code never
reach the host (canary files on the host prove it)."""

from __future__ import annotations

import hashlib
import os
import urllib.parse
import uuid
from pathlib import Path

import pytest

from helpers import stdout_of
from sandbox_helpers import (SBX_ENV, SBX_MAX_BODY, assert_api_error, create_sandbox, delete_sandbox,
                             module_instance, ok_text, sexec)

pytestmark = pytest.mark.isolation


@pytest.fixture(scope="module")
def sbx(request, tmp_path_factory):
    yield from module_instance(request, tmp_path_factory, SBX_ENV, "codeexec-sandbox-files")


@pytest.fixture
def sandbox(sbx):
    sb = create_sandbox(sbx, {"timeout": 300})
    yield sb["sandboxId"]
    assert delete_sandbox(sbx, sb["sandboxId"]) in (204, 404)


def q(path: str) -> str:
    return urllib.parse.quote(path, safe="")


def put(svc, sid, path, data: bytes):
    return svc.http("PUT", f"/sandboxes/{sid}/files?path={q(path)}", data,
                    headers={"Content-Type": "application/octet-stream"})


def get(svc, sid, path):
    return svc.http("GET", f"/sandboxes/{sid}/files?path={q(path)}")


def listing(svc, sid, path):
    return svc.http("GET", f"/sandboxes/{sid}/files/list?path={q(path)}")


def run_ok(svc, sid, code, language=None):
    r = sexec(svc, sid, code, language=language)
    assert r["status"] == "ok", f"{code!r}: {r!r}"
    return r


# =========================================================================
# Round trips
# =========================================================================

def test_put_then_code_reads_binary(sbx, sandbox):
    data = bytes(range(256)) * 64 + os.urandom(70000) + b"\x00\r\n\xff"
    resp = put(sbx, sandbox, "data/in.bin", data)
    assert resp.status == 200, resp
    assert resp.body["size"] == len(data), resp
    assert resp.body["path"] in ("data/in.bin", "/home/user/data/in.bin"), resp
    r = run_ok(sbx, sandbox, "import hashlib\n"
                             "print(hashlib.sha256(open('/home/user/data/in.bin', 'rb').read()).hexdigest())")
    assert stdout_of(r).strip() == hashlib.sha256(data).hexdigest(), "the code read other bytes"
    # The file is the sandbox user's: the code may change it.
    r = run_ok(sbx, sandbox, "import os\nst = os.stat('/home/user/data/in.bin')\n"
                             "print(st.st_uid == os.getuid())\n"
                             "open('/home/user/data/in.bin', 'ab').write(b'+')\n"
                             "open('/home/user/data/new.txt', 'w').write('parent dir is writable')")
    assert stdout_of(r) == "True\n", r
    data += b"+"
    got = get(sbx, sandbox, "/home/user/data/in.bin")
    assert got.status == 200 and got.raw == data, f"GET returned {len(got.raw)} bytes, not the {len(data)} put"
    assert got.headers.get("content-type", "").startswith("application/octet-stream"), got.headers


def test_code_writes_then_get(sbx, sandbox):
    run_ok(sbx, sandbox, "open('out.txt', 'w').write('héllo\\n')\n"
                         "open('/tmp/t.bin', 'wb').write(bytes([0, 1, 2, 255]))")
    got = get(sbx, sandbox, "out.txt")
    assert got.status == 200 and got.raw == "héllo\n".encode(), got
    got = get(sbx, sandbox, "/home/user/out.txt")
    assert got.status == 200 and got.raw == "héllo\n".encode(), got
    got = get(sbx, sandbox, "/tmp/t.bin")
    assert got.status == 200 and got.raw == bytes([0, 1, 2, 255]), got


def test_put_creates_parents_overwrites_and_empty_files(sbx, sandbox):
    assert put(sbx, sandbox, "a/b/c/d.txt", b"deep").status == 200
    assert put(sbx, sandbox, "/tmp/x/y/z.txt", b"in tmp").status == 200
    assert put(sbx, sandbox, "a/b/c/d.txt", b"second").status == 200
    resp = put(sbx, sandbox, "empty.txt", b"")
    assert resp.status == 200 and resp.body["size"] == 0, resp
    assert get(sbx, sandbox, "a/b/c/d.txt").raw == b"second"
    got = get(sbx, sandbox, "empty.txt")
    assert got.status == 200 and got.raw == b"", got
    assert ok_text(sbx, sandbox, "open('/home/user/a/b/c/d.txt').read() + open('/tmp/x/y/z.txt').read()") \
        == "secondin tmp"
    # bash sees them too (files are the sandbox's, not a context's)
    r = run_ok(sbx, sandbox, "cat /home/user/a/b/c/d.txt", language="bash")
    assert stdout_of(r) == "second", r


def test_unusual_names(sbx, sandbox):
    name = "dir with space/ünïcødé & more?.txt"
    assert put(sbx, sandbox, name, b"odd").status == 200
    assert ok_text(sbx, sandbox, f"open('/home/user/{name}').read()") == "odd"
    assert get(sbx, sandbox, name).raw == b"odd"


def test_missing_file_and_bad_requests(sbx, sandbox):
    assert_api_error(get(sbx, sandbox, "/home/user/nope.txt"), 404, None, "missing file")
    assert_api_error(listing(sbx, sandbox, "/home/user/nope"), 404, None, "missing dir")
    resp = sbx.http("GET", f"/sandboxes/{sandbox}/files")
    assert_api_error(resp, 400, None, "GET files without path")
    run_ok(sbx, sandbox, "import os\nos.makedirs('adir', exist_ok=True)")
    assert 400 <= get(sbx, sandbox, "adir").status < 500, "GET of a directory"
    assert 400 <= listing(sbx, sandbox, "empty-or-not").status < 500
    assert put(sbx, sandbox, "plain.txt", b"x").status == 200
    assert 400 <= listing(sbx, sandbox, "plain.txt").status < 500, "listing a file"
    assert 400 <= put(sbx, sandbox, "adir", b"x").status < 500, "PUT over a directory"
    assert 400 <= put(sbx, sandbox, "plain.txt/child", b"x").status < 500, "PUT under a file"


def test_list_directory(sbx, sandbox):
    run_ok(sbx, sandbox, "import os\n"
                         "os.makedirs('/home/user/ls/sub')\n"
                         "open('/home/user/ls/five.txt', 'w').write('12345')\n"
                         "os.chmod('/home/user/ls/five.txt', 0o640)\n"
                         "os.symlink('/etc/passwd', '/home/user/ls/link')\n"
                         "os.mkfifo('/home/user/ls/fifo')")
    resp = listing(sbx, sandbox, "/home/user/ls")
    assert resp.status == 200, resp
    body = resp.body
    assert body["truncated"] is False and body["path"] in ("/home/user/ls",), body
    entries = {e["name"]: e for e in body["entries"]}
    assert set(entries) == {"sub", "five.txt", "link", "fifo"}, body
    for e in body["entries"]:
        for k in ("name", "path", "type", "size", "mode"):
            assert k in e, f"entry without {k}: {e!r}"
        assert e["path"] == "/home/user/ls/" + e["name"], e
    assert entries["sub"]["type"] == "dir", entries
    assert entries["five.txt"]["type"] == "file" and entries["five.txt"]["size"] == 5, entries
    assert isinstance(entries["five.txt"]["mode"], int) and entries["five.txt"]["mode"] & 0o777 == 0o640, \
        entries["five.txt"]
    assert entries["link"]["type"] == "symlink", entries
    assert entries["fifo"]["type"] == "other", entries
    # Relative paths are under /home/user; /tmp can be listed too.
    rel = listing(sbx, sandbox, "ls")
    assert rel.status == 200 and {e["name"] for e in rel.body["entries"]} == set(entries), rel
    run_ok(sbx, sandbox, "open('/tmp/in-tmp.txt', 'w').write('t')")
    tmp = listing(sbx, sandbox, "/tmp")
    assert tmp.status == 200 and "in-tmp.txt" in {e["name"] for e in tmp.body["entries"]}, tmp
    home = listing(sbx, sandbox, "/home/user")
    assert home.status == 200 and "ls" in {e["name"] for e in home.body["entries"]}, home


# =========================================================================
# Sizes
# =========================================================================

def test_read_larger_than_body_limit_is_413(sbx, sandbox):
    run_ok(sbx, sandbox, f"open('/home/user/huge.bin', 'wb').write(b'z' * {SBX_MAX_BODY + 4096})")
    assert_api_error(get(sbx, sandbox, "huge.bin"), 413, None, "GET of a file over MAX_BODY_BYTES")
    # smaller files still read fine
    run_ok(sbx, sandbox, "open('/home/user/ok.bin', 'wb').write(b'y' * 100000)")
    assert len(get(sbx, sandbox, "ok.bin").raw) == 100000


def test_write_over_workspace_is_413(sbx):
    sid = create_sandbox(sbx, {"limits": {"workspaceMb": 1}})["sandboxId"]
    try:
        assert_api_error(put(sbx, sid, "too-big.bin", b"q" * (2 * 1024 * 1024)), 413, None,
                         "PUT of 2 MiB into a 1 MiB workspace")
        assert put(sbx, sid, "fits.bin", b"q" * 1000).status == 200
        assert ok_text(sbx, sid, "len(open('/home/user/fits.bin', 'rb').read())") == "1000"
    finally:
        delete_sandbox(sbx, sid)


# =========================================================================
# Confinement
# =========================================================================

@pytest.fixture
def canaries():
    """Canary files on the host, at paths that do not exist inside a sandbox
    (/var/tmp) or exist there as something else (/tmp: the sandbox's own tmpfs)."""
    token = "CANARY-" + uuid.uuid4().hex
    name = f"codeexec-canary-{uuid.uuid4().hex[:10]}"
    paths = [Path("/var/tmp") / name, Path("/tmp") / name]
    for p in paths:
        p.write_text(token + "\n")
        os.chmod(p, 0o644)
    yield {"token": token, "name": name, "paths": paths}
    for p in paths:
        p.unlink(missing_ok=True)


def host_passwd() -> bytes:
    return Path("/etc/passwd").read_bytes()


def assert_refused(resp, what, token, extra_forbidden=()):
    text = resp.raw.decode("utf-8", "replace")
    assert token not in text, f"{what}: the HOST CANARY was returned: {resp!r}"
    for f in extra_forbidden:
        assert f not in resp.raw, f"{what}: host content returned: {resp!r}"
    assert 400 <= resp.status < 500, f"{what}: expected a 4xx refusal, got {resp!r}"


def test_traversal_and_absolute_paths_refused(sbx, sandbox, canaries):
    name, token = canaries["name"], canaries["token"]
    host_pw = host_passwd()
    for path in [f"/var/tmp/{name}", f"../../var/tmp/{name}", f"/home/user/../../var/tmp/{name}",
                 f"/tmp/../var/tmp/{name}", f"..%2F..%2Fvar%2Ftmp%2F{name}",
                 f"/tmp/{name}", "/etc/passwd", "../../etc/passwd", "/home/user/../../etc/passwd",
                 "/proc/self/environ", "/proc/1/environ", "/proc/self/root/etc/passwd",
                 "/proc/1/root/etc/passwd", "/usr/bin/python3", "/", "/home", "//etc/passwd",
                 "/home/user/./../../etc/passwd", "/dev/zero"]:
        resp = get(sbx, sandbox, path)
        assert_refused(resp, f"GET files?path={path}", token, [host_pw[:64]])
    for path in ["/", "/etc", "../..", "/proc", "/var/tmp", "/home/user/../.."]:
        resp = listing(sbx, sandbox, path)
        assert_refused(resp, f"list ?path={path}", token)
        assert name not in resp.raw.decode("utf-8", "replace"), f"host /var/tmp listed via {path}"


def test_symlinks_planted_by_code_refused(sbx, sandbox, canaries):
    name, token = canaries["name"], canaries["token"]
    host_pw = host_passwd()
    run_ok(sbx, sandbox, f"""\
ln -s /etc/passwd p
ln -s / root
ln -s /var/tmp/{name} c
ln -s ../../var/tmp/{name} rel
ln -s /var/tmp vt
ln -s /proc/1/root r1
ln -s /proc/self/root rs
ln -s /tmp/{name} tc
ln -s /var/tmp/{name} /tmp/tlink
mkdir -p d && ln -s ../../../etc d/up
echo ok""", language="bash")
    for path in ["p", "/home/user/p", "root/etc/passwd", f"root/var/tmp/{name}", "c", "rel",
                 f"vt/{name}", f"r1/var/tmp/{name}", "r1/etc/passwd", f"rs/var/tmp/{name}",
                 "tc", "/tmp/tlink", "d/up/passwd", "root"]:
        resp = get(sbx, sandbox, path)
        assert_refused(resp, f"GET via planted symlink {path}", token, [host_pw[:64]])
    for path in ["root", "vt", "r1", "rs", "d/up", "root/etc"]:
        resp = listing(sbx, sandbox, path)
        assert_refused(resp, f"list via planted symlink {path}", token)
        assert name not in resp.raw.decode("utf-8", "replace")


def test_writes_never_reach_the_host(sbx, sandbox, canaries):
    name, token = canaries["name"], canaries["token"]
    pwned = f"codeexec-pwned-{uuid.uuid4().hex[:10]}"
    run_ok(sbx, sandbox, f"ln -s / root; ln -s /var/tmp/{name} c; ln -s /var/tmp vt; ln -s /proc/1/root r1",
           language="bash")
    try:
        for path in [f"/var/tmp/{pwned}", f"../../var/tmp/{pwned}", f"/home/user/../../var/tmp/{pwned}",
                     f"root/var/tmp/{pwned}", f"vt/{pwned}", f"r1/var/tmp/{pwned}", "/etc/pwned",
                     f"/proc/1/root/var/tmp/{pwned}"]:
            resp = put(sbx, sandbox, path, b"PWNED")
            assert 400 <= resp.status < 500, f"PUT {path}: expected a 4xx refusal, got {resp!r}"
        # Writing through a symlink to the canary must not touch it (a refusal, or at
        # most replacing the link inside the sandbox).
        resp = put(sbx, sandbox, "c", b"PWNED")
        assert resp.status < 500, resp
        assert not Path(f"/var/tmp/{pwned}").exists(), "a PUT created a file on the host"
        assert not Path("/etc/pwned").exists()
        for p in canaries["paths"]:
            assert p.read_text() == token + "\n", f"host canary {p} was modified"
    finally:
        Path(f"/var/tmp/{pwned}").unlink(missing_ok=True)


def test_files_of_other_sandboxes_unreachable(sbx, sandbox):
    other = create_sandbox(sbx)["sandboxId"]
    try:
        secret = "OTHER-" + uuid.uuid4().hex
        assert put(sbx, other, "secret.txt", secret.encode()).status == 200
        # The other sandbox's file is not in this one, by path or through /proc.
        for path in ["secret.txt", "/home/user/secret.txt"]:
            resp = get(sbx, sandbox, path)
            assert resp.status == 404 and secret not in resp.raw.decode("utf-8", "replace"), resp
        r = sexec(sbx, sandbox, "import glob\nprint(glob.glob('/proc/*/root/home/user/secret.txt'))")
        assert secret not in stdout_of(r)
        assert get(sbx, other, "secret.txt").raw == secret.encode()
    finally:
        delete_sandbox(sbx, other)
