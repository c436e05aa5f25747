"""Framing of the runner protocol (PROTOCOL.md), shared by the Python-hosted
runners: 4-byte big-endian length, then that many bytes of UTF-8 JSON."""

import json
import os
import stat
import struct

REQUEST_FD, EVENT_FD = 3, 4
MAX_FRAME = 64 << 20


def prepare_fds():
    """The protocol fds stay with this process (no child inherits them) and block."""
    for fd in (REQUEST_FD, EVENT_FD):
        os.set_inheritable(fd, False)
        os.set_blocking(fd, True)


def encode(event):
    """One event as a frame."""
    payload = json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "replace")
    return struct.pack(">I", len(payload)) + payload


def write_all(fd, data):
    """Writes all of `data`; exits the process if the host closed the channel."""
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view):]
    except OSError:
        os._exit(1)  # the host closed the event channel: nobody is listening


def read_exact(fd, size):
    """Reads `size` bytes, or returns None at EOF."""
    chunks = []
    while size:
        chunk = os.read(fd, min(size, 1 << 20))
        if not chunk:
            return None
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


def read_requests(fd=REQUEST_FD):
    """Yields request payloads, None for an oversized (skipped) frame; ends at EOF."""
    while True:
        header = read_exact(fd, 4)
        if header is None:
            return
        (size,) = struct.unpack(">I", header)
        if size > MAX_FRAME:
            while size:  # skip it to stay in sync
                step = min(size, 1 << 20)
                if read_exact(fd, step) is None:
                    return
                size -= step
            yield None
            continue
        payload = read_exact(fd, size)
        if payload is None:
            return
        yield payload


def validate_exec(request, valid_env_name):
    """Why an exec request is malformed, or None. `valid_env_name(key)` decides which
    variable names this runner's language accepts."""
    if not isinstance(request.get("id"), str):
        return "exec needs a string id"
    if not isinstance(request.get("code"), str):
        return "exec needs a string code"
    stdin = request.get("stdin")
    if stdin is not None and (not isinstance(stdin, str) or not stdin.startswith("/") or "\0" in stdin):
        return "stdin must be an absolute path without NUL"
    env = request.get("env")
    if env is None:
        return None
    if not isinstance(env, dict):
        return "env must be an object"
    for key, value in env.items():
        if not isinstance(value, str):
            return f"env value of {key!r} is not a string"
        if not valid_env_name(key) or "\0" in value:
            return f"invalid environment variable {key!r}"
    return None


def open_stdin(path):
    """Opens a cell's stdin FIFO (see PROTOCOL.md) read-only and unlinks it; returns a
    blocking, non-inheritable fd. Raises OSError (as ProtocolError material) if it
    cannot be opened or is a directory. O_NONBLOCK makes the open itself never wait
    for a writer (the host should hold one already)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise IsADirectoryError(f"{path} is a directory")
        os.set_blocking(fd, True)
        if stat.S_ISFIFO(os.fstat(fd).st_mode):
            touch_writer(fd)
    except BaseException:
        os.close(fd)
        raise
    try:
        os.unlink(path)
    except OSError:
        pass  # best effort: the host may own the directory
    return fd


def touch_writer(fd):
    """Opens and closes a writer of the FIFO `fd` reads. Linux reports a hangup
    to poll/epoll only to readers that have seen a writer come; a reader opened
    after the host already closed its end (end of file) would otherwise wait
    forever in poll-based code (asyncio, child processes using poll)."""
    os.close(os.open(f"/proc/self/fd/{fd}", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC))


def dispatch(payload, valid_env_name, run_cell, shutdown, protocol_error):
    """Decodes one request frame and calls run_cell(id, code, env, stdin_fd), shutdown()
    or protocol_error(message, request_id). stdin_fd is the cell's opened stdin FIFO
    (or None); it belongs to dispatch, which closes it after the cell."""
    try:
        request = json.loads(payload)
    except ValueError as e:  # includes invalid UTF-8
        return protocol_error(f"request is not valid JSON: {e}", "")
    if not isinstance(request, dict):
        return protocol_error("request is not a JSON object", "")
    op = request.get("op")
    request_id = request.get("id") if isinstance(request.get("id"), str) else ""
    if op == "shutdown":
        return shutdown()
    if op != "exec":
        return protocol_error(f"unknown op {op!r}", request_id)
    problem = validate_exec(request, valid_env_name)
    if problem:
        return protocol_error(problem, request_id)
    stdin = request.get("stdin")
    stdin_fd = None
    if stdin is not None:
        try:
            stdin_fd = open_stdin(stdin)
        except OSError as e:
            return protocol_error(f"cannot open stdin {stdin!r}: {e.strerror or e}", request_id)
    try:
        return run_cell(request["id"], request["code"], request.get("env") or {}, stdin_fd)
    finally:
        if stdin_fd is not None:
            os.close(stdin_fd)
