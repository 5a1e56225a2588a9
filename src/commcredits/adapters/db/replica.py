"""Reads that may be served by a read replica (``COMMCREDITS_DB_REPLICA``).

Report and export reads (usage reports and their files, the minute-pools report) go to a
PostgreSQL streaming replica when one is configured, so a year's export never competes
with call setup on the primary. Everything that touches money stays on the primary.

``Reads.pick()`` says where one read goes and how fresh its data is:

* replica: ``as_of`` is the replica's ``pg_last_xact_replay_timestamp()`` (the commit time
  of the last transaction it replayed; right after a restart, before it replayed anything,
  the time it started);
* primary (no replica configured, or the replica does not answer): ``as_of`` is the
  primary's ``now()``; when a configured replica failed, ``fallback`` is True, a warning is
  logged and ``on_fallback`` is called (the app counts it in /metrics).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from commcredits.adapters.db.uow import Database

log = logging.getLogger(__name__)

_REPLAYED = sa.text("SELECT pg_is_in_recovery(), "
                    "coalesce(pg_last_xact_replay_timestamp(), pg_postmaster_start_time())")


@dataclass(frozen=True)
class Source:
    db: Database
    as_of: datetime
    replica: bool  # served by the replica
    fallback: bool = False  # a replica is configured but did not answer

    @property
    def as_of_text(self) -> str:
        """``as_of`` as ISO 8601 UTC to the second, e.g. ``2030-03-01T12:00:00Z``."""
        return self.as_of.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")

    @property
    def name(self) -> str:
        return "replica" if self.replica else "primary"


class Reads:
    def __init__(self, primary: Database, replica: Database | None = None,
                 on_fallback: Callable[[BaseException], None] | None = None) -> None:
        self.primary = primary
        self.replica = replica
        self.on_fallback = on_fallback

    @classmethod
    def connect(cls, primary: Database, url: str | None,
                on_fallback: Callable[[BaseException], None] | None = None) -> Reads:
        if not url:
            return cls(primary, None, on_fallback)
        if not url.startswith("postgres"):
            raise ValueError("COMMCREDITS_DB_REPLICA must be a PostgreSQL URL")
        from commcredits.adapters.db.engine import make_engine
        engine = make_engine(_with_connect_timeout(url), pool_size=5)
        return cls(primary, Database(engine, primary.clock), on_fallback)

    def pick(self) -> Source:
        if self.replica is not None:
            try:
                with self.replica.engine.connect() as conn:
                    standby, replayed = conn.execute(_REPLAYED).one()
                return Source(self.replica, replayed, replica=bool(standby))
            except sa.exc.DBAPIError as e:
                log.warning("read replica unavailable, reading from the primary: %s",
                            str(e).splitlines()[0])
                if self.on_fallback is not None:
                    self.on_fallback(e)
                return Source(self.primary, self._primary_now(), replica=False, fallback=True)
        return Source(self.primary, self._primary_now(), replica=False)

    def _primary_now(self) -> datetime:
        with self.primary.engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                return conn.execute(sa.text("SELECT now()")).scalar_one()
        return datetime.now(UTC)

    def dispose(self) -> None:
        if self.replica is not None:
            self.replica.engine.dispose()


def _with_connect_timeout(url: str) -> str:
    """A replica that is down must not hold a report up: give up connecting after 2 s."""
    parsed = sa.engine.make_url(url)
    if "connect_timeout" in parsed.query:
        return url
    return parsed.update_query_dict({"connect_timeout": "2"}).render_as_string(
        hide_password=False)
