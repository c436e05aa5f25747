"""Where the service is installed or cloned never matters to the sandboxes: the
runners are staged under RUNTIME_DIR (sandbox/runner_stage.hpp), so a checkout in a
directory the sandbox's user cannot search (/root is 0700 on Debian) works, and a
RUNTIME_DIR the sandboxes cannot reach is refused at start with a message naming it."""

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from helpers import BASE_ENV, binary_path, main_result, stdout_of


def staged_dir(svc) -> Path:
    record = next(r for r in svc.log_records() if r.get("msg") == "local sandbox backend ready")
    return Path(record["stagedAt"])


@pytest.fixture
def open_dir():
    """A directory every user can search (pytest's tmp_path is under a 0700 one)."""
    d = Path(tempfile.mkdtemp(prefix="codeexec-paths-", dir="/tmp"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def private_dir(open_dir):
    """A root-owned 0700 directory, as /root is on Debian."""
    d = open_dir / "private"
    d.mkdir(mode=0o700)
    os.chmod(d, 0o700)
    return d


def test_runners_under_an_unsearchable_directory_work(service_factory, private_dir, open_dir):
    runners = private_dir / "clone" / "build" / "runners"
    shutil.copytree(binary_path().parent / "runners", runners)
    runtime = open_dir / "runtime"
    svc = service_factory({"RUNNER_DIR": str(runners), "RUNTIME_DIR": str(runtime)})
    staged = staged_dir(svc)
    assert staged.parent.parent == runtime, staged
    assert (staged / "python_runner.py").stat().st_mode & 0o777 == 0o644
    for language, code, printed, value in (("python", "print('py')\n6*7", "py\n", "42"),
                                           ("javascript", "console.log('js'); 6*7", "js\n", "42")):
        body = svc.execute(code, language, timeout_ms=20000)
        r = body["result"]
        assert r["status"] == "ok", r
        assert stdout_of(r) == printed, r
        assert main_result(r)["text"] == value, r
    assert svc.stop(timeout=30) == 0
    assert not staged.parent.exists(), "the staged runners outlived the service"
    assert list(runtime.iterdir()) == [runtime / ".sweep.lock"], list(runtime.iterdir())


def test_an_unreachable_runtime_dir_is_refused_with_the_path(private_dir):
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **BASE_ENV,
           "RUNTIME_DIR": str(private_dir / "runtime")}
    done = subprocess.run([str(binary_path())], env=env, stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=60, cwd="/tmp")
    assert done.returncode != 0, done.stderr[-2000:]
    assert f"{private_dir} is mode 0700: others cannot search it" in done.stderr, done.stderr[-2000:]
    assert "RUNTIME_DIR" in done.stderr
    assert "Docker" not in done.stderr, "namespace advice for a permissions problem"


def test_runners_left_by_a_killed_service_are_swept_at_start(service_factory, open_dir):
    runtime = open_dir / "runtime"
    stale = runtime / "instance-stale1"
    (stale / "runners").mkdir(parents=True)
    (stale / ".lock").touch()
    svc = service_factory({"RUNTIME_DIR": str(runtime)})
    assert not stale.exists(), "an instance directory whose lock nobody holds was kept"
    assert staged_dir(svc).exists()


def test_a_service_killed_outright_leaves_its_copy_to_the_next_start(service_factory, open_dir):
    runtime = open_dir / "runtime"
    first = service_factory({"RUNTIME_DIR": str(runtime)}, name="first")
    staged = staged_dir(first)
    first.kill()  # SIGKILL: no destructor runs
    assert staged.exists()
    service_factory({"RUNTIME_DIR": str(runtime)}, name="second")
    assert not staged.parent.exists(), "the killed service's copy survived the next start"
