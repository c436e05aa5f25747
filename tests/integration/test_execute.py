"""POST /execute: languages, results, output, errors, concurrency, /health."""

import threading
import time

import pycurl
import pytest

from helpers import check_execute_response, main_result, stderr_of, stdout_of

FIB = """\
def fib(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a

for i in range(5):
    print(i, fib(i))

fib(10)
"""

JS_MULTI = """\
function square(x) {
  return x * x;
}
let total = 0;
for (let i = 0; i < 4; i++) {
  total += square(i);
  console.log("i=" + i);
}
total
"""

BASH_MULTI = """\
greet() {
  echo "hello $1"
}
for n in a b c; do
  greet "$n"
done
"""


# ---------------------------------------------------------------- health

def test_health(service):
    resp = service.http("GET", "/health")
    assert resp.status == 200, resp
    assert "application/json" in resp.headers.get("content-type", ""), resp.headers
    body = resp.body
    assert body.get("status") == "ok", body
    assert body.get("backend") == "local", body
    live = body.get("sandboxes", {}).get("live")
    assert isinstance(live, int) and not isinstance(live, bool) and live >= 0, body


def test_keep_alive_connection_reused_for_several_requests(service):
    """Several requests on one libcurl handle (HTTP/1.1 keep-alive)."""
    c = pycurl.Curl()
    try:
        statuses = [service.http("GET", "/health", curl=c, timeout=10).status for _ in range(3)]
        body = service.http("POST", "/execute", {"code": "print('ka')"}, curl=c).body
        statuses.append(service.http("GET", "/health", curl=c, timeout=10).status)
    finally:
        c.close()
    assert statuses == [200] * 4, statuses
    assert stdout_of(body["result"]) == "ka\n", body


# ---------------------------------------------------------------- languages

def test_python_print(service):
    body = service.execute("print('hello from python')", "python")
    r = body["result"]
    assert r["status"] == "ok" and r["error"] is None, r
    assert stdout_of(r) == "hello from python\n", r
    assert stderr_of(r) == "", r


def test_default_language_is_python(service):
    body = service.execute("import sys\nprint('py', sys.version_info[0])")
    assert stdout_of(body["result"]) == "py 3\n", body


def test_default_timeout_applies(service):
    """No timeout field: the default (30 s) must not cut a short run."""
    body = service.execute("import time\ntime.sleep(0.2)\nprint('slept')")
    assert body["result"]["status"] == "ok", body
    assert stdout_of(body["result"]) == "slept\n", body


def test_javascript_console_log(service):
    body = service.execute("console.log('hello from js', typeof process)", "javascript")
    r = body["result"]
    assert r["status"] == "ok" and r["error"] is None, r
    assert stdout_of(r) == "hello from js object\n", r


def test_bash_echo(service):
    body = service.execute('echo "hello from bash $((2+3))"', "bash")
    r = body["result"]
    assert r["status"] == "ok" and r["error"] is None, r
    assert stdout_of(r) == "hello from bash 5\n", r


def test_python_last_expression_result(service):
    r = service.execute("1+1", "python")["result"]
    main = main_result(r)
    assert main is not None, f"no main result for `1+1`: {r!r}"
    assert main.get("text") == "2" and main.get("is_main_result") is True, main
    assert stdout_of(r) == "", "a last-expression value is a result, not stdout"


def test_javascript_last_expression_result(service):
    r = service.execute("1+1", "javascript")["result"]
    main = main_result(r)
    assert main is not None, f"no main result for `1+1`: {r!r}"
    assert main.get("text") == "2" and main.get("is_main_result") is True, main


def test_python_string_result_text_has_no_quotes(service):
    """E2B strips the quotes of a string repr (sandbox/runners/PROTOCOL.md)."""
    main = main_result(service.execute("'abc'", "python")["result"])
    assert main is not None and main.get("text") == "abc", main


def test_python_statement_has_no_main_result(service):
    r = service.execute("x = 41\nprint(x + 1)", "python")["result"]
    assert main_result(r) is None, r
    assert stdout_of(r) == "42\n", r


def test_python_multiline_function_and_loop(service):
    r = service.execute(FIB, "python")["result"]
    assert r["error"] is None, r
    assert stdout_of(r) == "0 0\n1 1\n2 1\n3 2\n4 3\n", r
    main = main_result(r)
    assert main is not None and main.get("text") == "55", r


def test_javascript_multiline_function_and_loop(service):
    r = service.execute(JS_MULTI, "javascript")["result"]
    assert r["error"] is None, r
    assert stdout_of(r) == "i=0\ni=1\ni=2\ni=3\n", r
    main = main_result(r)
    assert main is not None and main.get("text") == "14", r


def test_bash_multiline_function_and_loop(service):
    r = service.execute(BASH_MULTI, "bash")["result"]
    assert r["error"] is None, r
    assert stdout_of(r) == "hello a\nhello b\nhello c\n", r


@pytest.mark.parametrize("language", ["python", "Python", "PYTHON", "pYtHoN"])
def test_python_language_case_insensitive(service, language):
    r = service.execute("import sys; print('lang', sys.implementation.name)", language)["result"]
    assert stdout_of(r) == "lang cpython\n", r


@pytest.mark.parametrize("language", ["javascript", "JavaScript", "JAVASCRIPT", "js", "JS", "Js"])
def test_javascript_aliases(service, language):
    r = service.execute("console.log('node', typeof process.versions.node)", language)["result"]
    assert r["error"] is None, r
    assert stdout_of(r) == "node string\n", r


@pytest.mark.parametrize("language", ["bash", "Bash", "BASH", "sh", "SH", "Sh"])
def test_bash_aliases(service, language):
    r = service.execute('echo "shell ${BASH_VERSION:+bash}"', language)["result"]
    assert r["error"] is None, r
    assert stdout_of(r) == "shell bash\n", r


# ---------------------------------------------------------------- output

def test_stdout_and_stderr_separated_in_logs(service):
    code = "import sys\nprint('out1')\nprint('err1', file=sys.stderr)\nprint('out2')\n"
    r = service.execute(code, "python")["result"]
    assert r["error"] is None, r
    assert stdout_of(r) == "out1\nout2\n", r
    assert stderr_of(r) == "err1\n", r


def test_javascript_console_error_goes_to_stderr(service):
    r = service.execute("console.log('o'); console.error('e')", "javascript")["result"]
    assert stdout_of(r) == "o\n" and stderr_of(r) == "e\n", r


def test_bash_stderr(service):
    r = service.execute("echo out; echo err >&2", "bash")["result"]
    assert stdout_of(r) == "out\n" and stderr_of(r) == "err\n", r


def test_partial_lines_are_kept_exactly(service):
    """logs are chunks as produced: joined they are the exact byte stream."""
    code = "import sys\nsys.stdout.write('no newline')\nsys.stdout.write(' more')\nprint()\nsys.stdout.write('tail')"
    r = service.execute(code, "python")["result"]
    assert stdout_of(r) == "no newline more\ntail", r


@pytest.mark.parametrize("language,code", [
    ("python", "print('héllo ✓ 日本 🎉')"),
    ("javascript", "console.log('héllo ✓ 日本 🎉')"),
    ("bash", "echo 'héllo ✓ 日本 🎉'"),
])
def test_unicode_output(service, language, code):
    r = service.execute(code, language)["result"]
    assert r["error"] is None, r
    assert stdout_of(r) == "héllo ✓ 日本 🎉\n", r


def test_unicode_result_and_source(service):
    r = service.execute("s = 'ñandú ✓'\nprint(len(s))\ns", "python")["result"]
    assert stdout_of(r) == "7\n", r
    assert main_result(r).get("text") == "ñandú ✓", r


def test_multibyte_output_split_across_chunks(service):
    """200k 3-byte characters without newlines: however the server chunks the
    stream, no character may be broken or lost."""
    r = service.execute("import sys\nsys.stdout.write('✓' * 200000)\nsys.stdout.flush()", "python")["result"]
    out = stdout_of(r)
    assert len(out) == 200000 and set(out) == {"✓"}, \
        f"got {len(out)} chars, distinct {sorted(set(out))[:5]!r}"


def test_large_output_100k_lines_complete(service):
    r = service.execute("for i in range(100000):\n    print(i)", "python", timeout_ms=60000)["result"]
    assert r["error"] is None, r["error"]
    out = stdout_of(r)
    expected = "".join(f"{i}\n" for i in range(100000))
    if out != expected:
        lines = out.splitlines()
        first_bad = next((i for i, (a, b) in enumerate(zip(lines, map(str, range(100000)))) if a != b),
                         min(len(lines), 100000))
        pytest.fail(f"stdout incomplete or corrupted: {len(out)} bytes vs {len(expected)}, "
                    f"{len(lines)} lines, first difference at line {first_bad}")


# ---------------------------------------------------------------- code errors

def test_python_zero_division_error(service):
    code = "print('before')\nx = 1\ny = x / 0\nprint('after')\n"
    body = service.execute(code, "python")
    r = body["result"]
    err = r["error"]
    assert err is not None, f"expected an error: {r!r}"
    assert r["status"] == "error", r
    assert err["name"] == "ZeroDivisionError", err
    assert "division by zero" in err["value"], err
    assert "line 3" in err["traceback"] and "y = x / 0" in err["traceback"], \
        f"traceback should point at line 3 and show its source: {err['traceback']!r}"
    assert stdout_of(r) == "before\n", "output before the error must be kept and nothing after it"


def test_python_error_traceback_inside_function(service):
    code = "def f(d):\n    return d['missing']\n\nf({})\n"
    err = service.execute(code, "python")["result"]["error"]
    assert err is not None and err["name"] == "KeyError", err
    assert "missing" in err["value"], err
    assert "return d['missing']" in err["traceback"], err["traceback"]


def test_python_syntax_error(service):
    r = service.execute("def broken(:\n    pass", "python")["result"]
    assert r["error"] is not None and r["error"]["name"] == "SyntaxError", r
    assert r["status"] == "error", r


def test_javascript_reference_error(service):
    r = service.execute("console.log('before');\nundefinedThing + 1;", "javascript")["result"]
    err = r["error"]
    assert err is not None, r
    assert err["name"] == "ReferenceError", err
    assert "undefinedThing" in err["value"], err
    assert r["status"] == "error", r
    assert stdout_of(r) == "before\n", r


def test_javascript_thrown_error(service):
    r = service.execute("throw new TypeError('custom message')", "javascript")["result"]
    assert r["error"] is not None and r["error"]["name"] == "TypeError", r
    assert "custom message" in r["error"]["value"], r


def test_bash_exit_code_is_an_error(service):
    r = service.execute("echo before\nexit 3", "bash")["result"]
    assert r["error"] is not None, f"`exit 3` must be reported as an error: {r!r}"
    assert r["status"] == "error", r
    assert stdout_of(r) == "before\n", r


def test_bash_false_is_an_error(service):
    r = service.execute("echo x\nfalse", "bash")["result"]
    assert r["error"] is not None, f"a failing last command must be reported as an error: {r!r}"
    assert r["status"] == "error", r


def test_bash_true_is_not_an_error(service):
    r = service.execute("false || true\necho fine", "bash")["result"]
    assert r["error"] is None and r["status"] == "ok", r
    assert stdout_of(r) == "fine\n", r


def test_service_still_works_after_errors(service):
    service.execute("raise RuntimeError('boom')", "python")
    r = service.execute("print('still alive')", "python")["result"]
    assert stdout_of(r) == "still alive\n", r


# ---------------------------------------------------------------- concurrency

def test_ten_concurrent_executions(service):
    n = 10
    results: dict[int, object] = {}
    barrier = threading.Barrier(n)

    def worker(i):
        try:
            barrier.wait(10)
            code = f"import time\nprint('index', {i})\ntime.sleep(0.3)\nprint('done', {i})"
            results[i] = service.http("POST", "/execute", {"code": code, "timeout": 30000}, timeout=60)
        except Exception as e:  # reported below
            results[i] = e

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    wall = time.monotonic() - t0
    assert all(not t.is_alive() for t in threads), "some requests never completed"
    ids = set()
    for i in range(n):
        resp = results.get(i)
        assert not isinstance(resp, Exception), f"request {i}: {resp!r}"
        body = check_execute_response(resp)
        r = body["result"]
        assert r["error"] is None, f"request {i}: {r!r}"
        assert stdout_of(r) == f"index {i}\ndone {i}\n", f"request {i} got another's output: {r!r}"
        ids.add(body["executionId"])
    assert len(ids) == n, f"executionIds must be unique: {ids}"
    print(f"10 concurrent executions took {wall:.2f}s")
