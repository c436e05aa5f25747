"""Port 49999: the code interpreter (e2b-protocol.md §3)."""

import json
import time
import uuid
from datetime import datetime, timezone

from .envd import require_access_token
from .faults import Reply
from .kernels import KernelDied, UnsupportedLanguage
from .sandboxes import HOME, normalize_language
from .wire import BadRequest, ClientGone, Route

KEEPALIVE_S = 5.0  # §3.1: a keepalive line after 5 s without output
POLL_S = 0.1  # how often a waiting execution looks for a client that left
# §3.1 "result": the known renderings, in the order of E2B's Result model;
# everything else the runner put in `extra` stays there.
RESULT_FIELDS = ("text", "html", "markdown", "svg", "png", "jpeg", "pdf", "latex",
                 "json", "javascript", "data", "chart")


def _validation_error(message, value=None):
    """FastAPI's 422 (§3.1 table)."""
    return Reply.json(422, {"detail": [{"type": "value_error", "loc": ["body"], "msg": message,
                                        "input": value}]})


def _context_not_found(context_id):
    return Reply.text(404, f"Context {context_id} not found")  # §3.1, §3.2


def to_wire(event):
    """A runner event as an NDJSON line of §3.1, or None for events that have
    no line (`ready`, …)."""
    kind = event.get("type")
    if kind in ("stdout", "stderr"):
        # The Python SDK reads `timestamp` on every stdout/stderr line (§3.4).
        return {"type": kind, "text": event["text"],
                "timestamp": datetime.now(timezone.utc).isoformat()}
    if kind == "result":
        line = {"type": "result"}
        line.update((field, event[field]) for field in RESULT_FIELDS if event.get(field) is not None)
        line["extra"] = event.get("extra") or {}
        line["is_main_result"] = bool(event.get("is_main_result"))
        return line
    if kind == "error":
        traceback = event.get("traceback") or ""
        if isinstance(traceback, list):
            traceback = "\n".join(traceback)
        return {"type": "error", "name": event.get("name", ""), "value": event.get("value", ""),
                "traceback": traceback}
    return None


class Execution:
    """One POST /execute: the chunked NDJSON answer of §3.1."""

    def __init__(self, call, context, code, env_vars):
        self.exchange = call.exchange
        self.sandbox = call.sandbox
        self.context = context
        self.code = code
        self.env_vars = env_vars
        # Fault "cut_after_lines": K lines, then an abrupt close (faults.py).
        self.cut_after = call.fault.cut_after_lines if call.fault else None
        self.lines = 0
        self.last_write = time.monotonic()
        self.error_sent = False

    def run(self):
        self.exchange.start_chunked()
        try:
            if not self._acquire_context():
                raise ClientGone("left while the context was busy")
            try:
                self._run_cell()
            finally:
                self.context.lock.release()
            self._write({"type": "end_of_execution"})
            self.exchange.end_chunked()
        except ClientGone:
            self.exchange.abort()

    def _acquire_context(self):
        """§3.1: one execution at a time per context; the others wait."""
        while not self.context.lock.acquire(timeout=POLL_S):
            if self.exchange.client_gone():
                return False
        return True

    def _write(self, line):
        cutting = self.cut_after is not None
        if cutting and (self.lines >= self.cut_after or line["type"] == "end_of_execution"):
            self._cut()
        if line["type"] == "error":
            if self.error_sent:  # §3.1: only the first error of an execution
                return
            self.error_sent = True
        self.exchange.write_chunk(json.dumps(line).encode() + b"\n")
        self.lines += 1
        self.last_write = time.monotonic()
        if cutting and self.lines >= self.cut_after:
            self._cut()

    def _cut(self):
        """Fault "cut_after_lines": the connection drops right after the K-th
        line, and never carries end_of_execution."""
        self.exchange.abort()
        raise ClientGone("cut by fault injection")

    def _run_cell(self):
        context, sandbox = self.context, self.sandbox
        kernel = context.kernel
        kernel.discard_pending()
        sandbox.count("executions")
        cell_id = uuid.uuid4().hex
        # The runner reports the count at the end; E2B sends it first (§3.1).
        self._write({"type": "number_of_executions", "execution_count": context.execution_count + 1})
        try:
            kernel.start_cell(cell_id, self.code, self.env_vars)
            while True:
                event = kernel.next_event(POLL_S)
                if event is None:
                    if self.exchange.client_gone():
                        raise ClientGone("client closed the connection")
                    if time.monotonic() - self.last_write >= KEEPALIVE_S:
                        self._write({"type": "keepalive"})
                elif event["type"] == "end" and event.get("id") == cell_id:
                    context.execution_count = event.get("execution_count", context.execution_count)
                    return
                elif (line := to_wire(event)) is not None:
                    self._write(line)
        except ClientGone:
            # §3.1: on client disconnect the server interrupts the kernel; the
            # context stays locked until the cell has really ended.
            sandbox.count("interrupts")
            if not kernel.interrupt_until_end(cell_id) and sandbox.alive:
                context.restart(failed_kernel=kernel)
            raise
        except KernelDied:
            if not sandbox.alive:  # killed: the VM is gone, so is the connection
                raise ClientGone("sandbox killed") from None
            # Jupyter restarts a kernel that died; E2B reports it so (§3.1).
            context.restart(failed_kernel=kernel)
            self._write({"type": "error", "name": "ContextRestarting",
                         "value": "Context was restarted", "traceback": ""})


def execute(call):
    require_access_token(call)
    body = call.request.json(_validation_error)
    if not isinstance(body, dict) or not isinstance(body.get("code"), str):
        raise BadRequest(_validation_error("Field required: code (a string)", body))
    context_id, language, env_vars = body.get("context_id"), body.get("language"), body.get("env_vars")
    if context_id and language:
        raise BadRequest(Reply.text(400, "Only one of context_id or language can be provided"))
    if env_vars is not None and not (isinstance(env_vars, dict)
                                     and all(isinstance(v, str) for v in env_vars.values())):
        raise BadRequest(_validation_error("env_vars must map strings to strings", env_vars))
    sandbox = call.sandbox
    if context_id:
        context = sandbox.contexts.get(context_id)
        if context is None:
            raise BadRequest(_context_not_found(context_id))
    else:
        try:  # neither: the default Python context
            context = sandbox.default_context(normalize_language(language))
        except (UnsupportedLanguage, KernelDied) as error:
            raise BadRequest(Reply.text(500, f"Failed to create context: {error}")) from error
    Execution(call, context, body["code"], env_vars).run()


def list_contexts(call):
    return Reply.json(200, [c.info() for c in list(call.sandbox.contexts.values())])


def create_context(call):
    body = call.request.json(_validation_error) or {}
    if not isinstance(body, dict):
        raise BadRequest(_validation_error("expected an object", body))
    language = normalize_language(body.get("language"))
    try:
        context = call.sandbox.create_context(language, body.get("cwd") or HOME)
    except (UnsupportedLanguage, KernelDied, ValueError, OSError) as error:
        return Reply.text(500, f"Failed to create context: {error}")
    return Reply.json(200, context.info())


def remove_context(call):
    context_id = call.params["context_id"]
    if not call.sandbox.remove_context(context_id):
        return _context_not_found(context_id)
    return Reply.json(200, None)


def restart_context(call):
    context_id = call.params["context_id"]
    context = call.sandbox.contexts.get(context_id)
    if context is None:
        return _context_not_found(context_id)
    try:
        context.restart()
    except (KernelDied, OSError) as error:
        return Reply.text(500, f"Failed to restart context: {error}")
    return Reply.json(200, None)


def health(call):
    return Reply.json(200, "OK")  # §3.2: FastAPI returns the string as JSON


ROUTES = [
    Route("POST", r"/execute", "execute", execute),
    Route("GET", r"/contexts", "contexts", list_contexts),
    Route("POST", r"/contexts", "contexts", create_context),
    Route("DELETE", r"/contexts/(?P<context_id>[^/]+)", "contexts", remove_context),
    Route("POST", r"/contexts/(?P<context_id>[^/]+)/restart", "contexts", restart_context),
    Route("GET", r"/health", "health", health),
]
