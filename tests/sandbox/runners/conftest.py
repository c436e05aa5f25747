"""Fixtures shared by the runner tests."""

import pytest

import harness
from harness import Runner


@pytest.fixture
def start(tmp_path):
    """start(language, **kwargs) -> a Runner, closed after the test."""
    runners = []

    def start_runner(language, **kwargs):
        runner = Runner(language, tmp_path, **kwargs)
        runners.append(runner)
        return runner

    yield start_runner
    for runner in runners:
        runner.close()
    while harness.FIFOS:
        harness.FIFOS.pop().release()
