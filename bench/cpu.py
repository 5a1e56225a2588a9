"""Where a load's CPU goes, from ``/proc``: the server's processes, PostgreSQL's, the clients'.

``Meter`` reads each group's user + system time at the start and the end of a measured
window (processes that come and go inside it count for what they used while seen); the
client processes report their own ``os.times()`` (``bench.loadgen.Load.cpu_s``), since they
end with the window.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of one process (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += _children(p)
    return out


def postgres_pids(url: str | None = None, application: str | None = None) -> list[int]:
    """PostgreSQL's processes: all of them, or (with ``url`` and ``application``) the
    backends of clients that named themselves ``application`` and the server's own
    background processes (WAL writer, checkpointer...), not other clients' backends."""
    if url is not None and application is not None:
        import psycopg
        plain = url.replace("postgresql+psycopg://", "postgresql://", 1).split("?", 1)[0]
        with psycopg.connect(plain, autocommit=True) as conn:
            rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s "
                                "OR backend_type <> 'client backend'", (application,))
            return [int(r[0]) for r in rows]
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    out.append(int(entry.name))
            except OSError:
                continue
    return out


@dataclass
class Meter:
    """CPU seconds per group over a window: ``start()``, the load, ``stop()``."""
    server_pid: int
    url: str | None = None  # with ``application``: only the server's own backends count
    application: str | None = None
    used: dict[str, float] = field(default_factory=dict)
    _first: dict[int, float] = field(default_factory=dict)
    _groups: dict[int, str] = field(default_factory=dict)

    def _read(self) -> dict[int, float]:
        seen: dict[int, float] = {}
        for pid in tree(self.server_pid):
            self._groups.setdefault(pid, "server")
            seen[pid] = _cpu_s(pid)
        for pid in postgres_pids(self.url, self.application):
            self._groups.setdefault(pid, "postgresql")
            seen[pid] = _cpu_s(pid)
        return seen

    def start(self) -> None:
        self._first = self._read()

    def stop(self) -> dict[str, float]:
        last = self._read()
        self.used = {"server": 0.0, "postgresql": 0.0}
        for pid, cpu in last.items():
            self.used[self._groups[pid]] += cpu - self._first.get(pid, 0.0)
        return self.used


def machine_busy_s() -> float:
    """CPU seconds the whole machine has been busy (all cores, /proc/stat)."""
    parts = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    values = [int(x) for x in parts]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / _TICK
