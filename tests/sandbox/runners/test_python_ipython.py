"""The Python kernel's IPython cell semantics (PROTOCOL.md, "Python"): input
transformations, shell escapes, magics, display() and IPython.display, PIL."""

import base64
import importlib.util

import pytest

pytestmark = pytest.mark.skipif(importlib.util.find_spec("IPython") is None,
                                reason="IPython not installed (apt-get install python3-ipython)")
PNG = b"\x89PNG\r\n\x1a\n"


def ok(execution):
    assert execution.status == "ok", execution.events
    return execution


def test_plain_cells_do_not_load_ipython_support(start):
    runner = start("python")
    ok(runner.run("x = 1\nx + 1"))
    execution = ok(runner.run("import sys\n[m for m in sys.modules if 'ipython' in m.lower()]"))
    assert execution.main_result["text"] == "[]"


def test_common_indentation_is_removed(start):
    # How a Python cell looks inside a JS/TS template string.
    execution = ok(start("python").run("\n    a = 1\n    if a:\n        print(a)\n    a + 1\n  "))
    assert execution.stdout == "1\n"
    assert execution.main_result["text"] == "2"


def test_shell_escape_streams_output_and_sets_exit_code(start, tmp_path):
    runner = start("python")
    execution = ok(runner.run("!pwd\n!echo out; echo err >&2; exit 3"))
    assert execution.stdout == f"{tmp_path}\nout\n"
    assert execution.stderr == "err\n"
    assert ok(runner.run("_exit_code")).main_result["text"] == "3"


def test_shell_escape_expands_python_values(start, tmp_path):
    execution = ok(start("python").run("n = 5\nname = 'x y'\n!echo {n * 2} $n \"$name\" $$HOME"))
    assert execution.stdout == f"10 5 x y {tmp_path}\n"  # the harness's HOME


def test_getoutput_is_a_list_of_lines(start):
    runner = start("python")
    ok(runner.run("files = !printf 'a\\nb\\n'; echo err >&2"))
    assert ok(runner.run("files, files.s, files.n")).main_result["text"] == \
        "(['a', 'b', 'err'], 'a b err', 'a\\nb\\nerr')"


def test_shell_escape_is_interrupted_and_its_command_killed(start):
    runner = start("python")
    request_id = runner.start("!sleep 30; echo after")
    runner.wait_for_descendant("sleep")
    runner.interrupt()
    execution = runner.collect(request_id)
    assert execution.status == "interrupted"
    assert "after" not in execution.stdout
    assert "sleep" not in runner.descendants().values()


def test_line_magics(start, tmp_path):
    runner = start("python")
    (tmp_path / "sub").mkdir()
    assert ok(runner.run("%cd sub")).stdout == f"{tmp_path}/sub\n"
    assert ok(runner.run("%pwd")).main_result["text"] == f"{tmp_path}/sub"
    assert ok(runner.run("%cd -q ..\nimport os; os.getcwd()")).main_result["text"] == str(tmp_path)
    assert ok(runner.run("%env GREETING=hello")).stdout == "env: GREETING=hello\n"
    assert ok(runner.run("%env GREETING")).main_result["text"] == "hello"
    assert ok(runner.run("os.environ['GREETING']")).main_result["text"] == "hello"
    timed = ok(runner.run("%time sum(range(10))"))
    assert timed.main_result["text"] == "45"
    assert timed.stdout.startswith("CPU times: user ") and "Wall time: " in timed.stdout
    assert "per loop (mean ± std. dev. of 2 runs, 10 loops each)" in \
        ok(runner.run("%timeit -n 10 -r 2 sum(range(10))")).stdout
    for no_op in ("%matplotlib inline", "%load_ext autoreload", "%autoreload 2", "%config X.y = 1"):
        assert ok(runner.run(no_op)).events[:-1] == [], no_op
    assert ok(runner.run("%ls sub")).stdout == ""
    assert ok(runner.run("len?")).stdout.startswith("Type:")


def test_cell_magics(start, tmp_path):
    runner = start("python")
    assert ok(runner.run("%%bash\necho $0 ${BASH_VERSION%%.*}")).stdout.startswith("/bin/bash ")
    assert ok(runner.run("%%sh\necho from sh")).stdout == "from sh\n"
    assert ok(runner.run("%%writefile hello.py\nprint('hi')")).stdout == "Writing hello.py\n"
    assert ok(runner.run("%%writefile hello.py\nprint('hi')")).stdout == "Overwriting hello.py\n"
    assert ok(runner.run("%%writefile -a hello.py\nprint('again')")).stdout == "Appending to hello.py\n"
    assert (tmp_path / "hello.py").read_text() == "print('hi')\nprint('again')\n"
    assert ok(runner.run("%run hello.py")).stdout == "hi\nagain\n"
    timed = ok(runner.run("%%time\ny = 6\ny * 7"))
    assert timed.main_result["text"] == "42" and "Wall time" in timed.stdout
    html = ok(runner.run("%%html\n<b>bold</b>")).results
    assert [(r["html"], r["is_main_result"]) for r in html] == [("<b>bold</b>\n", False)]
    js = ok(runner.run("%%javascript\nconsole.log(1)")).results
    assert js[0]["javascript"] == "console.log(1)\n"


def test_capture(start):
    runner = start("python")
    execution = ok(runner.run("%%capture captured\nimport sys\nprint('out')\n"
                              "print('err', file=sys.stderr)\ndisplay('shown')\n5"))
    assert execution.events[:-1] == []  # everything went into `captured`
    assert ok(runner.run("captured.stdout, captured.stderr, captured.outputs")).main_result["text"] == \
        "('out\\n', 'err\\n', ['shown', 5])"
    shown = ok(runner.run("captured.show()"))
    assert shown.stdout == "out\n" and [r["text"] for r in shown.results] == ["shown", "5"]


@pytest.mark.parametrize("code, message", [
    ("%nope", "Line magic function `%nope` not found."),
    ("%%nope\nx", "Cell magic `%%nope` not found."),
    ("%cd /does/not/exist", "cd: No such file or directory: /does/not/exist"),
    ("%%writefile\nx", "%%writefile: give the file's name"),
    ("%env NOT_SET_ANYWHERE", "Environment does not have key: NOT_SET_ANYWHERE"),
])
def test_misused_magics_are_usage_errors(start, code, message):
    execution = start("python").run(code)
    assert execution.status == "error"
    assert (execution.error["name"], execution.error["value"]) == ("UsageError", message)
    assert execution.error["traceback"] == f"UsageError: {message}"


def test_failing_cell_magic_and_syntax_errors(start):
    runner = start("python")
    failed = runner.run("%%bash\necho before\nexit 3")
    assert failed.error["name"] == "CalledProcessError" and failed.stdout == "before\n"
    assert "python_ipython" not in failed.error["traceback"]  # the runner's frames are hidden
    broken = runner.run("x = (")
    assert broken.error["name"] == "SyntaxError"
    indented = runner.run("    if True:\n    print(1)")
    assert indented.error["name"] == "IndentationError"


def test_display_and_ipython_display_objects(start):
    runner = start("python")
    execution = ok(runner.run(
        "from IPython.display import display as show, HTML, Markdown, JSON, Image\n"
        "display(1, 'two')\n"
        "show(HTML('<i>h</i>'), Markdown('# m'))\n"
        "display({'text/plain': 'raw', 'application/vnd.custom+json': {'a': 1}}, raw=True)\n"
        "'last'"))
    results = execution.results
    assert [r["is_main_result"] for r in results] == [False] * 5 + [True]
    assert [r["text"] for r in results[:2]] == ["1", "two"]
    assert results[2]["html"] == "<i>h</i>" and results[3]["markdown"] == "# m"
    assert results[4]["text"] == "raw" and results[4]["extra"] == {"application/vnd.custom+json": {"a": 1}}
    assert results[5]["text"] == "last"
    # IPython's own get_ipython() is the kernel's shell, so its magics work from code too
    assert ok(runner.run("import IPython\nIPython.get_ipython().run_line_magic('env', 'A=b')")).stdout == \
        "env: A=b\n"


@pytest.mark.skipif(importlib.util.find_spec("PIL") is None, reason="PIL not installed (python3-pil)")
def test_pil_show_and_save_display_the_image(start, tmp_path):
    execution = ok(start("python").run(
        "from PIL import Image\nimage = Image.new('RGB', (4, 4), 'red')\n"
        "image.save('red.png')\nimage.show()\nimage.save(open('raw.png', 'wb'), 'PNG')"))
    assert len(execution.results) == 2  # save(path) and show(); not save(file object)
    for result in execution.results:
        assert base64.b64decode(result["png"]).startswith(PNG)
        assert result["text"].startswith("<PIL.Image.Image image mode=RGB size=4x4")
        assert result["is_main_result"] is False
    assert (tmp_path / "red.png").read_bytes().startswith(PNG)
