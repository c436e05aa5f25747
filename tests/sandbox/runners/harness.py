"""Host side of the runner protocol (sandbox/runners/PROTOCOL.md), for tests.

Starts a runner directly on the host, without a sandbox: socketpairs on fds 3
(requests) and 4 (events), pipes on fds 0, 1 and 2.
"""

import fcntl
import json
import os
import signal
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

RUNNERS = Path(__file__).resolve().parents[3] / "sandbox" / "runners"
COMMANDS = {
    "python": ["/usr/bin/python3", "-I", "-u", str(RUNNERS / "python_runner.py")],
    "javascript": ["/usr/bin/node", "--experimental-vm-modules", str(RUNNERS / "node_runner.js")],
    "bash": ["/usr/bin/python3", "-I", "-u", str(RUNNERS / "bash_runner.py")],
    "typescript": ["/usr/bin/node", "--experimental-vm-modules", str(RUNNERS / "node_runner.js"), "--typescript"],
}
JAVA_HOME = Path("/usr/lib/jvm/java-17-openjdk-amd64")
# The JVM flags of PROTOCOL.md's "Runner start".
JAVA_FLAGS = ["-Xshare:auto", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC",
              "--add-opens", "java.base/java.io=ALL-UNNAMED", "--add-opens", "java.base/java.lang=ALL-UNNAMED",
              "--add-opens", "java.base/java.util=ALL-UNNAMED"]
_java_classes = None


def java_classes():
    """Compiles the Java kernel once per test session (the build does it for the service)."""
    global _java_classes
    if _java_classes is None:
        import atexit
        import shutil
        import tempfile
        out = tempfile.mkdtemp(prefix="java-runner-")
        atexit.register(shutil.rmtree, out, ignore_errors=True)
        subprocess.run([str(JAVA_HOME / "bin" / "javac"), "-nowarn", "-Xlint:none", "-d", out,
                        *map(str, (RUNNERS / "java").glob("*.java"))], check=True, capture_output=True)
        _java_classes = out
    return _java_classes


def command(language):
    if language == "java":
        return [str(JAVA_HOME / "bin" / "java"), *JAVA_FLAGS, "-cp", java_classes(), "JavaRunner"]
    if language == "r":
        return ["/usr/bin/Rscript", "--vanilla", str(RUNNERS / "r_runner.R")]
    return COMMANDS[language]


DEADLINE = 10.0  # seconds; generous, only reached when something is broken


def encode_frame(message):
    payload = message if isinstance(message, bytes) else json.dumps(message).encode()
    return struct.pack(">I", len(payload)) + payload


class Execution:
    """The events of one cell, `end` last."""

    def __init__(self, events):
        self.events = events
        self.end = events[-1]

    def text(self, stream):
        return "".join(e["text"] for e in self.events if e["type"] == stream)

    @property
    def stdout(self):
        return self.text("stdout")

    @property
    def stderr(self):
        return self.text("stderr")

    @property
    def results(self):
        return [e for e in self.events if e["type"] == "result"]

    @property
    def main_result(self):
        main = [e for e in self.results if e["is_main_result"]]
        assert len(main) <= 1, self.events
        return main[0] if main else None

    @property
    def error(self):
        errors = [e for e in self.events if e["type"] == "error"]
        assert len(errors) <= 1, self.events
        return errors[0] if errors else None

    @property
    def status(self):
        return self.end["status"]


class PipeReader:
    """Drains one of the runner's output pipes in a thread."""

    def __init__(self, pipe):
        self._pipe = pipe
        self._data = bytearray()
        self._cond = threading.Condition()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        for chunk in iter(lambda: self._pipe.read1(65536), b""):
            with self._cond:
                self._data += chunk
                self._cond.notify_all()

    def text(self):
        with self._cond:
            return self._data.decode(errors="replace")

    def clear(self):
        with self._cond:
            self._data.clear()

    def wait_for(self, needle, timeout=DEADLINE):
        with self._cond:
            ok = self._cond.wait_for(lambda: needle.encode() in self._data, timeout)
            assert ok, f"{needle!r} not seen; got {bytes(self._data)!r}"


class StdinFifo:
    """A cell's stdin as the host provides it (PROTOCOL.md): a FIFO the host
    writes the client's data into and closes for end of file. It also keeps a
    read descriptor (never read) until the test ends: without one, data written
    and closed before the runner opened the FIFO would be discarded."""

    def __init__(self, directory, name="stdin"):
        self.path = str(Path(directory) / name)
        os.mkfifo(self.path, 0o600)
        self._keep = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CLOEXEC)  # a reader exists: no wait
        FIFOS.append(self)

    def write(self, data):
        os.write(self._fd, data.encode() if isinstance(data, str) else data)

    def close(self):
        """End of file."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def release(self):
        self.close()
        if self._keep is not None:
            os.close(self._keep)
            self._keep = None


FIFOS = []  # released by the `start` fixture


class Runner:
    def __init__(self, language, cwd, env=None, stdin_eof=False):
        self._requests, child_requests = socket.socketpair()
        self._events, child_events = socket.socketpair()
        # Above fd 4, so that dup2 onto 3 and 4 in the child cannot clobber them.
        child_fds = [fcntl.fcntl(s.fileno(), fcntl.F_DUPFD_CLOEXEC, 10) for s in (child_requests, child_events)]
        child_requests.close()
        child_events.close()

        def place_channels():
            os.dup2(child_fds[0], 3)
            os.dup2(child_fds[1], 4)

        base_env = {"PATH": "/usr/bin:/bin", "HOME": str(cwd), "LANG": "C.UTF-8"}
        self.proc = subprocess.Popen(
            command(language), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, cwd=cwd, env={**base_env, **(env or {})},
            preexec_fn=place_channels, close_fds=False)  # our fds are non-inheritable anyway
        for fd in child_fds:
            os.close(fd)
        if stdin_eof:  # fd 0 at end of file, as in the service
            self.proc.stdin.close()
        self.raw_stdout = PipeReader(self.proc.stdout)
        self.raw_stderr = PipeReader(self.proc.stderr)
        self._buffer = b""
        self._next_id = 0
        self.ready = self.read_event()
        assert self.ready["type"] == "ready", self.ready

    # ---- frames ---------------------------------------------------------

    def send(self, message):
        self._requests.sendall(encode_frame(message))

    def send_bytes(self, data):
        self._requests.sendall(data)

    def close_requests(self):
        """End of file on the runner's fd 3."""
        self._requests.shutdown(socket.SHUT_WR)

    def _read_exact(self, size, deadline):
        while len(self._buffer) < size:
            remaining = deadline - time.monotonic()
            assert remaining > 0, "timed out waiting for an event"
            self._events.settimeout(remaining)
            chunk = self._events.recv(1 << 20)
            if not chunk:
                self.proc.wait(1)
                raise AssertionError(f"event channel closed; runner exit status {self.proc.returncode}, "
                                     f"stderr: {self.raw_stderr.text()!r}")
            self._buffer += chunk
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def read_event(self, timeout=DEADLINE):
        deadline = time.monotonic() + timeout
        (size,) = struct.unpack(">I", self._read_exact(4, deadline))
        return json.loads(self._read_exact(size, deadline))

    # ---- cells ----------------------------------------------------------

    def start(self, code, env=None, stdin=None):
        """Sends an exec request; returns its id. `stdin`: a StdinFifo or a path."""
        self._next_id += 1
        request_id = f"c{self._next_id}"
        request = {"op": "exec", "id": request_id, "code": code}
        if env is not None:
            request["env"] = env
        if stdin is not None:
            request["stdin"] = getattr(stdin, "path", stdin)
        self.send(request)
        return request_id

    def collect(self, request_id="", timeout=DEADLINE, on_event=None):
        """Reads events up to and including `end`."""
        deadline = time.monotonic() + timeout
        events = []
        while True:
            event = self.read_event(deadline - time.monotonic())
            events.append(event)
            if on_event:
                on_event(event)
            if event["type"] == "end":
                assert event["id"] == request_id, events
                return Execution(events)

    def run(self, code, env=None, timeout=DEADLINE, stdin=None):
        return self.collect(self.start(code, env, stdin), timeout)

    def wait_event(self, predicate, timeout=DEADLINE):
        """Reads events until one matches; returns the ones read so far."""
        deadline = time.monotonic() + timeout
        events = []
        while True:
            events.append(self.read_event(deadline - time.monotonic()))
            if predicate(events[-1]):
                return events

    def interrupt(self):
        os.kill(self.proc.pid, signal.SIGINT)

    def wait_until_blocked_in(self, kernel_function, timeout=DEADLINE):
        """Waits until the runner's main thread sleeps in `kernel_function`
        (e.g. hrtimer_nanosleep): a SIGINT sent earlier could arrive just
        before the blocking call and only take effect when it returns."""
        deadline = time.monotonic() + timeout
        names = (kernel_function,) if isinstance(kernel_function, str) else tuple(kernel_function)
        while True:
            with open(f"/proc/{self.proc.pid}/wchan") as f:
                if f.read() in names:
                    return
            assert time.monotonic() < deadline, f"never blocked in {kernel_function}"
            time.sleep(0.001)

    def descendants(self):
        """{pid: command} of the processes below the runner."""
        found = {}
        pids = [self.proc.pid]
        while pids:
            pid = pids.pop()
            try:
                with open(f"/proc/{pid}/task/{pid}/children") as f:
                    children = [int(child) for child in f.read().split()]
                for child in children:
                    with open(f"/proc/{child}/comm") as f:
                        found[child] = f.read().strip()
                pids += children
            except FileNotFoundError:  # exited meanwhile
                pass
        return found

    def wait_for_descendant(self, command, timeout=DEADLINE):
        """Waits until a process below the runner has exec'd `command`."""
        deadline = time.monotonic() + timeout
        while command not in self.descendants().values():
            assert time.monotonic() < deadline, f"{command} never started"
            time.sleep(0.001)

    def interrupt_idle(self, timeout=DEADLINE):
        """SIGINT between cells; returns once the runner has received it, so
        that it cannot reach the next cell instead."""
        self.interrupt()
        deadline = time.monotonic() + timeout
        while True:
            with open(f"/proc/{self.proc.pid}/status") as f:
                fields = dict(line.split(":", 1) for line in f)
            pending = int(fields["SigPnd"], 16) | int(fields["ShdPnd"], 16)
            if not pending & (1 << (signal.SIGINT - 1)):
                return
            assert time.monotonic() < deadline, "SIGINT never delivered"
            time.sleep(0.001)

    # ---- lifetime -------------------------------------------------------

    def wait_exit(self, timeout=DEADLINE):
        return self.proc.wait(timeout)

    def close(self):
        try:
            if self.proc.poll() is None:
                self.send({"op": "shutdown"})
                self.proc.wait(DEADLINE)
        except (OSError, subprocess.TimeoutExpired):
            # A stuck runner: kill it and what it started (bash has its own group).
            for pid in [*self.descendants(), self.proc.pid]:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.proc.wait()
        finally:
            self._requests.close()
            self._events.close()
            if not self.proc.stdin.closed:
                self.proc.stdin.close()
