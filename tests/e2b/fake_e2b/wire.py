"""HTTP/1.1 details shared by the planes: the request as read, and the ways to
answer it (a whole reply, a chunked stream, or an abrupt reset)."""

import json
import re
import select
import socket
import struct
import time
from urllib.parse import parse_qs, urlsplit


class BadRequest(Exception):
    def __init__(self, reply):
        super().__init__(reply.status)
        self.reply = reply


class ClientGone(Exception):
    """The client closed the connection (or we cut it on purpose)."""


class Request:
    def __init__(self, method, target, headers, body):
        self.method = method
        url = urlsplit(target)
        self.path = url.path
        self.query = {k: v[0] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        self.headers = headers  # an email.message.Message: case-insensitive
        self.body = body
        self.received_at = time.time()

    def header(self, name, default=None):
        return self.headers.get(name, default)

    def json(self, error_reply):
        """The body parsed as JSON (None when empty); BadRequest(error_reply(msg)) if invalid."""
        if not self.body.strip():
            return None
        try:
            return json.loads(self.body)
        except ValueError as error:
            raise BadRequest(error_reply(f"invalid JSON body: {error}")) from error

    def log_entry(self):
        """For GET /_test/state: headers lower-cased, body parsed where it can be."""
        headers = {}
        for name, value in self.headers.items():
            name = name.lower()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        body = None
        if self.body:
            try:
                body = json.loads(self.body)
            except ValueError:
                try:
                    body = self.body.decode()
                except UnicodeDecodeError:
                    body = f"<{len(self.body)} bytes>"
        return {"method": self.method, "path": self.path, "query": self.query,
                "headers": headers, "body": body, "ts": self.received_at}


def read_request(handler):
    """The body of the request `handler` has parsed the head of, by
    Content-Length or chunked transfer coding (undici streams uploads so)."""
    headers = handler.headers
    if "chunked" in headers.get("Transfer-Encoding", "").lower():
        body = bytearray()
        while True:
            size = int(handler.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                break
            body += handler.rfile.read(size)
            handler.rfile.readline()
        body = bytes(body)
    else:
        body = handler.rfile.read(int(headers.get("Content-Length") or 0))
    return Request(handler.command, handler.path, headers, body)


class Exchange:
    """The answering side of one request on `handler`'s connection."""

    def __init__(self, handler):
        self._handler = handler
        self.connection = handler.connection
        self.started = False  # a status line was sent
        self.aborted = False

    def reply(self, reply):
        handler = self._handler
        self.started = True
        handler.send_response(reply.status)
        for name, value in reply.headers.items():
            handler.send_header(name, value)
        if reply.content_type:
            handler.send_header("Content-Type", reply.content_type)
        if reply.status not in (204, 304):
            handler.send_header("Content-Length", str(len(reply.body or b"")))
        handler.end_headers()
        if reply.body and reply.status not in (204, 304):
            handler.wfile.write(reply.body)

    def start_chunked(self, status=200):
        """Headers now, body in chunks later (§3.1: the headers are sent before
        the code runs; no Content-Type, as E2B's StreamingResponse has none)."""
        handler = self._handler
        self.started = True
        handler.send_response(status)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        handler.wfile.flush()

    def write_chunk(self, data):
        try:
            self._handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self._handler.wfile.flush()
        except OSError as error:
            raise ClientGone(str(error)) from error

    def end_chunked(self):
        try:
            self._handler.wfile.write(b"0\r\n\r\n")
            self._handler.wfile.flush()
        except OSError as error:
            raise ClientGone(str(error)) from error

    def abort(self):
        """Closes the TCP connection abruptly: SO_LINGER 0 makes close() send
        RST. The buffered reader holds a reference to the socket, so it is
        closed first, or close() would not release the descriptor (the
        writer holds none, and stays open for the handler's final flush)."""
        if self.aborted:
            return
        self.aborted = True
        handler = self._handler
        handler.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        handler.rfile.close()
        self.connection.close()

    def client_gone(self):
        """True when the client has closed its side (EOF readable on the
        socket): noticed at once, not only at the next keepalive write."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            if not readable:
                return False
            return self.connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return False
        except (OSError, ValueError):
            return True


class Route:
    """A method and a path pattern; `op` names it for fault injection."""

    def __init__(self, method, pattern, op, handler):
        self.method = method
        self.pattern = re.compile(pattern)
        self.op = op
        self.handler = handler


def match_route(routes, request):
    """(route, path parameters), or (None, None)."""
    for route in routes:
        match = route.pattern.fullmatch(request.path)
        if match and route.method == request.method:
            return route, match.groupdict()
    return None, None


class Call:
    """What a route handler gets: the request, the way to answer it, the
    sandbox it addresses (data plane), path parameters, and the fault rule
    taken for it, if any (the handler applies the kinds only it can)."""

    def __init__(self, request, exchange, sandbox=None, params=None, fault=None):
        self.request = request
        self.exchange = exchange
        self.sandbox = sandbox
        self.params = params or {}
        self.fault = fault
