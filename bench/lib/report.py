"""The suite's result table: one Row per scenario and measure, printed as text,
Markdown and JSON."""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path

from lib.stats import percentile

COLUMNS = ("scenario", "metric", "median", "p95", "p99", "throughput", "peak RSS",
           "baseline", "ratio", "target", "verdict")


@dataclass
class Row:
    scenario: str
    metric: str
    unit: str = "ms"          # of median, p95, p99 and baseline
    median: float | None = None  # or the single value of a measure that has no spread
    p95: float | None = None
    p99: float | None = None
    throughput: float | None = None
    throughput_unit: str = "/s"
    peak_rss_kib: int | None = None  # the service's VmHWM over the scenario
    baseline: float | None = None    # the baseline's value of the compared figure
    baseline_unit: str | None = None  # when not `unit` (a throughput)
    ratio: float | None = None
    target: str = ""
    met: bool | None = None          # None: no target

    @classmethod
    def timed(cls, scenario: str, metric: str, ms: list[float], sequential: bool = True,
              **fields: object) -> Row:
        """Median, p95 and p99 of these times; a sequential loop's throughput is one
        request after the other (the sum of the times), else pass throughput=."""
        if sequential and ms:
            fields.setdefault("throughput", len(ms) / (sum(ms) / 1000))
        return cls(scenario, metric, median=statistics.median(ms) if ms else None,
                   p95=percentile(ms, 95) if ms else None, p99=percentile(ms, 99) if ms else None,
                   **fields)

    @property
    def verdict(self) -> str:
        return "" if self.met is None else ("MET" if self.met else "NOT MET")

    def cells(self) -> list[str]:
        def num(v: float | None, unit: str = "") -> str:
            if v is None:
                return "-"
            text = f"{v:.3f}" if abs(v) < 10 else f"{v:.1f}" if abs(v) < 1000 else f"{v:.0f}"
            return f"{text} {unit}".rstrip()

        rss = "-" if self.peak_rss_kib is None else f"{self.peak_rss_kib / 1024:.0f} MiB"
        baseline_unit = self.unit if self.baseline_unit is None else self.baseline_unit
        return [self.scenario, self.metric, num(self.median, self.unit), num(self.p95),
                num(self.p99), num(self.throughput, self.throughput_unit), rss,
                num(self.baseline, baseline_unit), "-" if self.ratio is None else f"{self.ratio:.2f}x",
                self.target or "-", self.verdict or "-"]


def text_table(rows: list[Row]) -> str:
    table = [list(COLUMNS)] + [row.cells() for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
    right = {2, 3, 4, 5, 6, 7, 8}  # numbers
    lines = []
    for n, line in enumerate(table):
        lines.append("  ".join(cell.rjust(w) if i in right else cell.ljust(w)
                               for i, (cell, w) in enumerate(zip(line, widths))).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for row in rows:
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in row.cells()) + " |")
    return "\n".join(lines)


def write(rows: list[Row], header: list[str], notes: list[str], json_path: Path | None,
          markdown_path: Path | None) -> None:
    if json_path:
        json_path.write_text(json.dumps({"machine": header, "rows": [asdict(r) | {"verdict": r.verdict}
                                                                      for r in rows],
                                         "notes": notes}, indent=2) + "\n")
    if markdown_path:
        body = "\n".join(f"- {line}" for line in header) + "\n\n" + markdown_table(rows) + "\n"
        if notes:
            body += "\n" + "\n".join(f"- {note}" for note in notes) + "\n"
        markdown_path.write_text(body)
