"""Percentiles and sample sets, in milliseconds."""

from __future__ import annotations

import statistics


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (no interpolation: a reported p99 is a measured value)."""
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


class Samples:
    def __init__(self, name: str) -> None:
        self.name = name
        self.ms: list[float] = []

    def add_ns(self, ns: int) -> None:
        self.ms.append(ns / 1e6)

    @property
    def median(self) -> float:
        return statistics.median(self.ms)

    def p(self, pct: float) -> float:
        return percentile(self.ms, pct)

    def row(self) -> str:
        if not self.ms:
            return f"{self.name:58} {'-':>9} {'-':>9} {'-':>9} {0:>5}"
        return (f"{self.name:58} {self.median:9.3f} {self.p(95):9.3f} "
                f"{min(self.ms):9.3f} {len(self.ms):>5}")
