#!/usr/bin/python3
"""Runs the SDK conformance suite (tests/e2b/sdk/conformance.test.mjs; against our
service also interpreter.test.mjs) against
a server it starts: the fake E2B (fake_e2b_server.py) or our service
($CODEEXEC_BIN with its E2B-compatible API), in mode debug (E2B_DEBUG=true:
the SDK talks to localhost:49999/:49983) and/or mode url (E2B_API_URL and
E2B_SANDBOX_URL on one base URL). Exits non-zero if any case fails.

    run_conformance.py --target fake|service [--mode debug] [--mode url]

Mode debug binds 127.0.0.1:49999 and :49983: run it serially (CTest RUN_SERIAL).
The SDK must be installed in tests/e2b/sdk/node_modules (`scripts/deps --test`).
"""

import argparse
import functools
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
SDK_DIR = HERE / "sdk"
SUITE = SDK_DIR / "conformance.test.mjs"
# The code interpreter's own behaviour (kernels, charts, contexts): our service only.
INTERPRETER_SUITE = SDK_DIR / "interpreter.test.mjs"
FAKE_SERVER = HERE / "fake_e2b_server.py"
NODE = "/usr/bin/node"
API_KEY = "e2b_test_key"
START_TIMEOUT_S = 60
SUITE_TIMEOUT_S = 600
STOP_TIMEOUT_S = 15


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(ready, what, process, timeout=START_TIMEOUT_S):
    """Polls `ready()` until it is true; fails if `process` exits first."""
    deadline = time.monotonic() + timeout
    while not ready():
        if process.poll() is not None:
            raise SystemExit(f"{what}: the server exited with status {process.returncode}")
        if time.monotonic() > deadline:
            raise SystemExit(f"{what}: not ready after {timeout} s")
        time.sleep(0.05)


class FakeE2B:
    """tests/e2b/fake_e2b_server.py on a free port."""

    def __init__(self, mode, workdir):
        port_file = Path(workdir) / "port"
        command = [sys.executable, str(FAKE_SERVER), "--port-file", str(port_file), "--api-key", API_KEY]
        if mode == "debug":
            command.append("--debug-ports")
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        wait_until(port_file.exists, "fake E2B", self.process)
        self.base_url = f"http://127.0.0.1:{int(port_file.read_text())}"


class Service:
    """Our service with its E2B-compatible API: one port for control and data
    plane (routed by E2b-Sandbox-Id/E2b-Sandbox-Port), and in mode debug also
    127.0.0.1:49999 and :49983."""

    def __init__(self, mode, workdir):
        binary = os.environ.get("CODEEXEC_BIN")
        if not binary:
            raise SystemExit("--target service needs CODEEXEC_BIN (the codeexec binary)")
        port, compat_port = free_port(), free_port()
        env = {**os.environ, "PORT": str(port), "E2B_COMPAT_PORT": str(compat_port),
               "WARM_POOL_SIZE": "0"}
        if mode == "debug":
            env["E2B_COMPAT_DEBUG_PORTS"] = "true"
        self.process = subprocess.Popen([binary], env=env, cwd=workdir, stdout=subprocess.DEVNULL)
        wait_until(lambda: self._ready(port), "codeexec", self.process)
        self.base_url = f"http://127.0.0.1:{compat_port}"

    @staticmethod
    def _ready(port):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as response:
                return response.status == 200
        except (OSError, urllib.error.URLError):
            return False


TARGETS = {"fake": FakeE2B, "service": Service}


def stop(process):
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def stop_group(process):
    """Stops `process` and its children (node --test runs the file in a child)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        try:
            process.wait(STOP_TIMEOUT_S)
            break
        except subprocess.TimeoutExpired:
            continue
    process.wait()


def suite_env(mode, base_url, report):
    # Nothing of the caller's E2B configuration may leak in (a real key, a domain).
    env = {k: v for k, v in os.environ.items() if not k.startswith("E2B_")}
    env["E2B_CONFORMANCE_REPORT"] = str(report)
    if mode == "debug":
        env["E2B_DEBUG"] = "true"
    else:
        env.update(E2B_API_KEY=API_KEY, E2B_API_URL=base_url, E2B_SANDBOX_URL=base_url)
    return env


def print_report(label, report):
    print(f"== {label}: cases")
    for case in report["cases"]:
        detail = case.get("reason") or case.get("error") or ""
        print(f"  {case['result']:4}  {case['name']}" + (f"  ({detail})" if detail else ""))
    print(f"== {label}: SDK calls")
    for call in report["calls"]:
        print(f"  {call['call']} → {call['result']}")


@functools.cache
def node_has_option(option):
    """Whether this Node.js accepts `option` (Debian 12's Node 18 lacks some of newer ones')."""
    probe = subprocess.run([NODE, option, "-e", "0"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return probe.returncode == 0


@functools.cache
def sdk_loader_options():
    """Node options the SDK needs here: none where it imports as published, else the
    loader of its ES module builds (tests/e2b/sdk/esm-loader.mjs: Node 18 cannot load
    its CommonJS builds)."""
    probe = subprocess.run([NODE, "--input-type=module", "-e", "await import('@e2b/code-interpreter')"],
                           cwd=SDK_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if probe.returncode == 0:
        return ()
    if "ERR_REQUIRE_ESM" not in probe.stderr:
        raise SystemExit(f"the E2B SDK does not load:\n{probe.stderr}")
    return ("--experimental-loader", str(SDK_DIR / "esm-loader.mjs"))


def report_passed(report):
    return all(case["result"] in ("pass", "skip") for case in report["cases"])


def run_suite(suite, mode, server, report_file):
    """Runs the suite; returns True if it passed.

    The SDK leaves its 60 s request timer running after a 404/502 answer (runCode
    throws before clearing it), which keeps Node alive after the last case. Newer
    Node ends the run with --test-force-exit; on Node 18 the suite's `after` hook
    writes the report, and a run still alive STOP_TIMEOUT_S after that is stopped and
    judged by the report instead of its exit status.
    """
    env = suite_env(mode, server.base_url, report_file)
    node = [NODE, *sdk_loader_options()]
    if node_has_option("--test-force-exit"):
        result = subprocess.run([*node, "--test", "--test-force-exit", str(suite)], cwd=SDK_DIR, env=env,
                                timeout=SUITE_TIMEOUT_S)
        return result.returncode == 0
    process = subprocess.Popen([*node, "--test", str(suite)], cwd=SDK_DIR, env=env, start_new_session=True)
    deadline = time.monotonic() + SUITE_TIMEOUT_S
    reported_at = None
    while process.poll() is None:
        now = time.monotonic()
        if reported_at is None and report_file.exists():
            reported_at = now
        if now > deadline or (reported_at is not None and now - reported_at > STOP_TIMEOUT_S):
            stop_group(process)
            break
        time.sleep(0.1)
    if process.returncode == 0:
        return True
    return reported_at is not None and report_passed(json.loads(report_file.read_text()))


def run_mode(target, mode):
    suites = [SUITE] + ([INTERPRETER_SUITE] if target == "service" else [])
    passed = True
    with tempfile.TemporaryDirectory(prefix="e2b-conformance-") as workdir:
        server = TARGETS[target](mode, workdir)
        try:
            for suite in suites:
                report_file = Path(workdir) / f"report-{suite.stem}.json"
                passed = run_suite(suite, mode, server, report_file) and passed
                label = f"{target}/{mode}/{suite.stem}"
                if report_file.exists():
                    print_report(label, json.loads(report_file.read_text()))
                else:
                    print(f"== {label}: the suite wrote no report")
        finally:
            stop(server.process)
    return passed


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", choices=sorted(TARGETS), required=True)
    parser.add_argument("--mode", choices=("debug", "url"), action="append",
                        help="repeatable; default: both")
    args = parser.parse_args()
    if not (SDK_DIR / "node_modules" / "@e2b" / "code-interpreter").is_dir():
        raise SystemExit(f"the SDK is not installed in {SDK_DIR}/node_modules: run scripts/deps --test")
    failed = [mode for mode in args.mode or ["debug", "url"] if not run_mode(args.target, mode)]
    if failed:
        print(f"conformance FAILED against {args.target} in mode(s): {', '.join(failed)}")
        return 1
    print(f"conformance passed against {args.target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
