"""Where a benchmark's CPU went, from /proc (Linux): the server's processes, the database's, so that
a figure can say whether the machine itself was the limit (its cores all busy) rather than the server."""

from __future__ import annotations

import os
import time
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
    total = 0
    for pid in pids:
        fields = _stat(pid)
        if fields is not None:
            total += int(fields[11]) + int(fields[12])  # utime, stime (all threads)
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
    """Cores used by each group of processes between `start()` and `stop()`."""

    groups: dict[str, list[int]]

    def start(self) -> None:
        self._began = time.monotonic()
        self._before = {name: cpu_seconds(pids) for name, pids in self.groups.items()}

    def stop(self) -> dict[str, float]:
        wall = time.monotonic() - self._began
        return {name: (cpu_seconds(pids) - self._before[name]) / wall for name, pids in self.groups.items()}
