"""Integration tests for the codeexec service: they start the real binary on a
free loopback port and talk to it over HTTP (libcurl via pycurl) and
WebSocket (python3-websockets 10.4, asyncio API).

Requirements (Debian packages, use the system interpreter, not a pyenv shim):

    apt-get install -y python3-pytest python3-pycurl python3-websockets python3-pytest-timeout

Run (from the repository root; the binary is build/codeexec or $CODEEXEC_BIN):

    /usr/bin/python3 -m pytest tests/integration                 # everything (well under 3 min)
    /usr/bin/python3 -m pytest tests/integration -k websocket    # only WebSocket/streaming tests
    /usr/bin/python3 -m pytest tests/integration -k "validation or health"
    /usr/bin/python3 -m pytest tests/integration/test_execute.py -k unicode -x
    CODEEXEC_BIN=/path/to/codeexec /usr/bin/python3 -m pytest tests/integration

Markers (usable with -m or -k): websocket, lifecycle, isolation, validation.
`--service-log` prints where each instance's log is written (it is also
attached to every failure report as the "service log" section).

The suite is sequential on purpose: the leak checks (sandbox host uids
200000..201023, sbx-* cgroups) are host-wide, so do not run it with -n (xdist)
and do not run other sandbox users on the same host at the same time.
test_zz_leaks.py runs last (file order) and checks that nothing is left behind.

Extra environment for every instance: CODEEXEC_TEST_ENV='{"KEY": "value"}'.

Fixtures:
  service          session-wide instance (PORT=0, HOST=127.0.0.1, LOG_LEVEL=debug,
                   STREAM_REPLAY_WINDOW_MS=10000, MAX_TIMEOUT_MS=120000, PATH).
                   .http(method, path, body, headers) -> (status, headers, json|text),
                   .ws_connect(client_id) async context manager, .execute(...),
                   .start_stream(...), .health(), .base_url, .ws_url.
                   At session end: SIGTERM, exit code must be 0.
  service_factory  function-scoped: service_factory(env={...}) starts a separate
                   instance with extra/overridden env; stopped at teardown.
  http, ws_connect, base_url, ws_url   shortcuts to the session instance.
  client_id        a fresh unique clientId.
Helpers (helpers.py): wait_until, collect_events, run, check_stream_sequence, ...
"""

from __future__ import annotations

import re
import uuid

import pytest

from helpers import Service, assert_nothing_left, binary_path

_instances: list[Service] = []


def pytest_addoption(parser):
    parser.addoption("--service-log", action="store_true", default=False,
                     help="print the path of each service instance's log file")


def _start(env, log_path, name, config) -> Service:
    if not binary_path().exists():
        pytest.fail(f"service binary not found at {binary_path()}: build it (cmake --build build) "
                    f"or point CODEEXEC_BIN at it", pytrace=False)
    svc = Service(env, log_path, name)
    _instances.append(svc)
    try:
        svc.start()
    except Exception as e:  # start-up failure: show why, with the log
        svc.kill()
        svc.close_log()
        pytest.fail(f"could not start {name}: {e}", pytrace=False)
    if config.getoption("--service-log"):
        print(f"\n[{name}] port {svc.port}, log {log_path}")
    return svc


@pytest.fixture(scope="session")
def service(tmp_path_factory, request):
    log_path = tmp_path_factory.mktemp("service") / "codeexec.log"
    svc = _start({}, log_path, "codeexec-session", request.config)
    yield svc
    try:
        code = svc.stop(timeout=30)
        assert code == 0, f"session service exited with {code} after SIGTERM (log: {log_path}):\n" \
                          + svc.log_tail(60)
        assert_nothing_left(None, timeout=10)
    finally:
        svc.kill()
        svc.close_log()


@pytest.fixture
def http(service):
    """http(method, path, body=None|bytes|str|dict, headers=None) -> (status, headers, json|text)."""
    return service.http


@pytest.fixture
def ws_connect(service):
    """`async with ws_connect(client_id) as ws:` on the session instance."""
    return service.ws_connect


@pytest.fixture
def base_url(service) -> str:
    return service.base_url


@pytest.fixture
def ws_url(service) -> str:
    return service.ws_url


@pytest.fixture
def service_factory(tmp_path, request):
    """service_factory(env={...}, name=...) -> a started, separate Service."""
    started: list[Service] = []

    def make(env: dict | None = None, name: str | None = None) -> Service:
        n = name or f"codeexec-{request.node.name}-{len(started)}"
        svc = _start(env or {}, tmp_path / f"{n}.log".replace("/", "_"), n, request.config)
        started.append(svc)
        return svc

    yield make
    problems = []
    for svc in started:
        if svc.running:
            code = svc.stop(timeout=30)
            if code != 0:
                problems.append(f"{svc.name} exited with {code} after SIGTERM:\n{svc.log_tail(40)}")
        svc.kill()
        svc.close_log()
    assert not problems, "\n".join(problems)


@pytest.fixture
def client_id(request) -> str:
    name = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name)[:40].strip("-")
    return f"it-{name}-{uuid.uuid4().hex[:12]}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    marks = item.__dict__.setdefault("_codeexec_log_marks", {})
    if call.when == "setup" and not report.failed:
        for svc in _instances:  # show only what was logged during the test itself
            marks[id(svc)] = len(svc.lines)
    if report.failed:
        for svc in list(_instances):
            lines = svc.lines[marks.get(id(svc), 0):][-120:]
            if lines:
                where = f" ({svc.log_path})" if svc.log_path else ""
                report.sections.append((f"service log: {svc.name}{where}", "\n".join(lines)))
    if call.when == "teardown":
        # forget separate instances of finished tests (the session one stays)
        _instances[:] = [s for s in _instances if s.name == "codeexec-session" or s.running]


def pytest_terminal_summary(terminalreporter):
    import openapi_contract
    total = sum(openapi_contract.checked.values())
    if total:
        terminalreporter.write_line(
            f"contract: {total} responses and WebSocket messages matched docs/openapi.json "
            f"({len(openapi_contract.checked)} distinct operation/status pairs and message types)")
