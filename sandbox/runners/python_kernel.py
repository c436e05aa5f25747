"""Python kernel: runs cells in one persistent namespace (see PROTOCOL.md).

Started as `/usr/bin/python3 -I -u python_runner.py`, which imports this module
(so that it loads from its precompiled .pyc) and calls main(). Requests arrive on
fd 3, events leave on fd 4; both are 4-byte big-endian length-prefixed JSON frames.
Standard library only: matplotlib and pandas are used only when the user's code
has already imported them.
"""

import ast
import contextlib
import io
import linecache
import math
import os
import signal
import sys
import threading
import time
import types

# base64 and traceback are imported where they are needed (binary results, errors):
# every sandbox start pays for what is imported here.

# The runner directory holds the shared framing module; -I leaves it off sys.path,
# and it goes off again so that user code does not import from it.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import runner_protocol  # noqa: E402
from runner_protocol import EVENT_FD, MAX_FRAME, REQUEST_FD, read_requests  # noqa: E402
del sys.path[0]

RUNNER_DIR = os.path.dirname(os.path.abspath(__file__))
FLUSH_DELAY = 0.020      # a partial line waits at most this long (seconds)
MAX_TEXT = 1 << 20       # characters per stdout/stderr event, keeps frames far below MAX_FRAME
MAX_ERROR_TEXT = 1 << 20  # characters kept of an error's value and traceback
MAX_DATA_CELLS = 100_000  # DataFrames up to this size also get `data`
COMPILE_FLAGS = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
CO_COROUTINE = 0x0080    # inspect.CO_COROUTINE, without importing inspect

# IPython's rich-repr methods and the MIME type each produces.
REPR_METHODS = (
    ("_repr_html_", "text/html"),
    ("_repr_markdown_", "text/markdown"),
    ("_repr_svg_", "image/svg+xml"),
    ("_repr_png_", "image/png"),
    ("_repr_jpeg_", "image/jpeg"),
    ("_repr_pdf_", "application/pdf"),
    ("_repr_latex_", "text/latex"),
    ("_repr_json_", "application/json"),
    ("_repr_javascript_", "application/javascript"),
)
# MIME type -> field of an E2B result; other MIME types go to `extra`.
RESULT_FIELDS = {
    "text/plain": "text",
    "text/html": "html",
    "text/markdown": "markdown",
    "image/svg+xml": "svg",
    "image/png": "png",
    "image/jpeg": "jpeg",
    "application/pdf": "pdf",
    "text/latex": "latex",
    "application/json": "json",
    "application/javascript": "javascript",
    "e2b/data": "data",
    "e2b/chart": "chart",
}
JSON_FIELDS = ("json", "data", "chart")


class SigintGuard:
    """Turns SIGINT into KeyboardInterrupt, but only where that is safe.

    Outside a cell (`armed` false) SIGINT is ignored. Inside a cell, the main
    thread may be in the middle of runner code (writing an event frame because
    the user printed); raising there could tear a frame or lose text. Such code
    runs inside `with guard:` and the interrupt is raised when it leaves.
    Only the main thread receives Python signal handlers, so only it counts.
    """

    def __init__(self):
        self.armed = False
        self.pending = False
        self._depth = 0
        self._main = threading.get_ident()

    def handler(self, signum, frame):
        if not self.armed:
            return
        if self._depth:
            self.pending = True
            return
        raise KeyboardInterrupt

    def arm(self):
        self.pending = False
        self.armed = True

    def __enter__(self):
        if threading.get_ident() == self._main:
            self._depth += 1

    def __exit__(self, *exc_info):
        if threading.get_ident() == self._main:
            self._depth -= 1
            # The handler never raises while _depth > 0, so the decrement
            # above always happens before any KeyboardInterrupt.
            if self.pending and not self._depth and self.armed:
                self.pending = False
                raise KeyboardInterrupt


class Channel:
    """Writes event frames to fd 4 and coalesces stdout/stderr text into events.

    At most one stream has pending (not yet sent) text. It is sent when a write
    ends a line, when the other stream or any other event is written, and at
    the latest FLUSH_DELAY after it was first written (flusher thread). One
    lock serializes everything, so events are never reordered.
    """

    def __init__(self, fd, guard):
        self._fd = fd
        self._guard = guard
        self._cond = threading.Condition(threading.Lock())
        self._stream = None
        self._parts = []
        self._size = 0
        self._since = 0.0
        self._idle = False  # the flusher waits for text to become pending
        threading.Thread(target=self._flusher, name="output-flusher", daemon=True).start()

    def send(self, event):
        with self._guard, self._cond:
            self._flush_locked()
            self._write_frame(event)

    def write(self, stream, text):
        with self._guard, self._cond:
            if self._parts and stream != self._stream:
                self._flush_locked()
            self._stream = stream
            newline = text.rfind("\n")
            if newline >= 0:
                self._parts.append(text[: newline + 1])
                self._flush_locked()
                text = text[newline + 1:]
            if text:
                if not self._parts:
                    self._since = time.monotonic()
                    if self._idle:
                        self._idle = False
                        self._cond.notify()
                self._parts.append(text)
                self._size += len(text)
                if self._size >= MAX_TEXT:
                    self._flush_locked()

    def flush(self):
        with self._guard, self._cond:
            self._flush_locked()

    def _flusher(self):
        # SIGINT must reach the main thread: only there does it interrupt a
        # blocking call such as time.sleep().
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        with self._cond:
            while True:
                if not self._parts:
                    self._idle = True
                    self._cond.wait()
                    continue
                delay = self._since + FLUSH_DELAY - time.monotonic()
                if delay > 0:
                    self._cond.wait(delay)
                else:
                    self._flush_locked()

    def _flush_locked(self):
        if not self._parts:
            return
        text = "".join(self._parts)
        self._parts.clear()
        self._size = 0
        for start in range(0, len(text), MAX_TEXT):
            self._write_frame({"type": self._stream, "text": text[start: start + MAX_TEXT]})

    def _write_frame(self, event):
        # Lone surrogates cannot be encoded as UTF-8; they become "?".
        frame = runner_protocol.encode(event)
        if len(frame) > MAX_FRAME and event["type"] == "result":
            notice = f"<result of {len(frame)} bytes not sent: larger than the {MAX_FRAME >> 20} MiB frame limit>"
            frame = runner_protocol.encode({"type": "result", "text": notice, "extra": {},
                                            "is_main_result": event["is_main_result"]})
        runner_protocol.write_all(self._fd, frame)


class RawOut(io.RawIOBase):
    """sys.stdout.buffer / sys.stderr.buffer: bytes go to the raw fd (which the host
    collects too), after the text written before them."""

    def __init__(self, text_stream, fd):
        super().__init__()
        self._text_stream = text_stream
        self._fd = fd

    def writable(self):
        return True

    def fileno(self):
        return self._fd

    def write(self, data):
        self._text_stream.flush()
        view = memoryview(data).cast("B")
        written = 0
        while written < len(view):
            written += os.write(self._fd, view[written:])
        return written


class OutStream(io.TextIOBase):
    """sys.stdout / sys.stderr: text goes to the Channel as stdout/stderr events."""

    def __init__(self, channel, name, fd):
        super().__init__()
        self._channel = channel
        self._name = name
        self._fd = fd
        self._buffer = RawOut(self, fd)

    @property
    def buffer(self):
        return self._buffer

    @property
    def name(self):
        return f"<{self._name}>"

    @property
    def encoding(self):
        return "utf-8"

    @property
    def errors(self):
        return "strict"

    def writable(self):
        return True

    def isatty(self):
        return False

    def fileno(self):
        # Code that needs a real descriptor (e.g. subprocess(stdout=sys.stdout))
        # writes to the raw fd, which the host also collects.
        return self._fd

    def write(self, text):
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if text:
            self._channel.write(self._name, text)
        return len(text)

    def flush(self):
        self._channel.flush()


class CellStdin:
    """A cell's stdin FIFO (PROTOCOL.md): on fd 0 for the cell, so input(),
    sys.stdin and child processes read it; restore() puts the runner's own fd 0
    (at end of file) and sys.stdin back. The FIFO's own fd stays the caller's."""

    def __init__(self, fd):
        try:
            self._saved_fd = os.dup(0)  # non-inheritable
        except OSError:  # started with fd 0 closed
            self._saved_fd = None
        os.dup2(fd, 0)
        self._saved_stdin = sys.stdin
        self.stream = io.open(0, "r", closefd=False,
                              encoding=getattr(sys.stdin, "encoding", None) or "utf-8",
                              errors=getattr(sys.stdin, "errors", None) or "strict")
        sys.stdin = self.stream

    def restore(self):
        sys.stdin = self._saved_stdin
        try:
            self.stream.close()  # later reads of a kept reference fail; fd 0 stays open
        except Exception:
            pass
        if self._saved_fd is None:
            null = os.open(os.devnull, os.O_RDONLY)
            os.dup2(null, 0)
            os.close(null)
        else:
            os.dup2(self._saved_fd, 0)
            os.close(self._saved_fd)


class PatchOnImport:
    """Import hook: patches a module right after it is first imported, before
    any user code sees it (plt.show() displaying figures, IPython's display()
    and get_ipython() being this kernel's, PIL's show/save displaying the image).
    `patches` maps a module name to a function of the module; a lookup per import.
    """

    def __init__(self, patches):
        self._patches = patches

    def find_spec(self, name, path, target=None):
        patch = self._patches.pop(name, None)
        if patch is None:
            return None
        if not self._patches:
            sys.meta_path.remove(self)
        import importlib.util
        spec = importlib.util.find_spec(name)  # the other finders: the patch is popped
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_patch(module):
            exec_module(module)
            patch(module)

        spec.loader.exec_module = exec_and_patch
        return spec


class Kernel:
    def __init__(self, channel, guard):
        self.channel = channel
        self.guard = guard
        self.execution_count = 0
        # The namespace is a real module registered as __main__, so pickle and
        # multiprocessing find classes and functions defined in cells.
        main = types.ModuleType("__main__")
        sys.modules["__main__"] = main
        self.namespace = main.__dict__
        self._loop = None
        self._shell = None
        self._display_sink = None  # %%capture collects displayed values here

    def shell(self):
        """get_ipython(): the IPython support is loaded on its first use."""
        if self._shell is None:
            self._shell = runner_module("python_ipython").Shell(self)
        return self._shell

    # ---- requests -------------------------------------------------------

    def handle(self, payload):
        runner_protocol.dispatch(payload,
                                 lambda key: bool(key) and "=" not in key and "\0" not in key,
                                 self.run_cell, shutdown, self.protocol_error)

    def protocol_error(self, message, request_id):
        self.channel.send({"type": "error", "name": "ProtocolError", "value": message, "traceback": ""})
        self.channel.send({"type": "end", "id": request_id, "status": "error",
                           "execution_count": self.execution_count})

    # ---- one cell -------------------------------------------------------

    def run_cell(self, request_id, code, env, stdin_fd=None):
        self.execution_count += 1
        cell_stdin = CellStdin(stdin_fd) if stdin_fd is not None else None
        filename = f"<cell-{self.execution_count}>"
        saved_env = {key: os.environ.get(key) for key in env}
        os.environ.update(env)
        if signal.getsignal(signal.SIGINT) != self.guard.handler:
            signal.signal(signal.SIGINT, self.guard.handler)  # user code replaced it
        error = None
        try:
            self.guard.arm()
            try:
                self._execute(code, filename)
            except BaseException as e:  # SystemExit and KeyboardInterrupt too: the kernel survives
                error = e
            self.show_figures()  # after errors too, like matplotlib-inline
        except BaseException as e:  # a figure failed to render, or a second interrupt
            if error is None:
                error = e
        finally:
            self.guard.armed = False
            if cell_stdin is not None:
                cell_stdin.restore()
        for key, value in saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if error is None:
            status = "ok"
        else:
            status = "interrupted" if isinstance(error, KeyboardInterrupt) else "error"
            self.channel.send(error_event(error))
        flush_std_streams()
        self.channel.send({"type": "end", "id": request_id, "status": status,
                           "execution_count": self.execution_count})

    def _execute(self, code, filename):
        lines = code.split("\n")
        linecache.cache[filename] = (len(code), None, [line + "\n" for line in lines], filename)
        value = self.evaluate(code, filename)
        if value is not None:
            self.namespace["_"] = value
            self.display(value, main=True)

    def evaluate(self, code, filename=None, line_offset=0):
        """Runs code (IPython syntax too) in the namespace and returns the value of
        its trailing expression: None without one or if the code ends with ";"
        (IPython's "last_expr"). `line_offset`: lines of the cell before `code`."""
        filename = filename or f"<cell-{self.execution_count}>"
        tree, code = parse_cell(code, filename)
        last = None
        if tree.body and isinstance(tree.body[-1], ast.Expr) and \
                not ends_with_semicolon(code.split("\n"), tree.body[-1]):
            last = ast.Expression(tree.body.pop().value)
        for node in (tree, last):
            if node is not None and line_offset:
                ast.increment_lineno(node, line_offset)
        if tree.body:
            self._run(compile(tree, filename, "exec", flags=COMPILE_FLAGS, dont_inherit=True))
        if last is None:
            return None
        return self._run(compile(last, filename, "eval", flags=COMPILE_FLAGS, dont_inherit=True))

    def _run(self, code):
        value = eval(code, self.namespace)
        if code.co_flags & CO_COROUTINE:  # the cell used top-level await
            value = self._await(value)
        return value

    def _await(self, coroutine):
        import asyncio
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)  # asyncio.run() in an earlier cell unsets it
        task = self._loop.create_task(coroutine)
        try:
            return self._loop.run_until_complete(task)
        except BaseException:
            task.cancel()  # interrupted while pending: do not let it resume in a later cell
            raise

    # ---- rich output ----------------------------------------------------

    def display(self, value, main=False, raw=False):
        """Sends `value` as a result; raw: `value` is a MIME bundle already."""
        if self._display_sink is not None and not main:
            self._display_sink(value)
            return
        bundle = dict(value) if raw and isinstance(value, dict) else mime_bundle(value)
        self.channel.send(result_event(bundle, main))

    @contextlib.contextmanager
    def capturing_display(self, sink):
        """Displayed values go to sink(value) instead of the client (%%capture)."""
        saved, self._display_sink = self._display_sink, sink
        try:
            yield
        finally:
            self._display_sink = saved

    def show_figures(self):
        """Sends every open matplotlib figure as a PNG result, then closes them."""
        plt = sys.modules.get("matplotlib.pyplot")
        if plt is None:
            return
        for number in plt.get_fignums():
            figure = plt.figure(number)
            self.display(figure)
        plt.close("all")


def parse_cell(code, filename):
    """(tree, source): plain Python as is; otherwise the cell after IPython's
    input transformations (magics, `!`, common indentation), if IPython is there."""
    try:
        return ast.parse(code, filename), code
    except SyntaxError:
        transformed = runner_module("python_ipython").transform(code)
        if transformed is None or transformed.rstrip("\n") == code.rstrip("\n"):
            raise
    return ast.parse(transformed, filename), transformed


def runner_module(name):
    """A module of the runner directory (off sys.path for user code), imported once."""
    module = sys.modules.get(name)
    if module is None:
        sys.path.insert(0, RUNNER_DIR)
        try:
            import importlib
            module = importlib.import_module(name)
        finally:
            sys.path.remove(RUNNER_DIR)
    return module


def ends_with_semicolon(lines, node):
    # end_col_offset counts UTF-8 bytes.
    rest = lines[node.end_lineno - 1].encode()[node.end_col_offset:]
    return rest.lstrip().startswith(b";")


def mime_bundle(value):
    """Like IPython's display formatter: MIME type -> data for `value`."""
    bundle = {}
    figure_module = sys.modules.get("matplotlib.figure")
    if figure_module is not None and isinstance(value, figure_module.Figure):
        png = io.BytesIO()
        value.savefig(png, format="png", bbox_inches="tight")
        bundle["image/png"] = png.getvalue()
        try:
            chart = runner_module("python_charts").figure_chart(value)
        except Exception:  # a chart E2B's shapes cannot describe: the PNG alone
            chart = None
        if chart:
            bundle["e2b/chart"] = chart
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(value, pandas.DataFrame) and value.size <= MAX_DATA_CELLS:
        try:
            bundle["e2b/data"] = {str(k): v for k, v in value.to_dict(orient="list").items()}
        except Exception:
            pass
    if not isinstance(value, type):  # classes have the methods but cannot call them
        mimebundle = getattr(value, "_repr_mimebundle_", None)
        if callable(mimebundle):
            try:
                data = mimebundle()
                if isinstance(data, tuple):  # (data, metadata)
                    data = data[0]
                if isinstance(data, dict):
                    bundle.update(data)
            except Exception:
                pass
        for method_name, mime in REPR_METHODS:
            method = getattr(value, method_name, None)
            if mime in bundle or not callable(method):
                continue
            try:
                data = method()
            except Exception:
                continue  # a broken rich repr only loses that format, as in IPython
            if isinstance(data, tuple):
                data = data[0]
            if data is not None:
                bundle[mime] = data
    if "text/plain" not in bundle:
        bundle["text/plain"] = repr(value)
    return bundle


def result_event(bundle, main):
    event = {"type": "result"}
    extra = {}
    for mime, data in bundle.items():
        if isinstance(data, (bytes, bytearray)):
            import base64
            data = base64.b64encode(data).decode("ascii")
        field = RESULT_FIELDS.get(mime)
        try:
            if field is None:
                extra[mime] = jsonable(data)
            elif field in JSON_FIELDS:
                event[field] = jsonable(data)
            else:
                event[field] = data if isinstance(data, str) else str(data)
        except RecursionError:
            pass  # a self-referencing structure only loses that format
    text = event.get("text")
    # E2B strips the quotes of a string's repr: 'hi' -> hi.
    if text and len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        event["text"] = text[1:-1]
    event["extra"] = extra
    event["is_main_result"] = main
    return event


def jsonable(value):
    """Converts user data (numpy scalars, NaN, timestamps...) to plain JSON values."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    for method_name in ("tolist", "isoformat"):  # numpy scalars and arrays; datetimes
        method = getattr(value, method_name, None)
        if callable(method):
            try:
                return jsonable(method())
            except Exception:
                break
    return str(value)


def error_event(error):
    try:
        value = str(error)
    except Exception:
        value = f"<unprintable {type(error).__name__} object>"
    import traceback
    report = traceback.TracebackException.from_exception(error)
    strip_runner_frames(report, set())
    # A misused magic is reported as IPython does: its message alone.
    text = f"UsageError: {value}" if type(error).__name__ == "UsageError" else "".join(report.format())
    return {"type": "error", "name": type(error).__name__, "value": value[:MAX_ERROR_TEXT],
            "traceback": text[-MAX_ERROR_TEXT:]}


def strip_runner_frames(report, seen):
    """Keeps the frames from the first cell frame on, minus the runner's own.

    Before the first cell frame there is only runner and asyncio machinery; an
    error without any cell frame (a SyntaxError) keeps no frames at all.
    """
    if report is None or id(report) in seen:
        return
    seen.add(id(report))
    frames = list(report.stack)
    first = next((i for i, f in enumerate(frames) if f.filename.startswith("<cell-")), len(frames))
    import traceback
    report.stack = traceback.StackSummary.from_list(
        [f for f in frames[first:] if os.path.dirname(f.filename) != RUNNER_DIR])
    strip_runner_frames(report.__cause__, seen)
    strip_runner_frames(report.__context__, seen)
    for member in getattr(report, "exceptions", None) or ():  # exception groups
        strip_runner_frames(member, seen)


def flush_std_streams():
    """Flushes whatever sys.stdout/err are now, and the raw fd 1/2 wrappers."""
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except Exception:
            pass


def shutdown():
    flush_std_streams()
    os._exit(0)  # not sys.exit: user threads must not keep the kernel alive


def main():
    guard = SigintGuard()
    signal.signal(signal.SIGINT, guard.handler)
    runner_protocol.prepare_fds()
    os.environ.setdefault("MPLBACKEND", "Agg")
    # The working directory is the context's: the sandbox starts the runner in it.
    channel = Channel(EVENT_FD, guard)
    sys.stdout = OutStream(channel, "stdout", 1)
    sys.stderr = OutStream(channel, "stderr", 2)
    kernel = Kernel(channel, guard)

    def display(*values, raw=False, **options):
        """IPython's display(): shows each value as a (non-main) result; raw=True
        takes MIME bundles (dicts). Other options (display_id, metadata...) are ignored."""
        for value in values:
            kernel.display(value, raw=raw)

    def publish_display_data(data, metadata=None, source=None, **options):
        kernel.display(data, raw=True)

    def patch_ipython_display(module):  # IPython.core.display_functions
        module.display = display
        module.publish_display_data = publish_display_data
        module.update_display = lambda value, **options: display(value, raw=options.get("raw", False))
        module.clear_output = lambda wait=False: None

    def patch_getipython(module):  # IPython.core.getipython
        module.get_ipython = kernel.shell

    def patch_pyplot(module):
        def show(*args, **kwargs):
            kernel.show_figures()

        module.show = show  # a plain function: matplotlib sets attributes on it

    def patch_pil(module):  # PIL.Image: as in E2B, show() and save(path) display the image
        image_class = module.Image
        save = image_class.save

        def save_and_display(self, fp, format=None, **params):
            result = save(self, fp, format, **params)
            if isinstance(fp, (str, os.PathLike)):
                kernel.display(self)
            return result

        def show(self, title=None):
            kernel.display(self)

        image_class.save = save_and_display
        image_class.show = show

    import builtins
    builtins.display = display
    builtins.get_ipython = kernel.shell
    sys.meta_path.insert(0, PatchOnImport({
        "matplotlib.pyplot": patch_pyplot,
        "IPython.core.display_functions": patch_ipython_display,
        "IPython.core.getipython": patch_getipython,
        "PIL.Image": patch_pil,
    }))
    version = "%d.%d.%d" % sys.version_info[:3]
    channel.send({"type": "ready", "language": "python", "version": version, "pid": os.getpid()})
    for payload in read_requests(REQUEST_FD):
        if payload is None:
            kernel.protocol_error(f"request frame larger than {MAX_FRAME >> 20} MiB", "")
        else:
            kernel.handle(payload)
    shutdown()


if __name__ == "__main__":
    main()
