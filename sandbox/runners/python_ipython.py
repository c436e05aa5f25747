"""IPython's cell syntax for the Python kernel (see PROTOCOL.md, "Python").

Loaded on first need only (a cell that plain Python cannot parse, or a call of
get_ipython()), so a kernel start and a plain cell pay nothing for it:
- transform(): IPython's own input transformations (Debian's python3-ipython,
  `IPython.core.inputtransformer2`, loaded from its file without the IPython
  package, whose import costs about half a second): common indentation removed,
  `!cmd`, `x = !cmd`, `%magic`, `%%magic`, `obj?`, pasted prompts.
- Shell: what `get_ipython()` returns: system/getoutput, the common line and
  cell magics, run_line_magic/run_cell_magic (the calls the transformed code makes).
"""

import os
import subprocess
import sys
import threading
import time

_transformer = None


def transform(code):
    """The cell as plain Python after IPython's transformations; None without IPython."""
    global _transformer
    if _transformer is None:
        _transformer = _load_transformer() or False
    if not _transformer:
        return None
    return _transformer.transform_cell(code)


def _load_transformer():
    import importlib.util
    try:
        package = importlib.util.find_spec("IPython")  # finds it without importing it
    except (ImportError, ValueError):
        return None
    if package is None or not package.submodule_search_locations:
        return None
    path = os.path.join(package.submodule_search_locations[0], "core", "inputtransformer2.py")
    spec = importlib.util.spec_from_file_location("_codeexec_inputtransformer2", path)
    if spec is None:
        return None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # standard library imports only
    return module.TransformerManager()


class UsageError(Exception):
    """A magic used wrongly or unknown (IPython's name for it)."""


class SList(list):
    """What `x = !cmd` gives: the output's lines, with IPython's .s/.n/.l/.p views."""

    @property
    def l(self):  # noqa: E743 (IPython's name)
        return list(self)

    @property
    def s(self):
        return " ".join(self)

    @property
    def n(self):
        return "\n".join(self)

    @property
    def p(self):
        from pathlib import Path
        return [Path(line) for line in self]

    def grep(self, pattern):
        import re
        return SList(line for line in self if re.search(pattern, line))


class CapturedIO:
    """`%%capture var`: the cell's stdout, stderr and displayed outputs."""

    def __init__(self, stdout, stderr, outputs, display):
        self.stdout = stdout
        self.stderr = stderr
        self.outputs = outputs
        self._display = display

    def __str__(self):
        return self.stdout

    def show(self):
        sys.stdout.write(self.stdout)
        sys.stderr.write(self.stderr)
        for value in self.outputs:
            self._display(value)

    __call__ = show


class RawBundle:
    """A displayed MIME bundle (`%%html`, display(raw=True)): shown as its data."""

    def __init__(self, bundle):
        self.bundle = bundle

    def _repr_mimebundle_(self, include=None, exclude=None):
        return self.bundle


class Events:
    """get_ipython().events: matplotlib registers a post_execute hook here; the
    kernel draws and shows figures at the end of a cell anyway."""

    def register(self, event, function):
        pass

    def unregister(self, event, function):
        pass


def expand(command, namespace):
    """IPython's variable expansion of `!` commands: `{expr}` and `$name` become
    their values, `$$` a `$`; if anything fails the command stays as written."""
    out = []
    i = 0
    try:
        while i < len(command):
            char = command[i]
            if char == "$" and command[i + 1:i + 2] == "$":
                out.append("$")
                i += 2
            elif char == "$" and (command[i + 1:i + 2].isalpha() or command[i + 1:i + 2] == "_"):
                end = i + 1
                while end < len(command) and (command[end].isalnum() or command[end] in "_."):
                    end += 1
                out.append(str(eval(command[i + 1:end].rstrip("."), namespace)))
                out.append("." if command[i + 1:end].endswith(".") else "")
                i = end
            elif char == "{" and command[i + 1:i + 2] == "{":
                out.append("{")
                i += 2
            elif char == "}" and command[i + 1:i + 2] == "}":
                out.append("}")
                i += 2
            elif char == "{":
                depth, end = 1, i + 1
                while depth:
                    depth += {"{": 1, "}": -1}.get(command[end], 0)
                    end += 1
                out.append(str(eval(command[i + 1:end - 1], namespace)))
                i = end
            else:
                out.append(char)
                i += 1
    except Exception:
        return command
    return "".join(out)


def _pump(pipe, stream):
    """Copies a child's output to sys.stdout/sys.stderr (events) as it comes."""
    import codecs
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    fd = pipe.fileno()
    while True:
        chunk = os.read(fd, 65536)
        text = decoder.decode(chunk, final=not chunk)
        if text:
            stream.write(text)
        if not chunk:
            return


def _shell():
    return "/bin/bash" if os.path.exists("/bin/bash") else "/bin/sh"


def run_process(argv, stdin_text=None):
    """Runs a command with its output streamed as the cell's; returns its exit
    status. An interrupt (SIGINT to the kernel) interrupts the command, then kills it."""
    import signal
    process = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin_text is not None else None,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    pumps = [threading.Thread(target=_pump, args=(process.stdout, sys.stdout), daemon=True),
             threading.Thread(target=_pump, args=(process.stderr, sys.stderr), daemon=True)]
    for pump in pumps:
        pump.start()
    try:
        if stdin_text is not None:
            try:
                process.stdin.write(stdin_text.encode())
                process.stdin.close()
            except BrokenPipeError:
                pass
        process.wait()
    except KeyboardInterrupt:
        for sig, grace in ((signal.SIGINT, 0.5), (signal.SIGKILL, None)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                process.wait(grace)
                break
            except subprocess.TimeoutExpired:
                continue
        raise
    finally:
        for pump in pumps:
            pump.join()
        process.stdout.close()
        process.stderr.close()
    return process.returncode


def _format_time(seconds):
    for unit, scale in (("s", 1.0), ("ms", 1e3), ("µs", 1e6), ("ns", 1e9)):
        if seconds >= 1.0 / scale or unit == "ns":
            return f"{seconds * scale:.3g} {unit}"


def _split_options(line, flags):
    """`-a -n 5 rest` -> ({'-a': True, '-n': '5'}, 'rest'); flags: option -> takes a value."""
    import shlex
    options = {}
    words = shlex.split(line)
    while words and words[0] in flags:
        word = words.pop(0)
        options[word] = words.pop(0) if flags[word] and words else True
    return options, " ".join(shlex.quote(w) if " " in w else w for w in words)


class Shell:
    """get_ipython() of this kernel: the subset of IPython's InteractiveShell that
    transformed cells call, and the common magics. The kernel provides
    evaluate(code) (runs code, returns its last expression's value), display(value)
    and the namespace."""

    ALIASES = {"ls": "ls", "ll": "ls -F -l", "cat": "cat", "cp": "cp", "mkdir": "mkdir",
               "mv": "mv", "rm": "rm", "rmdir": "rmdir", "clear": "clear"}

    def __init__(self, kernel):
        self.kernel = kernel
        self.user_ns = kernel.namespace
        self.events = Events()
        self._previous_dir = None

    # ---- what transformed cells call -------------------------------------

    def system(self, command):
        """`!command`: runs it in a shell, its output streamed; `_exit_code` its status."""
        status = run_process([_shell(), "-c", expand(command, self.user_ns)])
        self.user_ns["_exit_code"] = status

    def getoutput(self, command, split=True, depth=0):
        """`x = !command`: its output (stdout and stderr) as a list of lines."""
        result = subprocess.run([_shell(), "-c", expand(command, self.user_ns)],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.user_ns["_exit_code"] = result.returncode
        text = result.stdout.decode(errors="replace")
        return SList(text.splitlines()) if split else text

    def run_line_magic(self, magic_name, line, _stack_depth=1):
        method = getattr(self, "line_" + magic_name, None)
        if method is None:
            if magic_name in self.ALIASES:
                return self.system(f"{self.ALIASES[magic_name]} {line}".strip())
            raise UsageError(f"Line magic function `%{magic_name}` not found.")
        return method(line)

    def run_cell_magic(self, magic_name, line, cell):
        method = getattr(self, "cell_" + magic_name, None)
        if method is None:
            raise UsageError(f"Cell magic `%%{magic_name}` not found.")
        return method(line, cell)

    def ev(self, expression):
        return eval(expression, self.user_ns)

    def ex(self, statement):
        exec(statement, self.user_ns)

    def enable_gui(self, gui=None):
        pass

    def enable_matplotlib(self, gui=None):
        return None, None

    def __repr__(self):
        return "<codeexec IPython-compatible shell>"

    # ---- line magics -----------------------------------------------------

    def line_pwd(self, line):
        return os.getcwd()

    def line_cd(self, line):
        options, target = _split_options(line, {"-q": False})
        if not target:
            target = os.path.expanduser("~")
        elif target == "-":
            if self._previous_dir is None:
                raise UsageError("cd -: no previous directory")
            target = self._previous_dir
        previous = os.getcwd()
        try:
            os.chdir(os.path.expanduser(target.strip("'\"")))
        except OSError as e:
            raise UsageError(f"cd: {e.strerror}: {target}") from None
        self._previous_dir = previous
        if "-q" not in options:
            print(os.getcwd())

    def line_env(self, line):
        line = line.strip()
        if not line:
            return dict(os.environ)
        if "=" in line or " " in line:
            name, _, value = line.partition("=") if "=" in line else line.partition(" ")
            name, value = name.strip(), expand(value.strip(), self.user_ns)
            os.environ[name] = value
            print(f"env: {name}={value}")
            return None
        if line not in os.environ:
            raise UsageError(f"Environment does not have key: {line}")
        return os.environ[line]

    line_set_env = line_env

    def line_time(self, line):
        return self._time(line)

    def line_timeit(self, line):
        return self.cell_timeit(line, None)

    def line_matplotlib(self, line):
        """Figures are always shown inline (as PNG results with charts)."""

    def line_load_ext(self, line):
        """Extensions need IPython itself; autoreload and the like are no-ops here."""
        name = line.strip()
        if name in ("autoreload", "storemagic", ""):
            return
        import importlib
        module = importlib.import_module(name)
        hook = getattr(module, "load_ipython_extension", None)
        if callable(hook):
            hook(self)

    def line_reload_ext(self, line):
        pass

    def line_unload_ext(self, line):
        pass

    def line_autoreload(self, line):
        pass

    def line_aimport(self, line):
        pass

    def line_config(self, line):
        pass

    def line_precision(self, line):
        pass

    def line_xmode(self, line):
        pass

    def line_pip(self, line):
        run_process([sys.executable, "-m", "pip", *line.split()])
        print("Note: you may need to restart the kernel to use updated packages.")

    def line_sx(self, line):
        return self.getoutput(line)

    line_system = line_sx

    def line_who(self, line):
        names = sorted(name for name, value in self.user_ns.items()
                       if not name.startswith("_") and not isinstance(value, type(os)))
        print("\t".join(names) if names else "Interactive namespace is empty.")

    def line_reset(self, line):
        for name in [n for n in self.user_ns if not n.startswith("__")]:
            del self.user_ns[name]

    def line_run(self, line):
        import runpy
        import shlex
        words = shlex.split(line)
        if not words:
            raise UsageError("%run: give a file to run")
        saved_argv = sys.argv
        sys.argv = words
        try:
            self.user_ns.update(runpy.run_path(words[0], run_name="__main__"))
        finally:
            sys.argv = saved_argv

    def line_pinfo(self, line):
        import inspect
        value = eval(line, self.user_ns)
        lines = [f"Type:      {type(value).__name__}", f"String form: {value!r}"[:200]]
        try:
            lines.append(f"Signature: {line}{inspect.signature(value)}")
        except (TypeError, ValueError):
            pass
        lines.append(f"Docstring: {inspect.getdoc(value) or '<no docstring>'}")
        print("\n".join(lines))

    line_pinfo2 = line_pinfo

    def line_lsmagic(self, line):
        line_magics = sorted(n[5:] for n in dir(self) if n.startswith("line_"))
        cell_magics = sorted(n[5:] for n in dir(self) if n.startswith("cell_"))
        print("Available line magics:\n" + "  ".join("%" + m for m in line_magics + sorted(self.ALIASES)))
        print("\nAvailable cell magics:\n" + "  ".join("%%" + m for m in cell_magics))

    # ---- cell magics -----------------------------------------------------

    def _script(self, argv, line, cell):
        status = run_process(argv, stdin_text=cell)
        if status != 0 and "--no-raise-error" not in line.split():
            raise subprocess.CalledProcessError(status, argv[0])

    def cell_bash(self, line, cell):
        self._script(["/bin/bash"], line, cell)

    def cell_sh(self, line, cell):
        self._script(["/bin/sh"], line, cell)

    def cell_script(self, line, cell):
        import shlex
        words = shlex.split(line)
        if not words:
            raise UsageError("%%script: give the program to run")
        self._script(words, "", cell)

    def cell_python(self, line, cell):
        self._script([sys.executable], line, cell)

    cell_python3 = cell_python

    def cell_writefile(self, line, cell):
        options, name = _split_options(line, {"-a": False, "--append": False})
        if not name:
            raise UsageError("%%writefile: give the file's name")
        path = os.path.expanduser(name.strip("'\""))
        append = "-a" in options or "--append" in options
        if append:
            print(f"Appending to {name}")
        else:
            print(f"Overwriting {name}" if os.path.exists(path) else f"Writing {name}")
        with open(path, "a" if append else "w", encoding="utf-8") as f:
            f.write(cell)

    def cell_capture(self, line, cell):
        import io
        options, name = _split_options(line, {"--no-stdout": False, "--no-stderr": False,
                                              "--no-display": False})
        stdout, stderr, outputs = io.StringIO(), io.StringIO(), []
        saved = sys.stdout, sys.stderr
        if "--no-stdout" not in options:
            sys.stdout = stdout
        if "--no-stderr" not in options:
            sys.stderr = stderr
        try:
            keep = (lambda value: None) if "--no-display" in options else outputs.append
            with self.kernel.capturing_display(keep):
                value = self.kernel.evaluate(cell, line_offset=1)
                if value is not None and "--no-display" not in options:
                    outputs.append(value)
        finally:
            sys.stdout, sys.stderr = saved
        if name:
            self.user_ns[name] = CapturedIO(stdout.getvalue(), stderr.getvalue(), outputs, self.kernel.display)

    def cell_time(self, line, cell):
        return self._time(cell, line_offset=1)

    def _time(self, code, line_offset=0):
        import resource
        started, cpu = time.perf_counter(), resource.getrusage(resource.RUSAGE_SELF)
        try:
            return self.kernel.evaluate(code, line_offset=line_offset)
        finally:
            wall, now = time.perf_counter() - started, resource.getrusage(resource.RUSAGE_SELF)
            user, system = now.ru_utime - cpu.ru_utime, now.ru_stime - cpu.ru_stime
            print(f"CPU times: user {_format_time(user)}, sys: {_format_time(system)}, "
                  f"total: {_format_time(user + system)}\nWall time: {_format_time(wall)}")

    def cell_timeit(self, line, cell):
        import timeit
        options, statement = _split_options(line, {"-n": True, "-r": True, "-q": False, "-o": False})
        setup = "pass"
        if cell is not None:
            setup, statement = statement or "pass", cell
        timer = timeit.Timer(statement, setup, globals=self.user_ns)
        number = int(options.get("-n", 0))
        if not number:
            number = timer.autorange()[0]
        repeat = int(options.get("-r", 7))
        runs = [t / number for t in timer.repeat(repeat, number)]
        mean = sum(runs) / len(runs)
        spread = (sum((r - mean) ** 2 for r in runs) / len(runs)) ** 0.5
        if "-q" not in options:
            print(f"{_format_time(mean)} ± {_format_time(spread)} per loop (mean ± std. dev. of "
                  f"{repeat} run{'s' if repeat != 1 else ''}, {number} loop{'s' if number != 1 else ''} each)")
        return runs if "-o" in options else None

    def _display_as(self, mime, kind, cell):
        self.kernel.display(RawBundle({mime: cell, "text/plain": f"<IPython.core.display.{kind} object>"}))

    def cell_html(self, line, cell):
        self._display_as("text/html", "HTML", cell)

    def cell_javascript(self, line, cell):
        self._display_as("application/javascript", "Javascript", cell)

    cell_js = cell_javascript

    def cell_markdown(self, line, cell):
        self._display_as("text/markdown", "Markdown", cell)

    def cell_latex(self, line, cell):
        self._display_as("text/latex", "Latex", cell)

    def cell_svg(self, line, cell):
        self._display_as("image/svg+xml", "SVG", cell)
