"""Port 49983: envd's plain-HTTP surface (e2b-protocol.md §5): /health and
/files, what `isRunning`, `files.read` and `files.write` need. The Connect-RPC
services (commands, files.list, …) are not served: 404."""

import email.message
import gzip

from .faults import Reply
from .wire import BadRequest, Route


def _error(status, message):
    return Reply.json(status, {"code": status, "message": message})  # §5 error body


def require_access_token(call):
    """§2: the SDK sends X-Access-Token (the envdAccessToken of create) to envd
    and to /execute. A sandbox created without one (debug mode) needs none."""
    expected = call.sandbox.envd_access_token
    if expected is not None and call.request.header("X-Access-Token") != expected:
        raise BadRequest(_error(401, "unauthorized access, please provide a valid access token"))


def _resolve(call, path):
    if not path:
        raise BadRequest(_error(400, "path is required"))
    try:
        return call.sandbox.host_path(path)
    except ValueError as error:
        raise BadRequest(_error(400, str(error))) from None


def health(call):
    return Reply(204)


def read_file(call):
    require_access_token(call)
    path = call.request.query.get("path")
    target = _resolve(call, path)
    if target.is_dir():
        return _error(400, f"path '{path}' is a directory")
    if not target.is_file():
        return _error(404, f"path '{path}' does not exist")
    return Reply(200, target.read_bytes(), "application/octet-stream")


def write_files(call):
    """Multipart (one `file` part per file, the filename being the target path
    when the query has none: the SDK's default) or a raw
    application/octet-stream body (envd ≥ 0.5.7, optionally gzip)."""
    require_access_token(call)
    request = call.request
    content_type = request.header("Content-Type", "")
    query_path = request.query.get("path")
    if content_type.lower().startswith("multipart/form-data"):
        try:
            uploads = [(query_path or filename, data)
                       for filename, data in parse_multipart(request.body, content_type)]
        except ValueError as error:
            return _error(400, f"invalid multipart body: {error}")
    else:
        data = request.body
        if request.header("Content-Encoding", "").lower() == "gzip":
            data = gzip.decompress(data)
        uploads = [(query_path, data)]
    written = []
    for path, data in uploads:
        target = _resolve(call, path)
        if target.is_dir():
            return _error(400, f"path '{path}' is a directory")
        target.parent.mkdir(parents=True, exist_ok=True)  # §5: parents are created
        target.write_bytes(data)
        written.append({"name": target.name, "type": "file",
                        "path": call.sandbox.sandbox_path(path)})
    return Reply.json(200, written)


def parse_multipart(body, content_type):
    """[(filename, bytes)] of the `file` parts of a multipart/form-data body
    (RFC 7578), byte-exact."""
    header = email.message.Message()
    header["Content-Type"] = content_type
    boundary = header.get_param("boundary")
    if not boundary:
        raise ValueError("no boundary")
    delimiter = b"\r\n--" + boundary.encode()
    sections = (b"\r\n" + body).split(delimiter)
    if len(sections) < 2 or sections[0] != b"":
        raise ValueError("no opening boundary")
    files = []
    for section in sections[1:]:
        if section.startswith(b"--"):  # the closing boundary
            return files
        head, separator, data = section.partition(b"\r\n\r\n")
        if not separator:
            raise ValueError("a part without a blank line after its headers")
        part = email.message.Message()
        for line in head.decode("utf-8", "replace").split("\r\n")[1:]:
            name, _, value = line.partition(":")
            part[name.strip()] = value.strip()
        if part.get_param("name", header="content-disposition") == "file":
            files.append((part.get_param("filename", header="content-disposition"), data))
    raise ValueError("no closing boundary")


ROUTES = [
    Route("GET", r"/health", "health", health),
    Route("GET", r"/files", "files", read_file),
    Route("POST", r"/files", "files", write_files),
]
