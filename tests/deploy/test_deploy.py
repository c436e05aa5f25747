"""Deployment files: docker/Dockerfile, docker/docker-compose.yml, docker/seccomp.json,
docker/entrypoint.sh, docker/healthcheck.sh, docs/deploy/codeexec.service, scripts/dev.

There is no Docker engine in CI: the image is not built here. What is checked instead:
the Dockerfile with two linters (dockerfile-utils from npm, and check_dockerfile.py for
best practices and this project's rules), the compose file's structure, the seccomp
profile compiled by libseccomp the way runc does, the real binary serving requests
under that profile, the runtime package list against `ldd` of the binary, the
healthcheck against live servers, the entrypoint's cgroup remount in a private cgroup
namespace, the systemd unit with systemd-analyze, the shell scripts with shellcheck.

    /usr/bin/python3 -m pytest tests/deploy            # CODEEXEC_BIN=build/codeexec by default
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import check_dockerfile as cd

REPO = cd.REPO
DOCKERFILE = REPO / "docker" / "Dockerfile"
COMPOSE = REPO / "docker" / "docker-compose.yml"
SECCOMP = REPO / "docker" / "seccomp.json"
HEALTHCHECK = REPO / "docker" / "healthcheck.sh"
ENTRYPOINT = REPO / "docker" / "entrypoint.sh"
UNIT = REPO / "docs" / "deploy" / "codeexec.service"
SECCOMP_EXEC = Path(__file__).with_name("seccomp_exec.py")
LINTER = Path(__file__).with_name("node_modules") / ".bin" / "dockerfile-utils"
SYSTEM_PYTHON = "/usr/bin/python3"


def binary() -> Path:
    return Path(os.environ.get("CODEEXEC_BIN", str(REPO / "build" / "codeexec"))).resolve()


def need_root():
    if os.geteuid() != 0:
        pytest.skip("needs root (the sandbox launcher, mount namespaces)")


def final_stage() -> cd.Stage:
    return cd.stages_of(cd.parse_dockerfile(DOCKERFILE.read_text())[0])[-1]


# ----------------------------------------------------------------------------
# Dockerfile: the two linters
# ----------------------------------------------------------------------------

def test_dockerfile_utils_lint_is_clean():
    """dockerfile-utils (the Dockerfile language server's validator): no error, no warning."""
    if not LINTER.exists():
        pytest.fail(f"{LINTER} is missing: run scripts/deps --test (npm install in tests/deploy)")
    out = subprocess.run(["node", str(LINTER), "lint", "--json", str(DOCKERFILE)],
                         capture_output=True, text=True, timeout=60)
    diagnostics = json.loads(out.stdout)
    assert diagnostics == [], json.dumps(diagnostics, indent=1)
    assert out.returncode == 0


def test_dockerfile_utils_catches_errors(tmp_path):
    """The linter is really running: a broken Dockerfile fails it."""
    if not LINTER.exists():
        pytest.fail(f"{LINTER} is missing: run scripts/deps --test")
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM debian:12\nCOPY --chmodx=0755 a b\nFOOBAR x\n")
    out = subprocess.run(["node", str(LINTER), "lint", "--json", str(bad)],
                         capture_output=True, text=True, timeout=60)
    messages = [d["message"] for d in json.loads(out.stdout)]
    assert out.returncode == 1
    assert any("chmodx" in m for m in messages) and any("FOOBAR" in m for m in messages), messages


def test_repo_files_pass_the_checker():
    port = cd.env_defaults(final_stage()).get("PORT")
    findings = cd.check_dockerfile(DOCKERFILE, REPO) + cd.check_compose(COMPOSE, DOCKERFILE, port)
    assert not findings, "\n".join(map(str, findings))


def test_checker_cli_exit_code():
    out = subprocess.run([SYSTEM_PYTHON, str(Path(cd.__file__))], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


BAD_DOCKERFILE = """\
# syntax=docker/dockerfile:1
FROM ubuntu AS base
MAINTAINER someone
RUN apt-get update
RUN apt-get install curl
RUN apt update && apt-get upgrade -y
RUN sudo make && cd /src
WORKDIR src
ADD local.txt /opt/
COPY missing.txt secret.key /opt
COPY --from=nowhere /x /y
ENV LEGACY value
ARG API_TOKEN=abc123
FROBNICATE now
EXPOSE 70000
CMD echo one
CMD ["echo", "two"]
FROM base:latest
FROM debian:latest AS base
HEALTHCHECK CMD curl -f localhost
HEALTHCHECK NONE
"""


def test_checker_rules_fire(tmp_path):
    (tmp_path / "local.txt").write_text("x")
    (tmp_path / "secret.key").write_text("x")
    (tmp_path / ".dockerignore").write_text("*.key\n")
    df = tmp_path / "Dockerfile"
    df.write_text(BAD_DOCKERFILE)
    findings = cd.check_dockerfile(df, tmp_path, project_rules=False)
    rules = {f.rule for f in findings}
    expected = {f"DF{n:03d}" for n in range(1, 23)} - {"DF023"}
    assert expected <= rules, f"rules that did not fire: {sorted(expected - rules)}\n" + \
        "\n".join(map(str, findings))
    by_rule = {}
    for f in findings:
        by_rule.setdefault(f.rule, []).append(f)
    assert any("missing.txt" in f.message for f in by_rule["DF013"])
    assert any(".dockerignore" in f.message for f in by_rule["DF013"])
    assert any("latest" in f.message for f in by_rule["DF003"])


def test_checker_parse_errors(tmp_path):
    df = tmp_path / "Dockerfile"
    df.write_text('FROM debian:12\nRUN <<EOF\necho hi\nEOF\nENTRYPOINT ["a", \nCMD ["x"] \\\n')
    rules = {f.rule for f in cd.check_dockerfile(df, tmp_path, project_rules=False)}
    assert "DF023" in rules and "DF017" in rules


def test_checker_project_rules_fire(tmp_path):
    df = tmp_path / "Dockerfile"
    df.write_text(
        "FROM debian:12 AS build\n"
        "RUN scripts/deps\n"
        "RUN scripts/build build-release -DCMAKE_BUILD_TYPE=Debug\n"
        "FROM debian:12-slim\n"
        "RUN apt-get update && apt-get install -y --no-install-recommends python3 "
        "&& rm -rf /var/lib/apt/lists/*\n"
        "ENV PORT=4001\n"
        "EXPOSE 4002\n"
        "STOPSIGNAL SIGKILL\n"
        'HEALTHCHECK CMD ["/bin/true"]\n')
    findings = cd.check_dockerfile(df, REPO)
    rules = {f.rule for f in findings}
    assert {"CE001", "CE002", "CE003", "CE004"} <= rules, "\n".join(map(str, findings))
    ce001 = [f.message for f in findings if f.rule == "CE001"]
    assert any("scripts/build build-release -DCMAKE_BUILD_TYPE=Release" in m for m in ce001)
    assert any("nodejs" in f.message for f in findings if f.rule == "CE003")


def test_compose_rules_fire(tmp_path):
    bad = tmp_path / "docker-compose.yml"
    bad.write_text(
        "services:\n"
        "  codeexec:\n"
        "    build: .\n"
        "    enviroment: {}\n"
        "    environment:\n"
        "      PORT: '4000'\n"
        "    ports: ['4000:5000']\n"
        "    security_opt: ['seccomp=./nope.json']\n"
        "    stop_grace_period: 5s\n")
    findings = cd.check_compose(bad, DOCKERFILE, "4000")
    rules = {f.rule for f in findings}
    assert {f"CC{n:03d}" for n in range(2, 10)} <= rules, "\n".join(map(str, findings))
    assert any("enviroment" in f.message for f in findings)
    bad.write_text("services: [\n")
    assert {f.rule for f in cd.check_compose(bad, DOCKERFILE, "4000")} == {"CC001"}


def test_compose_privileged_alternative(tmp_path):
    """`privileged: true` replaces the security options and the cgroup namespace."""
    text = COMPOSE.read_text()
    text = re.sub(r"\n    security_opt:\n(      .*\n)+", "\n", text)
    text = text.replace("    cgroup: private\n", "    privileged: true\n")
    alt = tmp_path / "docker-compose.yml"
    alt.write_text(text)
    shutil.copy(SECCOMP, tmp_path / "seccomp.json")
    findings = cd.check_compose(alt, tmp_path / "Dockerfile", "4000")
    assert {f.rule for f in findings} <= {"CC009"}, "\n".join(map(str, findings))


@pytest.mark.parametrize("path,excluded", [
    (".git/config", True), ("build/codeexec", True), ("build-release/x", True),
    (".env", True), (".env.example", False), ("core/x.cpp", False),
    ("tests/deploy/node_modules/a.js", True), ("sandbox/runners/__pycache__/a.pyc", True),
    ("scripts/deps", False), ("docker/entrypoint.sh", False), ("CMakeLists.txt", False),
])
def test_dockerignore(path, excluded):
    assert cd.ignored(path, cd.load_dockerignore(REPO)) is excluded


def test_dockerignore_negation():
    rules = [(False, cd._pattern_regex("docs")), (True, cd._pattern_regex("docs/keep.md"))]
    assert cd.ignored("docs/x.md", rules) and not cd.ignored("docs/keep.md", rules)


# ----------------------------------------------------------------------------
# The image's runtime packages
# ----------------------------------------------------------------------------

# In debian:12-slim already (Priority: required, or needed by apt/dpkg).
BASE_IMAGE_PACKAGES = {"libc6", "libgcc-s1", "libstdc++6"}


def dependency_closure(packages: set[str]) -> set[str]:
    """`packages` and what they depend on (Depends, Pre-Depends), as dpkg knows it on
    this machine: what apt installs along with them in the image."""
    seen, todo = set(), list(packages)
    while todo:
        pkg = todo.pop()
        if pkg in seen:
            continue
        seen.add(pkg)
        r = subprocess.run(["dpkg-query", "-W", "-f=${Pre-Depends}, ${Depends}", pkg],
                           capture_output=True, text=True)
        for clause in r.stdout.split(","):
            # "a (>= 1) | b": the first alternative is what apt picks.
            name = clause.split("|")[0].split("(")[0].split(":")[0].strip()
            if name:
                todo.append(name)
    return seen


def test_runtime_libraries_are_installed_by_the_image():
    """Every shared library of the binary comes from a package the run stage installs,
    a dependency of one, or the base image. Fails when someone links a new library:
    add its runtime package to docker/Dockerfile."""
    exe = binary()
    if not exe.exists():
        pytest.fail(f"{exe} not found: build first (scripts/test does) or set CODEEXEC_BIN")
    out = subprocess.run(["ldd", str(exe)], capture_output=True, text=True, check=True).stdout
    assert "not found" not in out, out
    libs = re.findall(r"=>\s+(/\S+)", out)
    assert libs, out
    packages = {}
    for lib in libs:
        real = os.path.realpath(lib)
        owner = None
        for candidate in dict.fromkeys([lib, real, re.sub(r"^/lib/", "/usr/lib/", lib),
                                        re.sub(r"^/usr/lib/", "/lib/", lib)]):
            r = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
            if r.returncode == 0:
                owner = r.stdout.split(":")[0].strip()
                break
        assert owner, f"no Debian package owns {lib}"
        packages[owner] = lib
    installed = dependency_closure(set(cd.apt_install_packages(final_stage()))) | BASE_IMAGE_PACKAGES
    missing = {p: l for p, l in packages.items() if p not in installed}
    assert not missing, f"docker/Dockerfile's run stage lacks {missing}"


# ----------------------------------------------------------------------------
# The outer seccomp profile
# ----------------------------------------------------------------------------

REQUIRED_DENIED = {
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module", "reboot",
    "swapon", "swapoff", "acct", "bpf", "perf_event_open", "userfaultfd", "keyctl", "add_key",
    "request_key", "open_by_handle_at", "name_to_handle_at", "iopl", "ioperm", "lookup_dcookie",
    "quotactl", "syslog", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
    "vhangup", "nfsservctl", "_sysctl", "uselib", "ustat", "sysfs", "fanotify_init",
    "io_uring_setup", "io_uring_enter", "io_uring_register", "kcmp", "process_vm_readv",
    "process_vm_writev", "ptrace",
}
LAUNCHER_NEEDS = {"clone", "clone3", "unshare", "mount", "umount2", "pivot_root", "sethostname",
                  "setns", "setgroups", "setresuid", "setresgid", "mount_setattr"}


def profile_sets():
    profile = json.loads(SECCOMP.read_text())
    denied, allowed = [], []
    for rule in profile["syscalls"]:
        (allowed if rule["action"] == "SCMP_ACT_ALLOW" else denied).extend(rule["names"])
    return profile, denied, allowed


def test_seccomp_profile_shape():
    profile, denied, allowed = profile_sets()
    assert profile["defaultAction"] == "SCMP_ACT_ALLOW"
    assert profile["archMap"] == [{"architecture": "SCMP_ARCH_X86_64",
                                   "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]}]
    for rule in profile["syscalls"]:
        assert set(rule) <= {"names", "action", "errnoRet", "comment", "args"}, rule
        assert rule["action"] in ("SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO")
        if rule["action"] == "SCMP_ACT_ERRNO":
            assert rule["errnoRet"] == 1  # EPERM
    assert len(denied) == len(set(denied)), "a name is denied twice"
    assert len(allowed) == len(set(allowed)), "a name is allowed twice"
    assert not REQUIRED_DENIED - set(denied), sorted(REQUIRED_DENIED - set(denied))
    assert not LAUNCHER_NEEDS - set(allowed), sorted(LAUNCHER_NEEDS - set(allowed))
    assert not set(denied) & set(allowed), sorted(set(denied) & set(allowed))


def test_seccomp_names_exist():
    """Every name is a real x86_64 syscall for libseccomp (a typo would be silently
    ignored by runc and leave the call allowed)."""
    import seccomp
    _, denied, allowed = profile_sets()
    unknown = [n for n in denied + allowed if seccomp.resolve_syscall(seccomp.Arch.X86_64, n) < 0]
    assert not unknown, unknown


def service_syscalls() -> set[str]:
    """System calls the service's own code makes by name (SYS_x, ::x(...)), as far as
    libseccomp knows the name."""
    import seccomp
    names = set()
    for sub in ("core", "actors", "http", "sandbox", "e2b"):
        for src in list((REPO / sub).glob("*.cpp")) + list((REPO / sub).glob("*.hpp")):
            text = src.read_text(errors="replace")
            names |= set(re.findall(r"\bSYS_([a-z0-9_]+)", text))
            names |= set(re.findall(r"(?<![\w>.])::([a-z0-9_]+)\s*\(", text))
    names |= set(re.findall(r"(?<![\w>.])::([a-z0-9_]+)\s*\(", (REPO / "main.cpp").read_text()))
    return {n for n in names if seccomp.resolve_syscall(seccomp.Arch.X86_64, n) >= 0}


def test_seccomp_denies_nothing_the_service_calls():
    used = service_syscalls()
    assert {"clone3", "pivot_root", "mount"} <= used, used  # the scan works
    _, denied, _ = profile_sets()
    clash = used & set(denied)
    assert not clash, f"the service calls {sorted(clash)}, which docker/seccomp.json denies"


def test_seccomp_compiles_like_runc():
    out = subprocess.run([SYSTEM_PYTHON, str(SECCOMP_EXEC), "--pfc", str(SECCOMP)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "unknown syscalls skipped" not in out.stderr
    for arch in ("x86_64", "x86", "x32"):
        assert f"# filter for arch {arch} " in out.stdout
    assert 'syscall "open_by_handle_at"' in out.stdout
    assert 'syscall "clone"' not in out.stdout  # allowed by default: no rule


def test_seccomp_profile_applies():
    """Under the profile: keyctl gets EPERM, a normal call works, the filter is on."""
    code = ("import ctypes, os\n"
            "libc = ctypes.CDLL(None, use_errno=True)\n"
            "r = libc.syscall(250, 0, -3, 0)\n"  # keyctl(GET_KEYRING_ID, SESSION)
            "print(r, ctypes.get_errno(), os.getpid() > 0)\n"
            "print(open('/proc/self/status').read().split('Seccomp:')[1].split()[0])\n")
    out = subprocess.run([SYSTEM_PYTHON, str(SECCOMP_EXEC), "--no-new-privs", str(SECCOMP), "--",
                          SYSTEM_PYTHON, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    first, mode = out.stdout.splitlines()
    assert first == "-1 1 True" and mode == "2", out.stdout


# ----------------------------------------------------------------------------
# The real binary under the outer profile, probed by the container's healthcheck
# ----------------------------------------------------------------------------

def post_json(port: int, path: str, body: dict, timeout: float = 60) -> dict:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


def run_healthcheck(env: dict, timeout: float = 15) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(HEALTHCHECK)], env={"PATH": "/usr/bin:/bin", **env},
                          capture_output=True, text=True, timeout=timeout)


def test_service_runs_under_the_outer_profile(tmp_path):
    """The seccomp layer of docker-compose.yml (profile + no-new-privileges) does not
    stop the sandbox: the binary starts, runs Python, JavaScript and bash, answers the
    image's healthcheck and stops cleanly on SIGTERM. (Docker's capabilities, AppArmor
    and /proc masking are not reproduced here.)"""
    need_root()
    exe = binary()
    if not exe.exists():
        pytest.fail(f"{exe} not found: build first or set CODEEXEC_BIN")
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "PORT": "0", "HOST": "127.0.0.1",
           "LOG_LEVEL": "info", "MAX_SANDBOXES": "8", "SANDBOX_UID_BASE": "240000"}
    log = tmp_path / "service.log"
    with open(log, "w") as log_file:
        proc = subprocess.Popen([SYSTEM_PYTHON, str(SECCOMP_EXEC), "--no-new-privs", str(SECCOMP),
                                 "--", str(exe)], env=env, cwd=tmp_path, stdin=subprocess.DEVNULL,
                                stdout=log_file, stderr=subprocess.STDOUT)
        try:
            port = None
            deadline = time.monotonic() + 60
            while port is None and time.monotonic() < deadline:
                assert proc.poll() is None, f"exited with {proc.returncode}:\n{log.read_text()}"
                for line in log.read_text().splitlines():
                    try:
                        rec = json.loads(line)
                    except json.JSONDecodeError:
                        continue
                    if rec.get("msg") == "listening" and isinstance(rec.get("port"), int):
                        port = rec["port"]
                time.sleep(0.05)
            assert port, f"no listening line:\n{log.read_text()}"
            status = Path(f"/proc/{proc.pid}/status").read_text()
            assert re.search(r"^Seccomp:\s+2$", status, re.M), "the profile is not loaded"
            assert re.search(r"^NoNewPrivs:\s+1$", status, re.M)

            cases = [("python", "print(6*7)", "42\n"), ("javascript", "console.log(6*7)", "42\n"),
                     ("bash", "echo $((6*7))", "42\n")]
            for language, code, want in cases:
                out = post_json(port, "/execute", {"code": code, "language": language})
                result = out["result"]
                assert result["status"] == "ok" and "".join(result["logs"]["stdout"]) == want, \
                    f"{language}: {json.dumps(out)}\n{log.read_text()}"

            hc = run_healthcheck({"PORT": str(port), "HOST": "0.0.0.0"})
            assert hc.returncode == 0, hc.stderr
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise
    assert code == 0, log.read_text()


# ----------------------------------------------------------------------------
# docker/healthcheck.sh against stand-in servers
# ----------------------------------------------------------------------------

class _Handler(BaseHTTPRequestHandler):
    status = 200
    seen: list = []

    def do_GET(self):  # noqa: N802
        type(self).seen.append(self.path)
        body = b'{"status":"ok"}'
        self.send_response(self.status)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def http_server():
    servers = []

    def start(status: int):
        handler = type("H", (_Handler,), {"status": status, "seen": []})
        srv = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return srv.server_address[1], handler
    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def test_healthcheck_ok(http_server):
    port, handler = http_server(200)
    r = run_healthcheck({"PORT": str(port)})
    assert r.returncode == 0, r.stderr
    assert handler.seen == ["/health"]


def test_healthcheck_unhealthy_status(http_server):
    port, _ = http_server(503)
    r = run_healthcheck({"PORT": str(port), "HOST": "127.0.0.1"})
    assert r.returncode == 1 and "503" in r.stderr


def test_healthcheck_nothing_listening():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the probe runs
    r = run_healthcheck({"PORT": str(port)})
    assert r.returncode == 1 and "cannot connect" in r.stderr


def test_healthcheck_silent_server():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)  # accepts (backlog) but never answers
        t0 = time.monotonic()
        r = run_healthcheck({"PORT": str(s.getsockname()[1]), "HEALTHCHECK_READ_TIMEOUT": "1"})
        assert r.returncode == 1 and "no answer" in r.stderr
        assert time.monotonic() - t0 < 10


# ----------------------------------------------------------------------------
# docker/entrypoint.sh: the cgroup remount, in a throw-away mount + cgroup namespace
# ----------------------------------------------------------------------------

EXEC_LINE = 'exec /usr/local/bin/codeexec "$@"'


def entrypoint_copy(tmp_path: Path) -> Path:
    text = ENTRYPOINT.read_text()
    assert EXEC_LINE in text
    copy = tmp_path / "entrypoint.sh"
    copy.write_text(text.replace(EXEC_LINE, 'exec "$@"'))
    return copy


def first_cgroup_mount() -> str:
    out = subprocess.run(["findmnt", "-rn", "-t", "cgroup,cgroup2", "-o", "TARGET"],
                         capture_output=True, text=True).stdout.split()
    if not out or not shutil.which("unshare"):
        pytest.skip("no cgroup mount or no unshare")
    return out[0]


@pytest.mark.parametrize("cgroupns,expect", [(True, "rw"), (False, "ro")])
def test_entrypoint_remounts_cgroupfs_only_in_a_private_cgroupns(tmp_path, cgroupns, expect):
    need_root()
    target = first_cgroup_mount()
    script = entrypoint_copy(tmp_path)
    inner = (f"mount -o remount,bind,ro {target} && "
             f"exec bash {script} findmnt -rn -o VFS-OPTIONS --mountpoint {target}")
    flags = ["--mount", "--propagation", "private"] + (["--cgroup"] if cgroupns else [])
    r = subprocess.run(["unshare", *flags, "bash", "-c", inner], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    options = r.stdout.strip().split(",")
    assert options[0] == expect, (r.stdout, r.stderr)
    if not cgroupns:
        assert "not private" in r.stderr
    # The host's mount is untouched.
    host = subprocess.run(["findmnt", "-rn", "-o", "VFS-OPTIONS", "--mountpoint", target],
                          capture_output=True, text=True).stdout
    assert host.startswith("rw"), host


def test_entrypoint_can_be_told_not_to_remount(tmp_path):
    need_root()
    target = first_cgroup_mount()
    script = entrypoint_copy(tmp_path)
    inner = (f"mount -o remount,bind,ro {target} && CODEEXEC_CGROUP_REMOUNT=0 "
             f"exec bash {script} findmnt -rn -o VFS-OPTIONS --mountpoint {target}")
    r = subprocess.run(["unshare", "--mount", "--propagation", "private", "--cgroup",
                        "bash", "-c", inner], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and r.stdout.startswith("ro"), (r.stdout, r.stderr)


# ----------------------------------------------------------------------------
# systemd unit, shell scripts
# ----------------------------------------------------------------------------

def test_systemd_unit_verifies(tmp_path):
    """systemd-analyze verify: no unknown key, no bad value (it prints warnings but
    exits 0, so any output fails). ExecStart points at the built binary here."""
    analyze = shutil.which("systemd-analyze")
    if not analyze:
        pytest.skip("systemd-analyze not installed")
    exe = binary()
    if not exe.exists():
        pytest.fail(f"{exe} not found")
    text = UNIT.read_text()
    assert "ExecStart=/usr/local/bin/codeexec\n" in text
    unit = tmp_path / "codeexec.service"
    unit.write_text(text.replace("/usr/local/bin/codeexec", str(exe)))
    r = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and not r.stdout.strip() and not r.stderr.strip(), r.stdout + r.stderr


def test_systemd_unit_settings():
    settings = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            k, _, v = line.partition("=")
            settings.setdefault(k.strip(), v.strip())
    assert settings["EnvironmentFile"] == "-/etc/codeexec/env"
    assert settings["Delegate"] == "yes"
    assert settings["KillMode"] == "mixed"
    assert settings["TimeoutStopSec"] == "30"
    assert settings["Restart"] == "on-failure"
    for breaking in ("PrivateUsers", "ProtectKernelTunables", "ProtectControlGroups",
                     "RestrictNamespaces", "ProtectHostname", "SystemCallFilter",
                     "MemoryDenyWriteExecute", "ProtectKernelLogs", "ProcSubset", "ProtectProc"):
        assert breaking not in settings, f"{breaking} breaks the sandbox"


def test_shellcheck():
    shellcheck = shutil.which("shellcheck")
    if not shellcheck:
        pytest.fail("shellcheck is missing: run scripts/deps --test")
    scripts = [REPO / "scripts" / "dev", ENTRYPOINT, HEALTHCHECK]
    r = subprocess.run([shellcheck, *map(str, scripts)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    for s in scripts:
        assert os.access(s, os.X_OK), f"{s} is not executable"


def test_dev_script_change_filter():
    """scripts/dev's relevant(): sources and runners count, build trees and editor
    droppings do not."""
    fn = re.search(r"^relevant\(\) \{.*?^\}", (REPO / "scripts" / "dev").read_text(), re.M | re.S)
    assert fn
    cases = {"./core/config.cpp": 0, "./http/routes.hpp": 0, "./CMakeLists.txt": 0,
             "./tests/CMakeLists.txt": 0, "./sandbox/runners/python_runner.py": 0,
             "./cmake/FindCAF.cmake": 0, "./core/.config.cpp.swp": 1, "./core/config.cpp~": 1,
             "./README.md": 1, "./docs/x.md": 1, "./scripts/dev": 1}
    script = fn.group(0) + "\n" + "\n".join(
        f'relevant {p!r}; echo "{p} $?"' for p in cases)
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True).stdout
    got = {line.rsplit(" ", 1)[0]: int(line.rsplit(" ", 1)[1]) for line in out.splitlines()}
    assert got == cases
