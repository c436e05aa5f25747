"""Sandboxes, their contexts, and the registry that expires them.

A sandbox is a directory under the server's temporary root standing for the
VM's filesystem (`/home/user` is `<root>/<id>/home/user`), plus its contexts
(e2b-protocol.md §3.2): one kernel each, python and javascript created at
start like the template's server does.
"""

import collections
import secrets
import shutil
import string
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from .kernels import Kernel, KernelDied

HOME = "/home/user"
DEFAULT_TIMEOUT_S = 300  # §1: "omitted → server default 300"
ENVD_VERSION = "0.5.7"  # §5: the SDK uploads application/octet-stream from 0.5.7 on
DEFAULT_LANGUAGES = ("python", "javascript")  # §3: the two contexts at startup
DEBUG_SANDBOX_ID = "debug_sandbox_id"  # §4: what the SDK calls a sandbox in debug mode
_ID_ALPHABET = string.ascii_lowercase + string.digits


def new_sandbox_id():
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(20))


def rfc3339(timestamp):
    return datetime.fromtimestamp(timestamp, timezone.utc).isoformat().replace("+00:00", "Z")


def normalize_language(language):
    """§3.2: lower-case + trim; js → javascript, ts → typescript; empty → python."""
    language = (language or "").strip().lower()
    return {"": "python", "js": "javascript", "ts": "typescript"}.get(language, language)


class Context:
    """One kernel, of one language, with its own variables (§3.2)."""

    def __init__(self, sandbox, language, cwd):
        self.id = str(uuid.uuid4())  # E2B's are Jupyter kernel ids
        self.sandbox = sandbox
        self.language = language
        self.cwd = cwd
        self.host_cwd = sandbox.host_path(cwd)
        self.host_cwd.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Lock()  # §3.1: executions on one context are serialized
        self._kernel_lock = threading.Lock()
        self.execution_count = 0  # PROTOCOL.md: the runner counts cells from 1
        self.kernel = Kernel(language, self.host_cwd, sandbox.kernel_env())

    def info(self):
        return {"id": self.id, "language": self.language, "cwd": self.cwd}

    def state(self):
        """For GET /_test/state: also the kernel's pid."""
        return {**self.info(), "pid": self.kernel.pid}

    def restart(self, failed_kernel=None):
        """A fresh kernel; the context's state is lost. With `failed_kernel`,
        only if that one is still current (a concurrent restart wins), as
        Jupyter restarts a kernel that died."""
        with self._kernel_lock:
            old = self.kernel
            if failed_kernel is not None and old is not failed_kernel:
                return
            self.kernel = Kernel(self.language, self.host_cwd, self.sandbox.kernel_env())
            self.execution_count = 0
        old.kill()

    def close(self):
        with self._kernel_lock:
            self.kernel.kill()


class Sandbox:
    def __init__(self, root, template, metadata, env_vars, timeout_s, access_token,
                 kernel_base_env, sandbox_id=None):
        self.sandbox_id = sandbox_id or new_sandbox_id()
        self.template_alias = template
        # A template id is not its alias (§1 example); derive a stable one.
        self.template_id = uuid.uuid5(uuid.NAMESPACE_URL, template).hex[:20]
        self.client_id = secrets.token_hex(4)
        self.envd_access_token = access_token
        self.metadata = dict(metadata)
        self.env_vars = dict(env_vars)
        self.started_at = time.time()
        self.timeout_s = timeout_s
        self.end_at = None if timeout_s is None else self.started_at + timeout_s
        self.root = Path(root) / self.sandbox_id
        self._kernel_base_env = kernel_base_env
        self.alive = True
        self._counts = collections.Counter()  # "executions", "interrupts"
        self._lock = threading.Lock()
        self.contexts = {}
        self._default_contexts = {}  # language → Context
        self._default_lock = threading.Lock()
        self.host_path(HOME).mkdir(parents=True)
        self.host_path("/tmp").mkdir(parents=True)
        try:
            for language in DEFAULT_LANGUAGES:
                self.default_context(language)
        except Exception:
            self.kill()
            raise

    # ---- files ------------------------------------------------------------

    def host_path(self, sandbox_path):
        """The host path of a sandbox path; relative paths are relative to
        /home/user, as envd resolves them for the default user."""
        path = PurePosixPath(HOME) / sandbox_path
        parts = []
        for part in path.parts[1:]:
            if part == "..":
                if not parts:
                    raise ValueError(f"path {sandbox_path!r} leaves the sandbox")
                parts.pop()
            elif part != ".":
                parts.append(part)
        return self.root.joinpath(*parts)

    def sandbox_path(self, sandbox_path):
        """The normalized absolute sandbox path, as envd reports it."""
        return "/" + str(self.host_path(sandbox_path).relative_to(self.root)).lstrip(".")

    def kernel_env(self):
        env = dict(self._kernel_base_env)
        env["HOME"] = str(self.host_path(HOME))
        env.update(self.env_vars)  # §1 envVars: the sandbox's environment
        return env

    # ---- contexts ---------------------------------------------------------

    def create_context(self, language, cwd=HOME):
        context = Context(self, language, cwd)
        with self._lock:
            if not self.alive:
                context.close()
                raise KernelDied("the sandbox was killed")
            self.contexts[context.id] = context
        return context

    def default_context(self, language):
        """§3.1: with `language`, the (lazily created) default context of it;
        a removed one is created again."""
        with self._default_lock:
            context = self._default_contexts.get(language)
            if context is None or context.id not in self.contexts:
                context = self.create_context(language)
                self._default_contexts[language] = context
            return context

    def remove_context(self, context_id):
        with self._lock:
            context = self.contexts.pop(context_id, None)
        if context is None:
            return False
        context.close()
        return True

    # ---- lifetime ---------------------------------------------------------

    def count(self, what):
        """Counts an event ("executions", "interrupts") for GET /_test/state."""
        with self._lock:
            self._counts[what] += 1

    def set_timeout(self, timeout_s):
        self.timeout_s = timeout_s
        self.end_at = time.time() + timeout_s

    def kill(self):
        """Kills every kernel and removes the files; idempotent."""
        with self._lock:
            self.alive = False
            contexts, self.contexts = list(self.contexts.values()), {}
        for context in contexts:
            context.close()
        shutil.rmtree(self.root, ignore_errors=True)

    def state(self):
        """For GET /_test/state."""
        return {"sandboxID": self.sandbox_id, "alive": self.alive, "timeout_s": self.timeout_s,
                "end_at": None if self.end_at is None else rfc3339(self.end_at),
                "contexts": [c.state() for c in list(self.contexts.values())],
                "interrupts": self._counts["interrupts"], "executions": self._counts["executions"]}


class SandboxRegistry:
    """Every sandbox of the server (dead ones too, for /_test/state), and the
    reaper that kills them when their timeout expires (§1 timeout)."""

    def __init__(self, root, kernel_base_env):
        self.root = Path(root)
        self._kernel_base_env = kernel_base_env
        self._lock = threading.Lock()
        self._sandboxes = {}
        self.killed = []
        self._changed = threading.Event()
        self._stopping = False
        self._reaper = threading.Thread(target=self._reap, name="reaper", daemon=True)
        self._reaper.start()

    def create(self, template, metadata=None, env_vars=None, timeout_s=DEFAULT_TIMEOUT_S,
               with_token=True, sandbox_id=None):
        sandbox = Sandbox(self.root, template, metadata or {}, env_vars or {}, timeout_s,
                          secrets.token_hex(16) if with_token else None,
                          self._kernel_base_env, sandbox_id)
        with self._lock:
            self._sandboxes[sandbox.sandbox_id] = sandbox
        self._changed.set()
        return sandbox

    def get(self, sandbox_id):
        """The sandbox if it is alive, else None."""
        with self._lock:
            sandbox = self._sandboxes.get(sandbox_id)
        return sandbox if sandbox is not None and sandbox.alive else None

    def alive(self):
        with self._lock:
            return [s for s in self._sandboxes.values() if s.alive]

    def set_timeout(self, sandbox, timeout_s):
        sandbox.set_timeout(timeout_s)
        self._changed.set()

    def kill(self, sandbox):
        with self._lock:
            if not sandbox.alive:
                return False
            sandbox.alive = False  # at once: the data plane answers 502 from now on
            self.killed.append(sandbox.sandbox_id)
        sandbox.kill()
        return True

    def kill_all(self, forget=False):
        for sandbox in self.alive():
            self.kill(sandbox)
        if forget:
            with self._lock:
                self._sandboxes.clear()
                self.killed.clear()

    def state(self):
        with self._lock:
            sandboxes = list(self._sandboxes.values())
            killed = list(self.killed)
        return {"sandboxes": [s.state() for s in sandboxes], "killed": killed}

    def stop(self):
        self._stopping = True
        self._changed.set()
        self.kill_all()

    def _reap(self):
        while not self._stopping:
            self._changed.clear()  # before looking: a change from now on wakes us
            now = time.time()
            deadlines = []
            for sandbox in self.alive():
                if sandbox.end_at is None:
                    continue
                if sandbox.end_at <= now:
                    self.kill(sandbox)
                else:
                    deadlines.append(sandbox.end_at)
            # Sleeps until the next expiry or a change (create, setTimeout).
            self._changed.wait(timeout=min(deadlines, default=now + 60) - now)
