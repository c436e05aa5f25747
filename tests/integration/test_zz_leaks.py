"""Runs last (file order): after everything above, nothing may be left behind
by the session instance: no process with a sandbox host uid, no sbx-* cgroup
anywhere under /sys/fs/cgroup, /health sandboxes.live == 0, and the service
still healthy."""

import pytest

from helpers import assert_nothing_left, sandbox_cgroups, sandbox_processes

pytestmark = pytest.mark.lifecycle


def test_no_sandbox_left_after_suite(service):
    assert_nothing_left(service, timeout=10)
    assert sandbox_processes() == []
    assert sandbox_cgroups() == []
    assert service.live_sandboxes() == 0


def test_service_still_healthy_after_suite(service):
    body = service.health()
    assert body.get("status") == "ok", body
    assert service.proc.poll() is None, "the session service died during the suite"
