"""Bash kernel: drives one persistent bash (see PROTOCOL.md).

Started as `/usr/bin/python3 -I -u bash_runner.py`, which imports this module (so
that it loads from its precompiled .pyc) and calls main(). Requests arrive on fd 3,
events leave on fd 4 (4-byte big-endian length-prefixed JSON frames).

The shell reads its commands from a FIFO (it must not read them from stdin,
which belongs to the user's code) and shares the runner's fds 0, 1 and 2, so
its output goes straight to the host's pipes: this runner sends no
stdout/stderr events. Each cell is written to a file and `source`d, so cd,
variables and functions persist; the shell then writes the cell's exit status
to a dedicated pipe. SIGINT aborts the cell, not the shell (see SHELL_SETUP).
If a cell ends the shell (`exit`, `set -e`, `exec`), a fresh one is started
and the cell is reported as an error: the state is lost.
"""

import contextlib
import os
import re
import select
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile

# The runner directory holds the shared framing module; -I leaves it off sys.path,
# and it goes off again so that user code does not import from it.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import runner_protocol  # noqa: E402
from runner_protocol import EVENT_FD, MAX_FRAME, REQUEST_FD, read_requests  # noqa: E402
del sys.path[0]

BASH = ["/bin/bash", "--noprofile", "--norc"]
# The shell writes cell statuses to this fd: high, so that scripts using
# small fd numbers (exec 3>file) do not clobber it.
STATUS_FD = 63
SHELL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
# SIGINT is trapped during a cell and ignored between cells. The INT trap's
# `return` leaves only the innermost function (or the sourced cell); the ERR
# trap, inherited by functions thanks to errtrace (set -E), makes each caller
# return in turn, so the whole cell unwinds. (A user's own ERR trap replaces
# ours and then only the innermost function is left.)
SHELL_SETUP = "set -E; trap '[[ -v __runner_intr ]] && return 130 2>/dev/null' ERR; trap '' INT"
CELL_TRAP = "trap '__runner_intr=1; return 130 2>/dev/null' INT"
AFTER_CELL = "trap '' INT; unset __runner_intr"
STDIN_OPENED = "stdin"  # status line: the shell has opened the cell's stdin


class ShellExited(Exception):
    def __init__(self, status):
        super().__init__(status)
        self.status = status


class Shell:
    """One bash process, its command FIFO and its status pipe."""

    def __init__(self, workdir, generation):
        os.makedirs(workdir, mode=0o700, exist_ok=True)  # a cell may have cleaned up /tmp
        fifo = os.path.join(workdir, f"commands-{generation}")
        os.mkfifo(fifo, 0o600)
        # O_RDWR: opening does not wait for bash, and bash never sees EOF while we live.
        self._commands = os.open(fifo, os.O_RDWR | os.O_CLOEXEC)
        self._status, status_w = os.pipe()
        os.dup2(status_w, STATUS_FD, inheritable=False)
        os.close(status_w)
        try:
            # Own process group: the runner relays SIGINT to it, cells only.
            self.proc = subprocess.Popen(BASH + [fifo], pass_fds=(STATUS_FD,), process_group=0)
        finally:
            os.close(STATUS_FD)
        self._exited = os.pidfd_open(self.proc.pid)
        self._buffer = b""
        self.version = self.run(f'{SHELL_SETUP}; printf "%s\\n" "$BASH_VERSION" >&{STATUS_FD}')
        os.unlink(fifo)  # bash has opened it by now

    def run(self, command):
        """Sends one command line; returns the first line it writes to STATUS_FD."""
        os.write(self._commands, command.encode() + b"\n")
        return self.next_line()

    def next_line(self):
        """The next line the shell writes to STATUS_FD."""
        while b"\n" not in self._buffer:
            ready, _, _ = select.select([self._status, self._exited], [], [])
            chunk = os.read(self._status, 4096) if self._status in ready else b""
            if not chunk:  # the shell exited, or closed its status fd and is of no more use
                self.close()
                raise ShellExited(self.proc.returncode)
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode()

    def interrupt(self):
        try:
            os.killpg(self.proc.pid, signal.SIGINT)
        except ProcessLookupError:
            pass

    def close(self):
        """Kills the shell and whatever it left running in its process group."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        for fd in (self._commands, self._status, self._exited):
            os.close(fd)


class Kernel:
    def __init__(self):
        self.workdir = tempfile.mkdtemp(prefix=".bash-runner-")
        self.execution_count = 0
        self.generation = 0
        self.running = False
        self.interrupted = False
        # Before the first shell starts: bash cannot trap a signal that is
        # ignored when it starts, and the runner may have inherited SIG_IGN.
        signal.signal(signal.SIGINT, self.on_sigint)
        self.shell = self._new_shell()

    def _new_shell(self):
        self.generation += 1
        return Shell(self.workdir, self.generation)

    def on_sigint(self, signum, frame):
        if self.running:  # between cells SIGINT is ignored
            self.interrupted = True
            self.shell.interrupt()

    def handle(self, payload):
        # bash needs shell variable names.
        runner_protocol.dispatch(payload, lambda key: bool(SHELL_NAME.match(key)),
                                 self.run_cell, self.shutdown, self.protocol_error)

    def protocol_error(self, message, request_id):
        send({"type": "error", "name": "ProtocolError", "value": message, "traceback": ""})
        send({"type": "end", "id": request_id, "status": "error", "execution_count": self.execution_count})

    def run_cell(self, request_id, code, env, stdin_fd=None):
        self.execution_count += 1
        path = os.path.join(self.workdir, f"{self.execution_count}.sh")
        os.makedirs(self.workdir, mode=0o700, exist_ok=True)  # a cell may have cleaned up /tmp
        with open(path, "w", encoding="utf-8", errors="replace") as f:
            f.write(code if code.endswith("\n") else code + "\n")
        # Assignments before `source` are set for the cell only, as requested.
        assignments = "".join(f"{key}={shlex.quote(value)} " for key, value in env.items())
        body = f"{assignments}source {shlex.quote(path)}"
        writer = None
        if stdin_fd is not None:
            # The shell reopens the runner's descriptor of the (already unlinked)
            # stdin FIFO through /proc, a blocking open for this cell only, and
            # says so. Opening a FIFO for reading waits for a writer, and the host
            # may have closed its own already (end of file): the runner holds one
            # until the shell has opened it.
            again = f"/proc/{os.getpid()}/fd/{stdin_fd}"
            if stat.S_ISFIFO(os.fstat(stdin_fd).st_mode):
                writer = os.open(again, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
            body = f"{{ printf '{STDIN_OPENED}\\n' >&{STATUS_FD}; {body}; }} 0<{again}"
        command = f"{CELL_TRAP}; {body}; printf '%d\\n' $? >&{STATUS_FD}; {AFTER_CELL}"
        error = None
        self.interrupted = False
        self.running = True
        try:
            line = self.shell.run(command)
            if writer is not None:
                runner_protocol.touch_writer(stdin_fd)  # see touch_writer: for the shell's reader
                os.close(writer)
                writer = None
            if line == STDIN_OPENED:
                line = self.shell.next_line()
            status = int(line)
            if status:
                error = {"name": "ExitError", "value": f"exit status {status}", "traceback": ""}
        except ShellExited as e:
            self.shell = self._new_shell()
            how = f"status {e.status}" if e.status >= 0 else f"signal {-e.status}"
            error = {"name": "ExitError", "value": f"the shell exited ({how}); a new shell was started "
                     "(variables, functions and the working directory were reset)", "traceback": ""}
        finally:
            self.running = False
            if writer is not None:
                os.close(writer)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        status = "ok"
        if error is not None:
            status = "interrupted" if self.interrupted else "error"
            send({"type": "error", **error})
        send({"type": "end", "id": request_id, "status": status, "execution_count": self.execution_count})

    def shutdown(self):
        self.shell.close()
        shutil.rmtree(self.workdir, ignore_errors=True)
        sys.exit(0)


def send(event):
    runner_protocol.write_all(EVENT_FD, runner_protocol.encode(event))


def main():
    runner_protocol.prepare_fds()
    # The working directory is the context's: the sandbox starts the runner in it.
    kernel = Kernel()
    send({"type": "ready", "language": "bash", "version": kernel.shell.version, "pid": os.getpid()})
    for payload in read_requests(REQUEST_FD):
        if payload is None:
            kernel.protocol_error(f"request frame larger than {MAX_FRAME >> 20} MiB", "")
        else:
            kernel.handle(payload)
    kernel.shutdown()


if __name__ == "__main__":
    main()
