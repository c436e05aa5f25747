"""Kernels of the fake code interpreter: our own runners, started on the host.

E2B's code interpreter (e2b-protocol.md §3) runs one Jupyter kernel per
context. Here a kernel is one of our runner processes (sandbox/runners,
PROTOCOL.md) driven over fds 3 (request frames) and 4 (event frames), without
any sandbox: the fake is a test double for the protocol, not for isolation.
The runner's event vocabulary is already E2B's (PROTOCOL.md "Events"), so the
code interpreter only adds the wire details of §3.1.
"""

import contextlib
import fcntl
import json
import os
import queue
import selectors
import signal
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

RUNNERS = Path(__file__).resolve().parents[3] / "sandbox" / "runners"
PYTHON = "/usr/bin/python3"  # Debian's: it has numpy, matplotlib and pandas
NODE = "/usr/bin/node"

# PROTOCOL.md "Runner start". TypeScript is the JavaScript kernel with types
# stripped, as in E2B (§3.2: "typescript runs on the javascript kernel").
COMMANDS = {
    "python": [PYTHON, "-I", "-u", str(RUNNERS / "python_runner.py")],
    "javascript": [NODE, "--experimental-vm-modules", str(RUNNERS / "node_runner.js")],
    "typescript": [NODE, "--experimental-vm-modules", str(RUNNERS / "node_runner.js"), "--typescript"],
    "bash": [PYTHON, "-I", "-u", str(RUNNERS / "bash_runner.py")],
}

READY_TIMEOUT_S = 30.0
# PROTOCOL.md "Requests": a SIGINT can miss, so the host repeats it before it
# escalates to killing the kernel.
INTERRUPT_REPEAT_S = 0.5
INTERRUPT_GIVE_UP_S = 5.0
FRAME_HEADER = struct.Struct(">I")


class UnsupportedLanguage(Exception):
    pass


class KernelDied(Exception):
    """The runner exited (or was killed) while a cell was expected to run."""


def encode_frame(message):
    payload = json.dumps(message).encode()
    return FRAME_HEADER.pack(len(payload)) + payload


class Kernel:
    """One runner process. Events (fd 4 frames, plus the raw fds 1 and 2
    turned into stdout/stderr events) arrive in one queue, in arrival order."""

    def __init__(self, language, cwd, env):
        if language not in COMMANDS:
            raise UnsupportedLanguage(f"no kernel for language {language!r}")
        self.language = language
        requests, self._child_requests = socket.socketpair()
        events, self._child_events = socket.socketpair()
        self._requests, self._events = requests, events
        # Above fd 4, so that placing them on 3 and 4 in the child cannot clobber them.
        child_fds = [fcntl.fcntl(s.fileno(), fcntl.F_DUPFD_CLOEXEC, 10)
                     for s in (self._child_requests, self._child_events)]
        self._child_requests.close()
        self._child_events.close()

        def place_channels():
            os.dup2(child_fds[0], 3)
            os.dup2(child_fds[1], 4)

        try:
            # Own session and process group, as in the service (PROTOCOL.md
            # "Several kernels"): a kill reaches what a cell started.
            self.proc = subprocess.Popen(
                COMMANDS[language], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, cwd=cwd, env=env, start_new_session=True,
                preexec_fn=place_channels, close_fds=False)
        finally:
            for fd in child_fds:
                os.close(fd)
        self._queue = queue.Queue()
        self._read_ready()
        threading.Thread(target=self._pump, name=f"kernel-{self.proc.pid}", daemon=True).start()

    @property
    def pid(self):
        return self.proc.pid

    # ---- reading ----------------------------------------------------------

    def _read_ready(self):
        """The first frame is `ready` (PROTOCOL.md "Events"); read it here so
        that a kernel is only handed out once it accepts requests."""
        self._events.settimeout(READY_TIMEOUT_S)
        self._buffer = bytearray()
        try:
            while (frames := self._take_frames()) == []:
                chunk = self._events.recv(1 << 16)
                if not chunk:
                    raise KernelDied(f"{self.language} kernel exited before ready: "
                                     f"{self.proc.stderr.read1(65536)!r}")
                self._buffer += chunk
        except (socket.timeout, KernelDied):
            self.kill()
            self._close_channels()
            raise
        finally:
            self._events.settimeout(None)
        if frames[0].get("type") != "ready":
            self.kill()
            self._close_channels()
            raise KernelDied(f"unexpected first event {frames[0]!r}")
        for event in frames[1:]:
            self._queue.put(event)

    def _take_frames(self):
        frames = []
        while len(self._buffer) >= FRAME_HEADER.size:
            (size,) = FRAME_HEADER.unpack_from(self._buffer)
            if len(self._buffer) < FRAME_HEADER.size + size:
                break
            frames.append(json.loads(self._buffer[FRAME_HEADER.size:FRAME_HEADER.size + size]))
            del self._buffer[:FRAME_HEADER.size + size]
        return frames

    def _pump(self):
        """Moves the runner's output into the queue until it exits. One thread
        for the three fds, so that raw output written before a cell's `end`
        can be drained before `end` is queued (PROTOCOL.md: "the host should
        drain fds 1/2 before it reports the cell as ended")."""
        raw = {self.proc.stdout.fileno(): "stdout", self.proc.stderr.fileno(): "stderr"}
        for fd in raw:
            os.set_blocking(fd, False)
        selector = selectors.DefaultSelector()
        selector.register(self._events, selectors.EVENT_READ)
        for fd in raw:
            selector.register(fd, selectors.EVENT_READ)
        running = True
        while running:
            for key, _ in selector.select():
                if key.fileobj is self._events:
                    chunk = self._events.recv(1 << 20)
                    if not chunk:
                        running = False
                        break
                    self._buffer += chunk
                    for event in self._take_frames():
                        if event.get("type") == "end":
                            self._drain_raw(raw, selector)
                        self._queue.put(event)
                else:
                    self._read_raw(key.fd, raw, selector)
        self._drain_raw(raw, selector)
        selector.close()
        self._close_channels()
        self._queue.put(KernelDied(f"{self.language} kernel exited"))

    def _close_channels(self):
        """Closed by the thread that reads them (or instead of it), never
        under its feet."""
        self._events.close()
        self.proc.stdout.close()
        self.proc.stderr.close()

    def _read_raw(self, fd, raw, selector):
        """Reads what one raw pipe holds; returns False when it is empty."""
        try:
            data = os.read(fd, 1 << 16)
        except BlockingIOError:
            return False
        if not data:  # the runner and everything it started closed it
            selector.unregister(fd)
            del raw[fd]
            return False
        # Raw output is bytes; a character split across reads shows as U+FFFD
        # (acceptable for a test double; the runner's own events are exact).
        self._queue.put({"type": raw[fd], "text": data.decode(errors="replace")})
        return True

    def _drain_raw(self, raw, selector):
        for fd in list(raw):
            while fd in raw and self._read_raw(fd, raw, selector):
                pass

    # ---- cells ------------------------------------------------------------

    def discard_pending(self):
        """Drops output of work a previous cell left running: E2B only streams
        what a cell's own execution produced (§3.1)."""
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if isinstance(item, KernelDied):
                self._queue.put(item)  # keep the news for the next reader
                return

    def start_cell(self, cell_id, code, env=None):
        request = {"op": "exec", "id": cell_id, "code": code}
        if env:
            request["env"] = env
        try:
            self._requests.sendall(encode_frame(request))
        except OSError as error:
            raise KernelDied(f"cannot send to the kernel: {error}") from error

    def next_event(self, timeout):
        """The next event, or None after `timeout` seconds; raises KernelDied."""
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
        if isinstance(item, KernelDied):
            self._queue.put(item)
            raise item
        return item

    def interrupt_until_end(self, cell_id):
        """Interrupts the running cell and consumes its events up to its `end`,
        repeating SIGINT (PROTOCOL.md) and killing the kernel if it does not
        stop. Returns True if the kernel survived."""
        give_up = time.monotonic() + INTERRUPT_GIVE_UP_S
        while time.monotonic() < give_up:
            self.interrupt()
            repeat_at = time.monotonic() + INTERRUPT_REPEAT_S
            try:
                while (remaining := repeat_at - time.monotonic()) > 0:
                    event = self.next_event(remaining)
                    if event and event.get("type") == "end" and event.get("id") == cell_id:
                        return True
            except KernelDied:
                return False
        self.kill()
        return False

    def interrupt(self):
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGINT)

    # ---- lifetime ---------------------------------------------------------

    def kill(self):
        """SIGKILL to the runner's process group and to the groups of what it
        started (the bash runner puts its shell in a group of its own)."""
        groups = {self.proc.pid}
        for pid in descendants(self.proc.pid):
            with contextlib.suppress(ProcessLookupError):  # exited meanwhile
                groups.add(os.getpgid(pid))
        for group in groups:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGKILL)
        self.proc.wait()
        self._requests.close()
        # The pump thread now sees end of file on fd 4 and closes the rest.


def descendants(pid):
    """Pids of every process below `pid`."""
    found, pending = [], [pid]
    while pending:
        parent = pending.pop()
        try:
            for task in os.listdir(f"/proc/{parent}/task"):
                with open(f"/proc/{parent}/task/{task}/children") as f:
                    children = [int(child) for child in f.read().split()]
                found += children
                pending += children
        except (FileNotFoundError, ProcessLookupError):
            pass  # exited meanwhile
    return found
