"""The R kernel (r_runner.R), where R is installed."""

import shutil

import pytest

pytestmark = pytest.mark.skipif(shutil.which("Rscript") is None,
                                reason="R not installed (apt-get install --no-install-recommends r-base-core)")


def test_ready(start):
    runner = start("r")
    assert runner.ready["language"] == "r"
    assert runner.ready["version"].split(".")[0] >= "4"
    assert runner.ready["pid"] == runner.proc.pid


def test_state_output_and_results(start):
    runner = start("r")
    execution = runner.run("x <- 41\ncat('hi\\n')\nmessage('note')\nx + 1")
    assert [(e["type"], e.get("text")) for e in execution.events[:-1]] == [
        ("stdout", "hi\n"), ("stderr", "note\n"), ("result", "[1] 42")]
    assert execution.end == {"type": "end", "id": "c1", "status": "ok", "execution_count": 1}
    assert runner.run("f <- function(v) v * 2").status == "ok"
    assert runner.run("f(x)").main_result["text"] == "[1] 82"
    # visible values before the last are printed as at R's prompt; invisible ones are not
    execution = runner.run("1:3\ninvisible(7)\ny <- 2\ndata.frame(a = 1:2, b = c('u', 'v'))")
    assert execution.stdout == "[1] 1 2 3\n"
    assert execution.main_result["text"] == "  a b\n1 1 u\n2 2 v"
    assert [e["type"] for e in runner.run("invisible(5)").events] == ["end"]
    assert runner.run("cat('no newline')").stdout == "no newline"
    assert runner.run("'caf\u00e9'").main_result["text"] == '[1] "caf\u00e9"'


def test_errors(start):
    runner = start("r")
    execution = runner.run("f <- function() stop('boom')\ng <- function() f()\nbefore <- 1\ng()\nafter <- 1")
    assert execution.status == "error"
    error = execution.error
    assert (error["name"], error["value"]) == ("simpleError", "boom")
    assert error["traceback"] == "Error in f() : boom\n2: f()\n1: g()"
    assert runner.run("exists('before') && !exists('after')").main_result["text"] == "[1] TRUE"
    parse = runner.run("1 +")
    assert parse.error["name"] == "ParseError"
    assert "unexpected end of input" in parse.error["value"]
    warning = runner.run("warning('careful'); 3")
    assert warning.stderr == "Warning message:\ncareful\n"
    assert warning.status == "ok"


@pytest.mark.parametrize("loop", ["while (TRUE) {}", "Sys.sleep(100)"])
def test_sigint_interrupts_and_state_survives(start, loop):
    runner = start("r")
    runner.run("kept <- 'yes'")
    request_id = runner.start(f"cat('started\\n'); {loop}; cat('after')")
    runner.wait_event(lambda e: e.get("text") == "started\n")
    runner.interrupt()
    execution = runner.collect(request_id)
    assert execution.status == "interrupted"
    assert execution.error["name"] == "Interrupted"
    assert "after" not in execution.stdout
    assert runner.run("kept").main_result["text"] == '[1] "yes"'


def test_sigint_between_cells_is_ignored(start):
    runner = start("r")
    for _ in range(2):
        runner.interrupt_idle()
        assert runner.run("1").status == "ok"


def test_protocol_errors_env_eof_and_shutdown(start):
    runner = start("r")
    runner.send(b"{not json")
    assert runner.collect("").error["name"] == "ProtocolError"
    runner.send({"op": "exec", "id": "bad", "code": 42})
    assert runner.collect("bad").error["name"] == "ProtocolError"
    runner.send({"op": "exec", "id": "s", "code": "1", "stdin": "relative"})
    assert runner.collect("s").error["name"] == "ProtocolError"
    execution = runner.run("Sys.getenv('CELL_VAR', 'unset')", env={"CELL_VAR": "a \"b\"\\"})
    assert execution.main_result["text"] == '[1] "a \\"b\\"\\\\"'
    assert execution.end["execution_count"] == 1
    assert runner.run("Sys.getenv('CELL_VAR', 'unset')").main_result["text"] == '[1] "unset"'
    runner.close_requests()
    assert runner.wait_exit() == 0


def test_oversized_frame_is_skipped(start):
    runner = start("r")
    size = 64 * 1024 * 1024 + 1
    runner.send_bytes(size.to_bytes(4, "big") + b"\0" * size)
    assert runner.collect("", timeout=30).error["name"] == "ProtocolError"
    runner.send({"op": "exec", "id": "after", "code": "1"})
    assert runner.collect("after").status == "ok"
