"""Clocks. The service asks its clock for ``now`` once per unit of work.

``SystemClock`` is wall time. ``ManualClock`` (``COMMCREDITS_MANUAL_CLOCK=1``, test
environments) keeps "now" in the database so that every instance of the service agrees; it
only moves when the operator sets it (``POST /v1/clock``), and never backwards.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

import sqlalchemy as sa

from commcredits.adapters.db.schema import clock as clock_table


class Clock(Protocol):
    manual: bool

    def now(self, conn: sa.Connection) -> datetime: ...


class SystemClock:
    manual = False

    def now(self, conn: sa.Connection) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    manual = True

    def now(self, conn: sa.Connection) -> datetime:
        row = conn.execute(sa.select(clock_table.c.now).where(clock_table.c.id == 1)).first()
        if row is not None:
            return row.now
        start = datetime.now(UTC).replace(microsecond=0)
        conn.execute(sa.insert(clock_table).values(id=1, now=start))
        return start

    def ensure(self, conn: sa.Connection) -> None:
        """Create the clock row (at wall time) so that reads never have to write it."""
        self.now(conn)

    def set(self, conn: sa.Connection, now: datetime) -> None:
        conn.execute(sa.update(clock_table).where(clock_table.c.id == 1).values(now=now))


class SteppedClock:
    """A clock this process moves forward by hand, never backwards, and keeps in memory
    (unlike ``ManualClock``, nothing is written to the database and no other instance sees
    it). ``commcredits demo --usage`` replays a month of calls through the real charging
    path with it, each request at the moment it would have happened."""

    manual = False

    def __init__(self, start: datetime) -> None:
        self._now = start

    def now(self, conn: sa.Connection) -> datetime:
        return self._now

    def advance_to(self, at: datetime) -> None:
        if at > self._now:
            self._now = at
