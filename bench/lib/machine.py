"""The machine and its processes: a header for the report, CPU time, memory and fds
read from /proc."""

from __future__ import annotations

import os
import platform
import resource
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
PYTHON = "/usr/bin/python3"


def machine_facts() -> list[str]:
    facts = []
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    facts.append(f"cpus: {os.cpu_count()} online, {len(os.sched_getaffinity(0))} usable; {model}")
    facts.append(f"kernel: {platform.release()}; python {platform.python_version()}")
    facts.append(load_line())
    try:
        commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                capture_output=True, text=True, timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5).stdout.strip()
        facts.append(f"codeexec commit: {commit}{' (+ uncommitted changes)' if dirty else ''}")
    except (OSError, subprocess.SubprocessError):
        pass
    return facts


def print_header() -> None:
    print("== machine")
    for fact in machine_facts():
        print("  " + fact)
    if os.getloadavg()[0] > (os.cpu_count() or 1):
        print(f"  WARNING: the 1-min load average exceeds the {os.cpu_count()} cores: other work "
              "competes for the CPU and the numbers below are inflated; rerun when idle.")


def load_line() -> str:
    one, five, fifteen = os.getloadavg()
    running = "?"
    try:
        for line in Path("/proc/stat").read_text().splitlines():
            if line.startswith("procs_running"):
                running = line.split()[1]
    except OSError:
        pass
    psi = ""
    try:
        some = Path("/proc/pressure/cpu").read_text().splitlines()[0]
        psi = "; cpu pressure " + " ".join(some.split()[1:3])
    except (OSError, IndexError):
        pass
    return f"load average: {one:.2f} {five:.2f} {fifteen:.2f}; procs running now: {running}{psi}"


def task_times(pids: list[int]) -> tuple[int, int]:
    """Summed on-CPU time (ns, from schedstat) and context switches of every thread of
    these processes."""
    cpu = switches = 0
    for pid in pids:
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                cpu += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_text().split()[0])
                for line in Path(f"/proc/{pid}/task/{tid}/status").read_text().splitlines():
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt_switches")):
                        switches += int(line.split()[1])
            except (OSError, ValueError, IndexError):
                continue
    return cpu, switches


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        except (OSError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


class CpuMeter:
    """On-CPU time and context switches of some processes over a stretch of the run."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.start = task_times(pids)

    def per(self, n: int) -> tuple[float, float]:
        """(us of CPU, context switches) per one of n operations since the start."""
        cpu, switches = task_times(self.pids)
        return (cpu - self.start[0]) / n / 1e3, (switches - self.start[1]) / n


def status_value(pid: int, field: str) -> int:
    """The number of a /proc/PID/status field (VmRSS and VmHWM are in KiB, Threads a
    count); 0 when the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def rss_kib(pid: int) -> int:
    return status_value(pid, "VmRSS")


def peak_rss_kib(pid: int) -> int:
    """The high-water mark of the resident set since the process started."""
    return status_value(pid, "VmHWM")


def threads(pid: int) -> int:
    return status_value(pid, "Threads")


def thread_names(pid: int) -> dict[str, int]:
    """How many threads of `pid` carry each name (caf.actor, sbx-clone, …)."""
    names: dict[str, int] = {}
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/comm") as f:
                name = f.read().strip()
        except OSError:
            continue
        names[name] = names.get(name, 0) + 1
    return dict(sorted(names.items()))


def open_fds(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def pss_kib(pid: int) -> int:
    """Proportional set size: shared pages split among the processes that map them."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def mem_available_kib() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1])
    return 0


def raise_nofile(want: int) -> int:
    """Raises this process's fd limit (the service started from it inherits it); root
    may raise the hard limit too. Returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), max(hard, want)))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(want, hard)), hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]
