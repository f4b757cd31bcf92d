"""Where a benchmark's CPU went, from /proc (Linux): the server's processes, the database's, so that
a figure can say whether the machine itself was the limit (its cores all busy) rather than the server."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # gone meanwhile
        return None
    return text.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces


def cpu_seconds(pids: list[int]) -> float:
    """CPU time of `pids`, with that of their children already ended: PostgreSQL's postmaster reaps
    the backends of closed connections, and their time moves into its own children's count."""
    total = 0
    for pid in pids:
        fields = _stat(pid)
        if fields is not None:
            # utime, stime (all threads), cutime, cstime (children waited for)
            total += int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
    return total / TICKS


def process_tree(root: int) -> list[int]:
    """`root` and every process below it (uvicorn's worker processes under `ssc serve`)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := _stat(int(entry.name))) is not None:
            parents[int(entry.name)] = int(fields[1])
    found, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier]
        found += frontier
    return found


def named(command: str) -> list[int]:
    """The processes whose command name is `command` (e.g. every PostgreSQL backend)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == command:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@dataclass
class CpuWatch:
    """Cores used by each group of processes between `start()` and `stop()`. A group is found again
    at each end, so that processes started during the run count; one that ended meanwhile is counted
    through its parent's children's time (PostgreSQL's backends through the postmaster's)."""

    groups: dict[str, Callable[[], list[int]]]

    def start(self) -> None:
        self._began = time.monotonic()
        self._before = {name: cpu_seconds(processes()) for name, processes in self.groups.items()}

    def stop(self) -> dict[str, float]:
        wall = time.monotonic() - self._began
        return {
            name: (cpu_seconds(processes()) - self._before[name]) / wall
            for name, processes in self.groups.items()
        }
