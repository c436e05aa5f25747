"""The control plane, api.e2b.app (e2b-protocol.md §1)."""

import time
from urllib.parse import parse_qsl, unquote

from .faults import Reply, default_fault_reply, sandbox_not_found_message
from .kernels import KernelDied
from .sandboxes import DEBUG_SANDBOX_ID, DEFAULT_TIMEOUT_S, ENVD_VERSION, rfc3339
from .wire import BadRequest, Route

MAX_PAGE = 100  # GET /v2/sandboxes `limit`: default and maximum
# Fixed resources of the fake "VM", reported by list/get (§1 ListedSandbox).
CPU_COUNT, MEMORY_MB, DISK_MB = 2, 512, 1024


def _error(status, message):
    return Reply.json(status, {"code": status, "message": message})  # §1 error body


def _bad_request(message):
    return _error(400, message)


def _string_map(body, key):
    value = body.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise BadRequest(_bad_request(f"{key} must map strings to strings"))
    return value


def _seconds(body, key, default):
    value = body.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool):
        raise BadRequest(_bad_request(f"{key} must be an integer number of seconds"))
    return max(value, 0)  # E2B treats a negative timeout as 0


class ControlPlane:
    def __init__(self, registry, api_keys):
        self.registry = registry
        self.api_keys = set(api_keys)
        self.routes = [
            Route("POST", r"/v2/sandboxes", "create", self.create),
            Route("GET", r"/v2/sandboxes", "list", self.list),
            Route("GET", r"/sandboxes/(?P<sandbox_id>[^/]+)", "get", self.get),
            Route("DELETE", r"/sandboxes/(?P<sandbox_id>[^/]+)", "kill", self.kill),
            Route("POST", r"/sandboxes/(?P<sandbox_id>[^/]+)/timeout", "timeout", self.set_timeout),
            Route("POST", r"/v2/sandboxes/(?P<sandbox_id>[^/]+)/connect", "connect", self.connect),
        ]

    def authorize(self, request):
        """§1: X-API-Key (the SDK spells it X-API-KEY; names are case-insensitive)."""
        if request.header("X-API-Key") not in self.api_keys:
            raise BadRequest(default_fault_reply("create", 401, None))

    def _sandbox(self, call):
        """The addressed sandbox, if alive; the debug-mode sandbox belongs to no
        control plane (§4: debug mode makes no API calls)."""
        sandbox_id = call.params["sandbox_id"]
        sandbox = self.registry.get(sandbox_id)
        if sandbox is None or sandbox.sandbox_id == DEBUG_SANDBOX_ID:
            raise BadRequest(_error(404, sandbox_not_found_message(sandbox_id)))
        return sandbox

    # ---- representations (§1) --------------------------------------------

    @staticmethod
    def sandbox_json(sandbox):
        """`Sandbox`, the answer of create and connect."""
        return {"sandboxID": sandbox.sandbox_id, "templateID": sandbox.template_id,
                "clientID": sandbox.client_id, "envdVersion": ENVD_VERSION,
                "envdAccessToken": sandbox.envd_access_token, "trafficAccessToken": None,
                "domain": None, "alias": sandbox.template_alias}

    @staticmethod
    def listed_json(sandbox):
        """`ListedSandbox`."""
        return {"sandboxID": sandbox.sandbox_id, "templateID": sandbox.template_id,
                "alias": sandbox.template_alias, "clientID": sandbox.client_id,
                "startedAt": rfc3339(sandbox.started_at), "endAt": rfc3339(sandbox.end_at),
                "state": "running", "cpuCount": CPU_COUNT, "memoryMB": MEMORY_MB,
                "diskSizeMB": DISK_MB, "envdVersion": ENVD_VERSION, "metadata": sandbox.metadata}

    # ---- routes -----------------------------------------------------------

    def create(self, call):
        body = call.request.json(_bad_request)
        if not isinstance(body, dict) or not isinstance(body.get("templateID"), str):
            return _bad_request("templateID is required")
        try:
            sandbox = self.registry.create(
                body["templateID"], metadata=_string_map(body, "metadata"),
                env_vars=_string_map(body, "envVars"),
                timeout_s=_seconds(body, "timeout", DEFAULT_TIMEOUT_S))
        except (KernelDied, OSError) as error:
            return _error(500, f"Failed to create sandbox: {error}")
        return Reply.json(201, self.sandbox_json(sandbox))

    def list(self, call):
        """GET /v2/sandboxes: running sandboxes (this fake never pauses one),
        filtered by metadata/state/template, oldest first unless
        order=desc, `limit` per page; X-Next-Token is absent on the last page."""
        query = call.request.query
        sandboxes = [s for s in self.registry.alive() if s.sandbox_id != DEBUG_SANDBOX_ID]
        # The SDK URL-encodes each pair, then the whole query (§1): decode twice.
        wanted = {unquote(k): unquote(v) for k, v in parse_qsl(query.get("metadata", ""))}
        sandboxes = [s for s in sandboxes if all(s.metadata.get(k) == v for k, v in wanted.items())]
        if "state" in query and "running" not in query["state"].split(","):
            sandboxes = []
        if query.get("template"):
            sandboxes = [s for s in sandboxes if query["template"] in (s.template_id, s.template_alias)]
        sandboxes.sort(key=lambda s: (s.started_at, s.sandbox_id), reverse=query.get("order") == "desc")
        try:
            limit = int(query.get("limit", MAX_PAGE))
        except ValueError:
            return _bad_request("limit must be an integer")
        if not 1 <= limit <= MAX_PAGE:
            return _bad_request(f"limit must be between 1 and {MAX_PAGE}")
        start = 0
        if query.get("nextToken"):
            ids = [s.sandbox_id for s in sandboxes]
            if query["nextToken"] not in ids:
                return _bad_request("invalid nextToken")
            start = ids.index(query["nextToken"]) + 1
        page = sandboxes[start:start + limit]
        headers = {"X-Total-Running": str(len(self.registry.alive()))}
        if start + limit < len(sandboxes):
            headers["X-Next-Token"] = page[-1].sandbox_id  # opaque to clients
        return Reply.json(200, [self.listed_json(s) for s in page], headers)

    def get(self, call):
        """`SandboxDetail` = ListedSandbox + domain, envdAccessToken, …"""
        sandbox = self._sandbox(call)
        detail = self.listed_json(sandbox)
        detail.update(domain=None, envdAccessToken=sandbox.envd_access_token,
                      allowInternetAccess=True,
                      lifecycle={"onTimeout": "kill", "autoResume": False})
        return Reply.json(200, detail)

    def kill(self, call):
        self.registry.kill(self._sandbox(call))
        return Reply(204)

    def set_timeout(self, call):
        """§1: the timeout counts from now; it may shorten the life too."""
        sandbox = self._sandbox(call)
        body = call.request.json(_bad_request)
        if not isinstance(body, dict) or "timeout" not in body:
            return _bad_request("timeout is required")
        self.registry.set_timeout(sandbox, _seconds(body, "timeout", None))
        return Reply(204)

    def connect(self, call):
        """§1: 200 for a running sandbox; its timeout is extended to
        now + timeout (default 300 s), never shortened."""
        sandbox = self._sandbox(call)
        body = call.request.json(_bad_request) or {}
        if not isinstance(body, dict):
            return _bad_request("expected an object")
        timeout_s = _seconds(body, "timeout", DEFAULT_TIMEOUT_S)
        if time.time() + timeout_s > sandbox.end_at:
            self.registry.set_timeout(sandbox, timeout_s)
        return Reply.json(200, self.sandbox_json(sandbox))
