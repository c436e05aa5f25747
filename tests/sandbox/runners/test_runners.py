"""Runner protocol tests: each runner runs directly on the host (no sandbox).

Run with `/usr/bin/python3 -m pytest tests/sandbox/runners`.
"""

import base64
import importlib.util
import time

import pytest


LANGUAGES = ["python", "javascript", "bash"]
TRIVIAL = {"python": "1", "javascript": "1", "bash": "true"}


def outputs(execution):
    """(type, text) of the stdout/stderr events, in order."""
    return [(e["type"], e["text"]) for e in execution.events if e["type"] in ("stdout", "stderr")]


# ---- all runners ------------------------------------------------------------

@pytest.mark.parametrize("language", LANGUAGES)
def test_ready(start, language):
    runner = start(language)
    assert runner.ready["language"] == language
    assert runner.ready["version"]
    assert runner.ready["pid"] == runner.proc.pid


PRINT_HI = {"python": "print('hi')", "javascript": "console.log('hi')"}


@pytest.mark.parametrize("language", ["python", "javascript"])
def test_print_is_a_stdout_event(start, language):
    execution = start(language).run(PRINT_HI[language])
    assert [e["type"] for e in execution.events] == ["stdout", "end"]
    assert execution.stdout == "hi\n"
    assert execution.end["status"] == "ok"
    assert execution.end["execution_count"] == 1


def test_bash_output_goes_to_the_raw_fds(start):
    runner = start("bash")
    execution = runner.run("echo hi; echo oops >&2")
    assert [e["type"] for e in execution.events] == ["end"]
    runner.raw_stdout.wait_for("hi\n")
    runner.raw_stderr.wait_for("oops\n")


STATE = {
    "python": ("x = 41", "x + 1", "42"),
    "javascript": ("var x = 41", "x + 1", "42"),
    "bash": ("x=41", "echo $((x + 1))", None),
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_state_persists_and_count_increments(start, language):
    runner = start(language)
    define, use, expected = STATE[language]
    assert runner.run(define).status == "ok"
    execution = runner.run(use)
    assert execution.end["execution_count"] == 2
    if expected is None:
        runner.raw_stdout.wait_for("42\n")
    else:
        assert execution.main_result["text"] == expected


LOOPS = {
    "python": ["print('started', flush=True)\nwhile True: n += 1",
               "print('started', flush=True)\nimport time\ntime.sleep(100)",
               "print('started', flush=True)\nwhile True: print(n, end='')"],
    # 'started' from a timer: the SIGINT must find the cell awaiting (one that
    # arrives just as the synchronous part ends can be lost, see PROTOCOL.md)
    "javascript": ["console.log('started'); while (true) { n++ }",
                   "await new Promise(() => setTimeout(() => console.log('started'), 1))",
                   "console.log('started'); while (true) process.stdout.write('.')"],
    "bash": ["echo started; sleep 100",
             "echo started; while :; do n=$((n + 1)); done",
             # SIGINT must unwind the function calls too, not just the innermost one
             "f() { sleep 100; }; g() { f; echo after-f; }; echo started; g; echo after-g"],
}
DEFINE = {"python": "n = 0; s = 'kept'", "javascript": "var n = 0, s = 'kept'", "bash": "n=0; s=kept"}
INTERRUPT_ERROR = {
    "python": ("KeyboardInterrupt", ""),
    "javascript": ("Error", "Script execution was interrupted by `SIGINT`"),
    "bash": ("ExitError", "exit status 130"),
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_sigint_interrupts_the_cell_and_state_survives(start, language):
    runner = start(language)
    runner.run(DEFINE[language])
    for loop in LOOPS[language]:
        request_id = runner.start(loop)
        if language == "bash":
            runner.raw_stdout.wait_for("started")
            if "sleep" in loop:  # bash misses a SIGINT while it forks (PROTOCOL.md)
                runner.wait_for_descendant("sleep")
        else:
            runner.wait_event(lambda e: e.get("text") == "started\n")
            if "sleep" in loop:  # see PROTOCOL.md: a SIGINT just before the call would wait for it
                runner.wait_until_blocked_in("hrtimer_nanosleep")
        runner.interrupt()
        execution = runner.collect(request_id)
        assert execution.status == "interrupted"
        assert (execution.error["name"], execution.error["value"]) == INTERRUPT_ERROR[language]
        assert "after" not in runner.raw_stdout.text()
        runner.raw_stdout.clear()
    # state and output both survive the interrupts
    execution = runner.run({"python": "print(s)", "javascript": "console.log(s)", "bash": "echo $s"}[language])
    assert execution.status == "ok"
    if language == "bash":
        runner.raw_stdout.wait_for("kept\n")
    else:
        assert execution.stdout == "kept\n"


@pytest.mark.parametrize("language", LANGUAGES)
def test_sigint_between_cells_is_ignored(start, language):
    runner = start(language)
    runner.interrupt_idle()
    assert runner.run(TRIVIAL[language]).status == "ok"
    assert runner.proc.poll() is None


@pytest.mark.parametrize("language", LANGUAGES)
def test_malformed_requests_get_an_error_and_the_runner_goes_on(start, language):
    runner = start(language)
    runner.send(b"{not json")
    execution = runner.collect("")
    assert execution.error["name"] == "ProtocolError"
    assert execution.status == "error"
    runner.send({"op": "exec", "id": "bad", "code": 42})
    assert runner.collect("bad").error["name"] == "ProtocolError"
    runner.send({"op": "frobnicate", "id": "op"})
    assert runner.collect("op").error["name"] == "ProtocolError"
    execution = runner.run(TRIVIAL[language])
    assert execution.status == "ok"
    assert execution.end["execution_count"] == 1  # malformed requests are not cells


@pytest.mark.parametrize("language", LANGUAGES)
def test_oversized_frame_is_skipped(start, language):
    runner = start(language)
    size = 64 * 1024 * 1024 + 1
    runner.send_bytes(size.to_bytes(4, "big") + b"\0" * size)
    assert runner.collect("").error["name"] == "ProtocolError"
    runner.send({"op": "exec", "id": "after", "code": TRIVIAL[language]})
    assert runner.collect("after").status == "ok"


@pytest.mark.parametrize("language", LANGUAGES)
def test_eof_on_requests_exits_0(start, language):
    runner = start(language)
    runner.run(TRIVIAL[language])
    runner.close_requests()
    assert runner.wait_exit() == 0


@pytest.mark.parametrize("language", LANGUAGES)
def test_shutdown_exits_0(start, language):
    runner = start(language)
    runner.send({"op": "shutdown"})
    assert runner.wait_exit() == 0


ENV = {
    "python": "import os\nprint(os.environ.get('CELL_VAR'))",
    "javascript": "console.log(String(process.env.CELL_VAR))",
    "bash": "echo \"[${CELL_VAR-unset}]\"",
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_cell_env_is_set_for_one_cell(start, language):
    runner = start(language)
    with_env = runner.run(ENV[language], env={"CELL_VAR": "a b"})
    without = runner.run(ENV[language])
    if language == "bash":
        runner.raw_stdout.wait_for("[a b]\n[unset]\n")
    else:
        assert with_env.stdout == "a b\n"
        assert without.stdout in ("None\n", "undefined\n")


# ---- Python and JavaScript ------------------------------------------------------

EXPRESSIONS = {
    "python": [("1 + 1", "2"), ("'abc'", "abc"), ("x = 5\nx * 2", "10")],
    "javascript": [("1 + 1", "2"), ("'abc'", "abc"), ("var x = 5\nx * 2", "10"), ("Promise.resolve(3)", "3")],
}


@pytest.mark.parametrize("language", ["python", "javascript"])
def test_last_expression_is_the_main_result(start, language):
    runner = start(language)
    for code, text in EXPRESSIONS[language]:
        execution = runner.run(code)
        assert [e["type"] for e in execution.events] == ["result", "end"]
        assert execution.main_result["text"] == text
        assert execution.main_result["extra"] == {}
    assert [e["type"] for e in runner.run("None" if language == "python" else "undefined").events] == ["end"]


INTERLEAVED = {
    "python": "import sys\nfor i in range(3):\n    print(f'o{i}')\n    print(f'e{i}', file=sys.stderr)\n"
              "sys.stdout.write('partial')\nsys.stderr.write('err')\nsys.stdout.write('!')",
    "javascript": "for (let i = 0; i < 3; i++) { console.log(`o${i}`); console.error(`e${i}`) }\n"
                  "process.stdout.write('partial'); process.stderr.write('err'); process.stdout.write('!'); undefined",
}


@pytest.mark.parametrize("language", ["python", "javascript"])
def test_stdout_and_stderr_keep_their_order(start, language):
    execution = start(language).run(INTERLEAVED[language])
    expected = []
    for i in range(3):
        expected += [("stdout", f"o{i}\n"), ("stderr", f"e{i}\n")]
    expected += [("stdout", "partial"), ("stderr", "err"), ("stdout", "!")]
    assert outputs(execution) == expected
    assert execution.events[-1]["type"] == "end"


PARTIAL_LINE = {
    "python": "import sys, time\nsys.stdout.write('tick')\ntime.sleep(0.5)\nprint('done')",
    "javascript": "process.stdout.write('tick'); await new Promise(r => setTimeout(r, 500)); console.log('done')",
}


@pytest.mark.parametrize("language", ["python", "javascript"])
def test_partial_line_is_sent_while_the_cell_runs(start, language):
    runner = start(language)
    started = time.monotonic()
    request_id = runner.start(PARTIAL_LINE[language])
    first = runner.read_event()
    assert first == {"type": "stdout", "text": "tick"}
    assert time.monotonic() - started < 0.35  # 20 ms flush delay, well before the 500 ms sleep
    assert runner.collect(request_id).stdout == "done\n"


SUBPROCESS = {
    "python": "import subprocess\nsubprocess.run(['echo', 'from-child'])\nimport os\nos.write(1, b'raw\\n');",
    "javascript": "require('child_process').execSync('echo from-child', {stdio: 'inherit'}); "
                  "require('fs').writeSync(1, 'raw\\n'); undefined",
}


@pytest.mark.parametrize("language", ["python", "javascript"])
def test_subprocess_output_arrives_on_fd_1(start, language):
    runner = start(language)
    execution = runner.run(SUBPROCESS[language])
    assert execution.status == "ok"
    assert execution.stdout == ""
    runner.raw_stdout.wait_for("from-child\nraw\n")


def test_python_error_has_a_traceback_without_runner_frames(start):
    runner = start("python")
    execution = runner.run("def f():\n    return y\nf()")
    error = execution.error
    assert (error["name"], error["value"]) == ("NameError", "name 'y' is not defined")
    assert 'File "<cell-1>", line 3, in <module>' in error["traceback"]
    assert "return y" in error["traceback"]  # source lines come from linecache
    assert "python_runner" not in error["traceback"]
    assert execution.status == "error"
    syntax = runner.run("1 +").error
    assert syntax["name"] == "SyntaxError"
    assert syntax["traceback"].startswith('  File "<cell-2>", line 1')


def test_javascript_error_has_a_traceback_without_runner_frames(start):
    runner = start("javascript")
    execution = runner.run("function f() { return nope }\nf()")
    error = execution.error
    assert (error["name"], error["value"]) == ("ReferenceError", "nope is not defined")
    assert "at f (cell-1:1:" in error["traceback"]
    assert "node_runner" not in error["traceback"] and "node:vm" not in error["traceback"]
    assert execution.status == "error"
    assert runner.run("throw 'boom'").error["value"] == "'boom'"


def test_python_kernel_survives_system_exit(start):
    runner = start("python")
    execution = runner.run("import sys\nsys.exit(3)")
    assert (execution.error["name"], execution.error["value"]) == ("SystemExit", "3")
    assert runner.run("2").main_result["text"] == "2"


def test_python_top_level_await(start):
    runner = start("python")
    execution = runner.run("import asyncio\nawait asyncio.sleep(0.01)\nv = await asyncio.sleep(0, 'done')\nv")
    assert execution.main_result["text"] == "done"
    assert runner.run("v").main_result["text"] == "done"


def test_python_repl_conveniences(start):
    runner = start("python")
    assert runner.run("6 * 7").status == "ok"
    assert runner.run("_").main_result["text"] == "42"
    assert [e["type"] for e in runner.run("1 + 1;").events] == ["end"]  # ";" hides the value
    execution = runner.run("class A:\n    def _repr_html_(self):\n        return '<b>A</b>'\n"
                           "    def __repr__(self):\n        return 'A()'\nA()")
    assert execution.main_result["html"] == "<b>A</b>"
    assert execution.main_result["text"] == "A()"
    execution = runner.run("display(A(), 'shown')\nNone")
    assert [(r["text"], r["is_main_result"]) for r in execution.results] == [("A()", False), ("shown", False)]


def test_javascript_redeclaration_across_cells(start):
    runner = start("javascript")
    assert runner.run("let a = 1; const b = 2; class C { v() { return 1 } }").status == "ok"
    execution = runner.run("let a = 10; const b = 20; class C { v() { return 2 } }\n[a, b, new C().v()]")
    assert execution.main_result["text"] == "[ 10, 20, 2 ]"
    # block-scoped let stays block-scoped
    assert runner.run("const fs = []; for (let i = 0; i < 3; i++) fs.push(() => i)\n"
                      "fs.map(f => f())").main_result["text"] == "[ 0, 1, 2 ]"


def test_javascript_top_level_await(start):
    runner = start("javascript")
    execution = runner.run("const v = await new Promise(r => setTimeout(() => r(7), 10))\n"
                           "const {w} = await Promise.resolve({w: 8})\nasync function f() { return v + w }\n"
                           "await f()")
    assert execution.main_result["text"] == "15"
    assert runner.run("[v, w, typeof f]").main_result["text"] == "[ 7, 8, 'function' ]"


def test_javascript_console_before_top_level_await_writes_no_stray_error(start):
    runner = start("javascript")
    execution = runner.run("console.log('a')\nawait Promise.resolve(1)\n'done'")
    assert execution.stdout == "a\n"
    assert execution.stderr == "", execution.stderr
    assert execution.main_result["text"] == "done"


def test_javascript_uncaught_async_error_goes_to_stderr(start):
    runner = start("javascript")
    runner.run("setTimeout(() => { throw new Error('later') }, 1); 1")
    events = runner.wait_event(lambda e: e["type"] == "stderr")
    assert events[-1]["text"].startswith("Uncaught Error: later")
    assert runner.run("2").main_result["text"] == "2"


def test_javascript_process_exit_flushes_output_and_exits(start):
    runner = start("javascript")
    runner.start("process.stdout.write('bye'); process.exit(3)")
    assert runner.read_event() == {"type": "stdout", "text": "bye"}
    assert runner.wait_exit() == 3


def test_end_is_the_last_event(start):
    runner = start("python")
    execution = runner.run("import sys\nsys.stdout.write('no newline')")
    assert [e["type"] for e in execution.events] == ["stdout", "result", "end"]
    # nothing of the first cell arrives after its end
    assert runner.run("pass").events == [{"type": "end", "id": "c2", "status": "ok", "execution_count": 2}]


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None,
                    reason="matplotlib not installed (apt-get install python3-matplotlib)")
def test_python_matplotlib_figures_are_png_results(start, tmp_path):
    runner = start("python", env={"MPLCONFIGDIR": str(tmp_path / "mpl")})
    execution = runner.run("import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()\n"
                           "plt.plot([3, 2, 1]);")
    figures = execution.results
    assert len(figures) == 2  # plt.show() displayed the first one
    for figure in figures:
        assert figure["text"] == "<Figure size 640x480 with 1 Axes>"
        assert figure["is_main_result"] is False
        assert base64.b64decode(figure["png"]).startswith(b"\x89PNG\r\n\x1a\n")
    assert runner.run("len(plt.get_fignums())").main_result["text"] == "0"


@pytest.mark.skipif(importlib.util.find_spec("pandas") is None, reason="pandas not installed")
def test_python_dataframe_has_data(start):
    execution = start("python").run("import pandas as pd\npd.DataFrame({'a': [1, None], 'b': ['x', 'y']})")
    result = execution.main_result
    assert result["data"] == {"a": [1.0, None], "b": ["x", "y"]}
    assert "<table" in result["html"]


# ---- bash -------------------------------------------------------------------------

def test_bash_cd_variables_and_functions_persist(start, tmp_path):
    runner = start("bash")
    (tmp_path / "sub").mkdir()
    assert runner.run("cd sub; v=kept; f() { echo \"f:$1\"; }").status == "ok"
    assert runner.run("pwd; echo $v; f 1").status == "ok"
    runner.raw_stdout.wait_for(f"{tmp_path / 'sub'}\nkept\nf:1\n")


def test_bash_nonzero_status_is_an_error(start):
    execution = start("bash").run("false")
    assert execution.error == {"type": "error", "name": "ExitError", "value": "exit status 1", "traceback": ""}
    assert execution.status == "error"


def test_bash_exit_starts_a_new_shell(start):
    runner = start("bash")
    runner.run("v=lost")
    execution = runner.run("exit 3")
    assert execution.status == "error"
    assert "the shell exited (status 3)" in execution.error["value"]
    assert runner.run("echo \"[${v-unset}]\"").status == "ok"
    runner.raw_stdout.wait_for("[unset]\n")


def test_bash_reads_stdin(start):
    runner = start("bash")
    runner.proc.stdin.write(b"typed\n")
    runner.proc.stdin.flush()
    assert runner.run("read line; echo \"got:$line\"").status == "ok"
    runner.raw_stdout.wait_for("got:typed\n")
