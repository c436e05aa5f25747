"""What every scenario of bench/suite.py gets: the binary, the mode, and the service's
environment for the benchmark."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from lib.service import Service

# The benchmark's service: limits raised so that they do not shape the load (10,000
# sockets, 200 sandboxes of one key, no rate limit), a Python-only warm pool of 2.
BENCH_ENV = {
    "LOG_LEVEL": "warn",
    "WARM_POOL_SIZE": "2",
    "WARM_POOL_LANGUAGES": "python",
    "MAX_CONNECTIONS": "20000",
    "MAX_SANDBOXES": "1024",
    "MAX_CONCURRENT_EXECUTIONS": "1024",
    "KEY_MAX_CONCURRENT_EXECUTIONS": "1024",
    "KEY_MAX_SANDBOXES": "1024",
    "KEY_RATE_LIMIT_RPS": "0",
}
# As for the tests: CODEEXEC_TEST_ENV='{"SANDBOX_UID_BASE": "..."}' keeps a run on a
# shared host inside its own uid range.
BENCH_ENV |= {k: str(v) for k, v in json.loads(os.environ.get("CODEEXEC_TEST_ENV") or "{}").items()}
POOL_SIZE = int(BENCH_ENV["WARM_POOL_SIZE"])


@dataclass
class Context:
    binary: Path
    quick: bool
    soak_seconds: float
    notes: list[str] = field(default_factory=list)

    def service(self, **env: str) -> Service:
        """A fresh service (one per scenario, so that none inherits another's heap)."""
        return Service(self.binary, BENCH_ENV | env)

    def note(self, scenario: str, text: str) -> None:
        print(f"  NOTE: {text}")
        self.notes.append(f"{scenario}: {text}")
