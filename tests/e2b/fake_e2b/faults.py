"""Fault injection (POST /_test/faults), for the tests of E2B clients.

A rule names an operation and one fault; rules match in the order they were
posted and each is consumed after `times` matches. Faults are what a client
of real E2B meets: error statuses with E2B's bodies, a 429 with Retry-After
(§1: the SDK retries only then), a connection reset, an NDJSON stream cut
before `end_of_execution` (§3.1), a slow answer.
"""

import json
import threading

OPS = ("create", "list", "get", "kill", "timeout", "connect",   # control plane (§1)
       "execute", "contexts", "health", "files")                # data plane (§3, §5)
STATUSES = (401, 404, 429, 500, 502, 503)
ACTIONS = ("status", "reset", "cut_after_lines")

# Default error messages. Control-plane bodies are {"code", "message"} (§1);
# the 404 text is E2B API's sandboxNotFoundMsg, the 401 text its API-key
# authenticator's, the 429 one the real-world example of §1.
CONTROL_MESSAGES = {
    401: "Invalid API key, please visit https://e2b.dev/docs/api-key for more information.",
    429: "you have reached the maximum number of concurrent E2B sandboxes (20)",
    500: "Internal server error",
    503: "Service is temporarily unavailable",
}
# The code interpreter (FastAPI) answers errors in plain text (§3.1 table).
CODE_INTERPRETER_TEXT = {
    401: "Unauthorized",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def sandbox_not_found_message(sandbox_id):
    return f'Sandbox "{sandbox_id}" doesn\'t exist or you don\'t have access to it'


def edge_proxy_body(sandbox_id, message="The sandbox was not found", code=502):
    """§2 "Edge-proxy errors": what E2B's edge answers for a dead/unknown sandbox."""
    return {"sandboxId": sandbox_id, "message": message, "code": code}


class Reply:
    """An HTTP answer: status, content type (None: no body) and body bytes."""

    def __init__(self, status, body=None, content_type=None, headers=None):
        self.status = status
        self.content_type = content_type
        self.body = body if isinstance(body, bytes) or body is None else body.encode()
        self.headers = dict(headers or {})

    @classmethod
    def json(cls, status, value, headers=None, content_type="application/json"):
        return cls(status, json.dumps(value), content_type, headers)

    @classmethod
    def text(cls, status, text):
        return cls(status, text, "text/plain; charset=utf-8")


def edge_proxy_reply(sandbox_id, message="The sandbox was not found", code=502):
    return Reply.json(code, edge_proxy_body(sandbox_id, message, code),
                      content_type="application/json; charset=utf-8")


def default_fault_reply(op, status, sandbox_id, context_id=None):
    """The body E2B would send with `status` for `op`."""
    if status == 502:
        return edge_proxy_reply(sandbox_id or "")
    if op in ("execute", "contexts"):
        if status == 404:
            return Reply.text(404, f"Context {context_id or 'unknown'} not found")
        return Reply.text(status, CODE_INTERPRETER_TEXT[status])
    if status == 404:
        message = sandbox_not_found_message(sandbox_id) if sandbox_id else "Not found"
        if op == "files":
            message = "path not found"
    else:
        message = CONTROL_MESSAGES[status]
    return Reply.json(status, {"code": status, "message": message})


class FaultRule:
    def __init__(self, spec):
        if not isinstance(spec, dict):
            raise ValueError("a rule is a JSON object")
        unknown = set(spec) - {"op", "times", "delay_ms", "retry_after", "body", *ACTIONS}
        if unknown:
            raise ValueError(f"unknown rule fields {sorted(unknown)}")
        self.op = spec.get("op")
        if self.op not in OPS:
            raise ValueError(f"op must be one of {OPS}")
        self.times = _non_negative_int(spec, "times", 1)
        if self.times < 1:
            raise ValueError("times must be at least 1")
        self.delay_ms = _non_negative_int(spec, "delay_ms", 0)
        actions = [a for a in ACTIONS if spec.get(a) not in (None, False)]
        if len(actions) > 1 or (not actions and not self.delay_ms):
            raise ValueError(f"a rule needs exactly one of {ACTIONS}, or only delay_ms")
        self.action = actions[0] if actions else None
        self.status = spec.get("status")
        if self.action == "status" and self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}")
        self.retry_after = _non_negative_int(spec, "retry_after", None)
        self.body = spec.get("body")
        self.cut_after_lines = _non_negative_int(spec, "cut_after_lines", None)
        if self.action == "cut_after_lines" and self.op != "execute":
            raise ValueError("cut_after_lines applies to execute only")

    def reply(self, sandbox_id, context_id=None):
        """The reply of a `status` rule."""
        if self.body is not None:
            reply = Reply.json(self.status, self.body)
        else:
            reply = default_fault_reply(self.op, self.status, sandbox_id, context_id)
        if self.retry_after is not None:
            reply.headers["Retry-After"] = str(self.retry_after)
        return reply


def _non_negative_int(spec, key, default):
    value = spec.get(key, default)
    if value is default:
        return value
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{key} must be a non-negative integer")
    return value


class FaultPlan:
    def __init__(self):
        self._lock = threading.Lock()
        self._rules = []

    def add(self, specs):
        """Validates every rule first, then appends them all (or none)."""
        if not isinstance(specs, list):
            specs = [specs]
        rules = [FaultRule(spec) for spec in specs]
        with self._lock:
            self._rules += rules
        return len(rules)

    def clear(self):
        with self._lock:
            self._rules.clear()

    def take(self, op):
        """The first rule for `op`, consumed once; None if there is none."""
        with self._lock:
            for index, rule in enumerate(self._rules):
                if rule.op == op:
                    rule.times -= 1
                    if rule.times == 0:
                        del self._rules[index]
                    return rule
        return None

    def pending(self):
        with self._lock:
            return [{"op": r.op, "times": r.times, "action": r.action} for r in self._rules]
