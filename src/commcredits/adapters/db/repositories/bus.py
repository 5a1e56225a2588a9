"""The message bus's tables: the domain events outbox and the ingest consumers' status."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from commcredits.adapters.db.schema import (
    domain_events,
    event_capture,
    ingest_consumers,
    usage_records,
)

COUNTS = ("rated", "duplicate", "blocked", "dead")


class BusRepo:
    def __init__(self, conn: sa.Connection, postgres: bool) -> None:
        self.conn = conn
        self.postgres = postgres

    # -- the events outbox ------------------------------------------------------------------
    def add_event(self, *, tenant_id: str, dedupe: str, kind: str, data: str,
                  occurred_at: datetime) -> bool:
        """Queue one event; False when the same (tenant, dedupe) was queued before."""
        exists = self.conn.scalar(sa.select(sa.func.count()).select_from(domain_events).where(
            domain_events.c.tenant_id == tenant_id, domain_events.c.dedupe == dedupe))
        if exists:
            return False
        self.conn.execute(sa.insert(domain_events).values(
            tenant_id=tenant_id, dedupe=dedupe, kind=kind, data=data, occurred_at=occurred_at))
        return True

    def add_events(self, tenant_id: str, kind: str, items: list[tuple[str, str]],
                   occurred_at: datetime) -> int:
        """Queue several events of one tenant and kind, ``(dedupe, data)`` each, in one
        statement, skipping those queued before; returns how many were added."""
        dedupes = sorted({d for d, _ in items})
        seen: set[str] = set()
        for start in range(0, len(dedupes), 500):
            seen.update(self.conn.scalars(sa.select(domain_events.c.dedupe).where(
                domain_events.c.tenant_id == tenant_id,
                domain_events.c.dedupe.in_(dedupes[start:start + 500]))))
        fresh = []
        for dedupe, data in items:
            if dedupe not in seen:
                seen.add(dedupe)
                fresh.append({"tenant_id": tenant_id, "dedupe": dedupe, "kind": kind,
                              "data": data, "occurred_at": occurred_at})
        if fresh:
            self.conn.execute(sa.insert(domain_events), fresh)
        return len(fresh)

    def claim_unpublished(self, limit: int) -> list[sa.Row[Any]]:
        """The oldest events not yet published, with the usage record of a settled call;
        locked (SKIP LOCKED) on PostgreSQL, so two publishers never take the same rows."""
        e, u = domain_events, usage_records
        q = (sa.select(e.c.tenant_id, e.c.dedupe, e.c.kind, e.c.data, e.c.occurred_at,
                       *[c.label(f"u_{c.name}") for c in u.c])
             .select_from(e.outerjoin(u, e.c.ref == u.c.id))
             .where(e.c.published_at.is_(None))
             .order_by(e.c.occurred_at, e.c.tenant_id, e.c.dedupe).limit(limit))
        if self.postgres:
            q = q.with_for_update(of=e, skip_locked=True)
        return list(self.conn.execute(q))

    def mark_published(self, keys: list[tuple[str, str]], now: datetime) -> None:
        if keys:
            self.conn.execute(
                sa.update(domain_events)
                .where(domain_events.c.tenant_id == sa.bindparam("k_tenant"),
                       domain_events.c.dedupe == sa.bindparam("k_dedupe"))
                .values(published_at=now),
                [{"k_tenant": t, "k_dedupe": d} for t, d in keys])

    def unpublished(self) -> int:
        return int(self.conn.scalar(sa.select(sa.func.count()).select_from(domain_events)
                                    .where(domain_events.c.published_at.is_(None))) or 0)

    def capture_calls(self, now: datetime) -> bool:
        """Turn on the capture of settled calls (trigger on usage_records); True if it was
        off until now."""
        if self.conn.scalar(sa.select(sa.func.count()).select_from(event_capture)):
            return False
        self.conn.execute(sa.insert(event_capture).values(id=1, since=now))
        return True

    # -- ingest consumers --------------------------------------------------------------------
    def report_ingest(self, stream: str, durable: str, subject: str, counts: dict[str, int],
                      pending: int, ack_pending: int, now: datetime) -> None:
        """Add a batch's counts to the consumer's row and note its lag."""
        key = (ingest_consumers.c.stream == stream) & (ingest_consumers.c.durable == durable)
        values = {c: getattr(ingest_consumers.c, c) + counts.get(c, 0) for c in COUNTS}
        done = self.conn.execute(sa.update(ingest_consumers).where(key).values(
            subject=subject, pending=pending, ack_pending=ack_pending, updated_at=now,
            **values)).rowcount
        if not done:
            self.conn.execute(sa.insert(ingest_consumers).values(
                stream=stream, durable=durable, subject=subject, pending=pending,
                ack_pending=ack_pending, updated_at=now,
                **{c: counts.get(c, 0) for c in COUNTS}))

    def ingest_status(self) -> list[sa.Row[Any]]:
        return list(self.conn.execute(sa.select(ingest_consumers)
                                      .order_by(ingest_consumers.c.stream,
                                                ingest_consumers.c.durable)))
