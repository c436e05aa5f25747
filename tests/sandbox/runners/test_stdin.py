"""A cell's interactive stdin: the exec request's `stdin` FIFO (PROTOCOL.md)."""

import os

import pytest

from harness import StdinFifo

LANGUAGES = ["python", "javascript", "bash"]


def stdout_seen(runner, language, text):
    """Waits until `text` has been written to stdout (an event, or bash's raw fd 1)."""
    if language == "bash":
        runner.raw_stdout.wait_for(text)
    else:
        runner.wait_event(lambda e: e["type"] == "stdout" and text in e["text"])


# Reads one line, reports it, reads a second, reports it, then reads to end of file.
TWO_LINES = {
    "python": "a = input()\nprint('got:' + a, flush=True)\nb = input()\nprint('got:' + b, flush=True)\n"
              "import sys\nprint('rest:' + repr(sys.stdin.read()))",
    "bash": "read a; echo \"got:$a\"; read b; echo \"got:$b\"; rest=$(cat); echo \"rest:[$rest]\"",
    "javascript": "const rl = require('readline').createInterface({input: process.stdin})\n"
                  "for await (const line of rl) console.log('got:' + line)\nconsole.log('rest:closed')",
}
REST = {"python": "rest:''", "bash": "rest:[]", "javascript": "rest:closed"}


@pytest.mark.parametrize("language", LANGUAGES)
def test_cell_reads_lines_sent_at_different_times_then_eof(start, tmp_path, language):
    runner = start(language, stdin_eof=True)
    fifo = StdinFifo(tmp_path)
    request_id = runner.start(TWO_LINES[language], stdin=fifo)
    fifo.write("one\n")
    stdout_seen(runner, language, "got:one\n")
    assert not os.path.exists(fifo.path)  # the runner unlinked it
    fifo.write("two\n")
    stdout_seen(runner, language, "got:two\n")
    fifo.close()  # end of file
    execution = runner.collect(request_id)
    assert execution.status == "ok", execution.events
    if language == "bash":
        runner.raw_stdout.wait_for(REST[language])
    else:
        assert REST[language] in execution.stdout


# A child process that inherits stdin reads the FIFO.
CHILD_CAT = {
    "python": "import subprocess\nsubprocess.run(['cat'])\nNone",
    "bash": "cat",
    "javascript": "require('child_process').execSync('cat', {stdio: 'inherit'}); undefined",
}
# The next cell, without `stdin`, is at end of file at once.
AT_EOF = {
    "python": ("import sys\nprint(repr(sys.stdin.read()))\ntry:\n    input()\nexcept EOFError:\n    print('EOFError')",
               "''\nEOFError\n"),
    "bash": ("if read x; then echo \"read:$x\"; else echo eof; fi", "eof\n"),
    "javascript": ("console.log(JSON.stringify(require('fs').readFileSync(0, 'utf8')))", '""\n'),
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_child_process_reads_it_and_the_next_cell_sees_eof(start, tmp_path, language):
    runner = start(language, stdin_eof=True)
    fifo = StdinFifo(tmp_path)
    fifo.write("for the child\n")
    request_id = runner.start(CHILD_CAT[language], stdin=fifo)
    runner.raw_stdout.wait_for("for the child\n")
    fifo.close()
    assert runner.collect(request_id).status == "ok"
    code, expected = AT_EOF[language]
    execution = runner.run(code, timeout=5)
    assert execution.status == "ok", execution.events
    if language == "bash":
        runner.raw_stdout.wait_for("for the child\n" + expected)
    else:
        assert execution.stdout == expected


# Everything at once, then end of file: other ways of reading stdin.
WHOLE = {
    "python": [("import sys\nsys.stdin.buffer.read()", "b'x\\ny\\n'"),
               ("import os\nos.read(0, 100)", "b'x\\ny\\n'")],
    "javascript": [("require('fs').readFileSync(0, 'utf8')", "x\\ny\\n"),
                   ("require('fs').readFileSync('/dev/stdin').toString()", "x\\ny\\n"),
                   ("const b = Buffer.alloc(100)\nb.toString('utf8', 0, require('fs').readSync(0, b))", "x\\ny\\n"),
                   ("let t = ''\nfor await (const c of process.stdin) t += c\nt", "x\\ny\\n"),
                   ("require('child_process').spawnSync('cat', {stdio: ['inherit', 'pipe', 'pipe']}).stdout.toString()",
                    "x\\ny\\n")],
}


@pytest.mark.parametrize("language", ["python", "javascript"])
def test_other_ways_of_reading_stdin(start, tmp_path, language):
    runner = start(language, stdin_eof=True)
    for n, (code, text) in enumerate(WHOLE[language]):
        fifo = StdinFifo(tmp_path, f"stdin-{n}")
        fifo.write("x\ny\n")
        fifo.close()
        execution = runner.run(code, stdin=fifo)
        assert execution.status == "ok", (code, execution.events)
        assert execution.main_result["text"] == text, code


BLOCKED_READ = {
    "python": "print('reading', flush=True)\ninput()",
    "bash": "echo reading; read x",
    "javascript": "console.log('reading')\nconst b = Buffer.alloc(10)\nrequire('fs').readSync(0, b)",
}


@pytest.mark.parametrize("language", LANGUAGES)
def test_sigint_interrupts_a_read_of_stdin(start, tmp_path, language):
    runner = start(language, stdin_eof=True)
    fifo = StdinFifo(tmp_path)
    request_id = runner.start(BLOCKED_READ[language], stdin=fifo)
    stdout_seen(runner, language, "reading\n")
    if language == "python":  # a SIGINT just before the read would wait for it (PROTOCOL.md)
        runner.wait_until_blocked_in(("pipe_read", "anon_pipe_read"))  # kernel versions differ
    runner.interrupt()
    execution = runner.collect(request_id)
    assert execution.status == "interrupted", execution.events
    fifo.close()
    assert runner.run({"python": "1", "bash": "true", "javascript": "1"}[language]).status == "ok"


BAD_STDIN = [5, "relative/path", "/with\0nul", ""]


@pytest.mark.parametrize("language", LANGUAGES)
def test_invalid_stdin_is_a_protocol_error(start, tmp_path, language):
    runner = start(language)
    for n, stdin in enumerate([*BAD_STDIN, str(tmp_path / "missing")]):
        runner.send({"op": "exec", "id": f"bad{n}", "code": "true", "stdin": stdin})
        execution = runner.collect(f"bad{n}")
        assert execution.error["name"] == "ProtocolError", stdin
        assert execution.end["execution_count"] == 0
