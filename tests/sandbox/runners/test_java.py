"""The Java kernel (java/JavaRunner.java, JShell), compiled by the harness."""

import pytest

from harness import JAVA_HOME, StdinFifo

pytestmark = pytest.mark.skipif(not (JAVA_HOME / "bin" / "javac").exists(),
                                reason=f"JDK 17 not installed ({JAVA_HOME}; apt-get install openjdk-17-jdk-headless)")
SLOW = 30.0  # the first cell compiles with a cold javac: seconds on a busy machine


def test_ready(start):
    runner = start("java")
    assert runner.ready["language"] == "java"
    assert runner.ready["version"].startswith("17")
    assert runner.ready["pid"] == runner.proc.pid


def test_state_output_and_last_expression(start):
    runner = start("java")
    execution = runner.run("int x = 41;\nSystem.out.println(\"hi\");\nSystem.err.print(\"oops\");\nx + 1", timeout=SLOW)
    assert [(e["type"], e.get("text")) for e in execution.events[:-1]] == [
        ("stdout", "hi\n"), ("stderr", "oops"), ("result", "42")]
    assert execution.end == {"type": "end", "id": "c1", "status": "ok", "execution_count": 1}
    # state persists: variables, methods, classes; the default imports of jshell
    assert runner.run("int twice(int v) { return 2 * v; }\nclass P { int v = 3; }").status == "ok"
    assert runner.run("twice(x) + new P().v").main_result["text"] == "85"
    assert runner.run("List.of(1, 2).stream().map(i -> i * 10).collect(Collectors.toList())"
                      ).main_result["text"] == "[10, 20]"
    assert runner.run("\"text\"").main_result["text"] == "text"  # quotes stripped as E2B does
    # statements and declarations have no result
    assert [e["type"] for e in runner.run("int y = 1;\ny++;\nSystem.out.print(\"\");").events] == ["end"]


def test_partial_lines_are_coalesced(start):
    execution = start("java").run("for (int i = 0; i < 3; i++) System.out.print(i);\nSystem.out.println();",
                                  timeout=SLOW)
    assert execution.stdout == "012\n"
    assert execution.status == "ok"


def test_exception_is_an_error_with_cell_lines(start):
    runner = start("java")
    execution = runner.run("void f() {\n  throw new IllegalStateException(\"boom\");\n}\n\nf();", timeout=SLOW)
    assert execution.status == "error"
    error = execution.error
    assert (error["name"], error["value"]) == ("IllegalStateException", "boom")
    assert error["traceback"].startswith("java.lang.IllegalStateException: boom\n")
    assert "\tat f(cell-1:2)\n" in error["traceback"]
    assert "\tat <cell>(cell-1:5)\n" in error["traceback"]
    assert "jdk.jshell" not in error["traceback"] and "reflect" not in error["traceback"]
    # later snippets of the cell do not run
    execution = runner.run("int before = 1;\nint[] a = new int[1];\na[3] = 1;\nint after = 1;")
    assert execution.error["name"] == "ArrayIndexOutOfBoundsException"
    assert runner.run("before").main_result["text"] == "1"
    assert runner.run("after").error["name"] == "CompilationError"


def test_compilation_error(start):
    runner = start("java")
    execution = runner.run("int ok = 1;\nint y = ;", timeout=SLOW)
    assert execution.status == "error"
    error = execution.error
    assert error["name"] == "CompilationError"
    assert "illegal start of expression" in error["value"]
    assert error["traceback"].startswith("cell-1:2: error: illegal start of expression\nint y = ;\n        ^")
    assert runner.run("String s = undefinedThing;").error["name"] == "CompilationError"
    assert runner.run("ok").main_result["text"] == "1"  # the snippets before the error ran


@pytest.mark.parametrize("loop", ["while (true) { n++; }", "Thread.sleep(100000);"])
def test_sigint_stops_the_running_snippet(start, loop):
    runner = start("java")
    assert runner.run("long n = 0;", timeout=SLOW).status == "ok"
    request_id = runner.start(f"System.out.println(\"started\");\n{loop}\nSystem.out.println(\"after\");")
    runner.wait_event(lambda e: e.get("text") == "started\n")
    runner.interrupt()
    execution = runner.collect(request_id)
    assert execution.status == "interrupted"
    assert execution.error["name"] == "Interrupted"
    assert "after" not in execution.stdout
    execution = runner.run("System.out.println(\"alive\");\nn >= 0")
    assert (execution.stdout, execution.main_result["text"]) == ("alive\n", "true")


def test_sigint_between_cells_is_ignored(start):
    runner = start("java")
    runner.interrupt_idle()
    assert runner.run("1", timeout=SLOW).status == "ok"


def test_malformed_requests_env_and_shutdown(start):
    runner = start("java")
    runner.send(b"{not json")
    assert runner.collect("").error["name"] == "ProtocolError"
    runner.send({"op": "exec", "id": "bad", "code": 42})
    assert runner.collect("bad").error["name"] == "ProtocolError"
    execution = runner.run("System.getenv(\"CELL_VAR\")", env={"CELL_VAR": "a b"}, timeout=SLOW)
    assert execution.main_result["text"] == "a b"
    assert execution.end["execution_count"] == 1
    assert runner.run("System.getenv(\"CELL_VAR\") == null").main_result["text"] == "true"
    runner.send({"op": "shutdown"})
    assert runner.wait_exit() == 0


def test_stdin(start, tmp_path):
    runner = start("java", stdin_eof=True)
    fifo = StdinFifo(tmp_path)
    request_id = runner.start("var in = new BufferedReader(new InputStreamReader(System.in));\n"
                              "System.out.println(\"got:\" + in.readLine());\n"
                              "System.out.println(\"got:\" + in.readLine());\nin.readLine()", stdin=fifo)
    fifo.write("one\n")
    runner.wait_event(lambda e: e.get("text") == "got:one\n", timeout=SLOW)
    fifo.write("two\n")
    runner.wait_event(lambda e: e.get("text") == "got:two\n")
    fifo.close()
    execution = runner.collect(request_id)
    assert execution.status == "ok" and execution.main_result is None  # null at end of file
    assert runner.run("System.in.read()").main_result["text"] == "-1"
