"""What the harness asks of Linux: more open files, and CPU time per process from ``/proc``.

CPU time is read from ``/proc/<pid>/stat`` (utime + stime of every live
process in the tree, so a multi-worker server counts all its workers), and a
core's busy time from ``/proc/stat``, which shows how much of the server's
core other programs took during a run.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def raise_open_files_limit() -> int:
    """Raise this process's soft limit on open files to the hard limit; returns it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of ``pid``, or 0.0 once it has exited."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    # The command name (field 2) may hold spaces; the fields after it are fixed.
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def tree_pids(pid: int) -> list[int]:
    """``pid`` and all its live descendants."""
    found = [pid]
    index = 0
    while index < len(found):
        parent = found[index]
        index += 1
        for task in Path(f"/proc/{parent}/task").glob("*/children"):
            try:
                found.extend(int(child) for child in task.read_text().split())
            except OSError:
                continue
    return found


def tree_cpu_seconds(pid: int) -> float:
    return sum(process_cpu_seconds(p) for p in tree_pids(pid))


def core_busy_seconds(core: int) -> float | None:
    """Seconds core ``core`` spent not idle since boot (None if /proc/stat lacks it)."""
    label = f"cpu{core} "
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(label):
            values = [int(v) for v in line.split()[1:]]
            idle = values[3] + (values[4] if len(values) > 4 else 0)
            busy = sum(values[:8]) - idle  # guest time is already inside user time
            return busy / _TICKS
    return None


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def memory_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024 / 1024
    return 0.0
