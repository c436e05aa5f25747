"""The HTTP server: one port for the control plane and the data plane,
routed as E2B's shared host / E2B_SANDBOX_URL mode routes (e2b-protocol.md
§2), optional debug-mode listeners (§4), and the /_test routes."""

import argparse
import collections
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import code_interpreter, envd
from .control_plane import ControlPlane
from .faults import FaultPlan, Reply, edge_proxy_reply
from .sandboxes import DEBUG_SANDBOX_ID, SandboxRegistry
from .wire import BadRequest, Call, Exchange, match_route, read_request

CODE_INTERPRETER_PORT = 49999
ENVD_PORT = 49983
DATA_PLANE_ROUTES = {CODE_INTERPRETER_PORT: code_interpreter.ROUTES, ENVD_PORT: envd.ROUTES}
REQUEST_LOG_SIZE = 500
# §2: the SDK's per-port host when no E2B_SANDBOX_URL is set.
PORT_HOST = re.compile(r"(?P<port>\d+)-(?P<sandbox_id>[A-Za-z0-9_]+)\.")


class App:
    def __init__(self, root, api_keys, debug_sandbox=False):
        self.root = root
        self.faults = FaultPlan()
        self.registry = SandboxRegistry(root, {
            "PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "USER": "user",
            # One matplotlib cache for all sandboxes: building it per sandbox
            # would make a first plot take seconds.
            "MPLCONFIGDIR": os.path.join(root, ".matplotlib")})
        self.control_plane = ControlPlane(self.registry, api_keys)
        self.debug_sandbox = debug_sandbox
        self._requests = collections.deque(maxlen=REQUEST_LOG_SIZE)
        self._requests_lock = threading.Lock()
        self._start_debug_sandbox()

    def _start_debug_sandbox(self):
        """§4: the SDK in debug mode calls every sandbox "debug_sandbox_id" and
        sends no access token; it lives as long as the server."""
        if self.debug_sandbox:
            self.registry.create("code-interpreter-v1", timeout_s=None, with_token=False,
                                 sandbox_id=DEBUG_SANDBOX_ID)

    def stop(self):
        self.registry.stop()

    # ---- dispatch ---------------------------------------------------------

    def handle(self, handler):
        request = read_request(handler)
        exchange = Exchange(handler)
        try:
            if request.path.startswith("/_test/"):
                reply = self._test_route(request)
            else:
                with self._requests_lock:
                    self._requests.append(request.log_entry())
                reply = self._route(request, exchange, handler.server.debug_port)
        except BadRequest as error:
            reply = error.reply
        except Exception:  # a bug here: answer 500 rather than hang the client
            traceback.print_exc()
            reply = Reply.text(500, traceback.format_exc())
            if exchange.started:  # mid-stream: the client sees the connection drop
                exchange.abort()
                return
        if reply is not None and not exchange.aborted:
            exchange.reply(reply)

    def _data_plane_target(self, request, debug_port):
        """(sandbox id, port) of a data-plane request, None for the control plane."""
        if debug_port is not None:
            return DEBUG_SANDBOX_ID, debug_port
        sandbox_id, port = request.header("E2b-Sandbox-Id"), request.header("E2b-Sandbox-Port")
        if sandbox_id and port:
            return sandbox_id, port
        match = PORT_HOST.match(request.header("Host", ""))
        if match:
            return match["sandbox_id"], match["port"]
        return None

    def _route(self, request, exchange, debug_port):
        target = self._data_plane_target(request, debug_port)
        if target is None:
            routes, sandbox_id, port = self.control_plane.routes, None, None
        else:
            sandbox_id, port = target
            port = int(port) if str(port).isdigit() else None
            routes = DATA_PLANE_ROUTES.get(port, [])
        route, params = match_route(routes, request)
        fault = self.faults.take(route.op) if route else None
        if fault is not None:
            if fault.delay_ms:
                time.sleep(fault.delay_ms / 1000)
            if fault.action == "status":
                return fault.reply(sandbox_id, params.get("context_id") or _context_id_of(request))
            if fault.action == "reset":
                exchange.abort()
                return None
        if target is None:
            self.control_plane.authorize(request)
            sandbox = None
        else:
            # §2: E2B's edge proxy answers for sandboxes and ports it cannot reach.
            sandbox = self.registry.get(sandbox_id)
            if sandbox is None:
                return edge_proxy_reply(sandbox_id)
            if port not in DATA_PLANE_ROUTES:
                return edge_proxy_reply(sandbox_id, "The sandbox is running but port is not open")
        if route is None:
            return Reply.text(404, "404 page not found")
        return route.handler(Call(request, exchange, sandbox, params, fault))

    # ---- /_test -----------------------------------------------------------

    def _test_route(self, request):
        def invalid(message):
            return Reply.json(400, {"error": message})

        key = (request.method, request.path)
        if key == ("POST", "/_test/faults"):
            try:
                added = self.faults.add(request.json(invalid))
            except ValueError as error:
                return invalid(str(error))
            return Reply.json(200, {"added": added, "pending": self.faults.pending()})
        if key == ("POST", "/_test/reset"):
            self.faults.clear()
            self.registry.kill_all(forget=True)
            with self._requests_lock:
                self._requests.clear()
            self._start_debug_sandbox()
            return Reply.json(200, {})
        if key == ("GET", "/_test/state"):
            with self._requests_lock:
                requests = list(self._requests)
            return Reply.json(200, {**self.registry.state(), "requests": requests,
                                    "faults": self.faults.pending()})
        return Reply.text(404, "404 page not found")


def _context_id_of(request):
    """The context_id of an /execute body, for the default 404 fault body."""
    try:
        return json.loads(request.body).get("context_id")
    except (ValueError, AttributeError):
        return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, chunked /execute
    server_version = "fake-e2b"

    def do_GET(self):
        self.server.app.handle(self)

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def log_message(self, format, *args):
        if self.server.app_verbose:
            super().log_message(format, *args)


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, app, debug_port=None, verbose=False):
        super().__init__(address, Handler)
        self.app = app
        self.debug_port = debug_port  # a debug-mode listener: every request is for that port
        self.app_verbose = verbose


def main(argv=None):
    parser = argparse.ArgumentParser(description="A test E2B: control plane, code interpreter, envd.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument("--port-file", help="write the port here once listening")
    parser.add_argument("--api-key", action="append", help="accepted X-API-Key (repeatable; "
                        "default e2b_test_key)")
    parser.add_argument("--debug-ports", action="store_true",
                        help=f"also serve debug_sandbox_id on 127.0.0.1:{CODE_INTERPRETER_PORT} "
                             f"and :{ENVD_PORT} (the SDK's debug mode)")
    parser.add_argument("--verbose", action="store_true", help="log every request on stderr")
    args = parser.parse_args(argv)

    root = tempfile.mkdtemp(prefix="fake-e2b-")
    app = None
    servers, serving = [], []
    try:
        app = App(root, args.api_key or ["e2b_test_key"], debug_sandbox=args.debug_ports)
        servers.append(Server((args.host, args.port), app, verbose=args.verbose))
        if args.debug_ports:
            for port in (CODE_INTERPRETER_PORT, ENVD_PORT):
                servers.append(Server(("127.0.0.1", port), app, debug_port=port, verbose=args.verbose))
        for server in servers:
            threading.Thread(target=server.serve_forever, daemon=True).start()
            serving.append(server)
        port = servers[0].server_address[1]
        if args.port_file:
            partial = args.port_file + ".tmp"
            with open(partial, "w") as f:
                f.write(f"{port}\n")
            os.replace(partial, args.port_file)  # readers never see a partial file
        print(f"listening on {port}", flush=True)

        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        while not stop.wait(1):
            pass
    finally:
        for server in serving:
            server.shutdown()  # only returns once serve_forever has run
        for server in servers:
            server.server_close()
        if app is not None:
            app.stop()  # kills every kernel
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
