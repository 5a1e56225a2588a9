"""The notification outbox: written in the same transaction as the event, delivered later."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from commcredits.adapters.db.schema import notifications


class NotificationRepo:
    def __init__(self, conn: sa.Connection, postgres: bool) -> None:
        self.conn = conn
        self.postgres = postgres

    def add(self, *, id: str, tenant_id: str, kind: str, recipient: str, subject: str, body: str,
            dedupe: str, status: str, now: datetime) -> bool:
        """Queue one message; False when the same (dedupe, recipient) was queued before."""
        exists = self.conn.scalar(sa.select(sa.func.count()).select_from(notifications).where(
            notifications.c.tenant_id == tenant_id, notifications.c.dedupe == dedupe,
            notifications.c.recipient == recipient))
        if exists:
            return False
        self.conn.execute(sa.insert(notifications).values(
            id=id, tenant_id=tenant_id, kind=kind, recipient=recipient, subject=subject,
            body=body, dedupe=dedupe, status=status, attempts=0, next_attempt_at=now,
            created_at=now))
        return True

    def add_many(self, tenant_id: str, rows: list[dict[str, object]], now: datetime) -> int:
        """Queue several messages of one tenant (keys as :meth:`add`'s, without ``now``) in
        one statement, skipping any (dedupe, recipient) queued before; returns rows added."""
        dedupes = sorted({str(r["dedupe"]) for r in rows})
        seen: set[tuple[str, str]] = set()
        for start in range(0, len(dedupes), 500):
            q = sa.select(notifications.c.dedupe, notifications.c.recipient).where(
                notifications.c.tenant_id == tenant_id,
                notifications.c.dedupe.in_(dedupes[start:start + 500]))
            seen.update((d, r) for d, r in self.conn.execute(q))
        fresh = []
        for r in rows:
            key = (str(r["dedupe"]), str(r["recipient"]))
            if key not in seen:
                seen.add(key)
                fresh.append({**r, "tenant_id": tenant_id, "attempts": 0,
                              "next_attempt_at": now, "created_at": now})
        if fresh:
            self.conn.execute(sa.insert(notifications), fresh)
        return len(fresh)

    def list(self, tenant_id: str) -> list[sa.Row]:
        q = (sa.select(notifications).where(notifications.c.tenant_id == tenant_id)
             .order_by(notifications.c.created_at.desc(), notifications.c.id))
        return list(self.conn.execute(q))

    def claim_due(self, now: datetime, limit: int) -> list[sa.Row]:
        """Messages due for a delivery attempt; locked (SKIP LOCKED) on PostgreSQL."""
        q = (sa.select(notifications)
             .where(notifications.c.status.in_(("pending", "retrying")),
                    notifications.c.next_attempt_at <= now)
             .order_by(notifications.c.next_attempt_at, notifications.c.id).limit(limit))
        if self.postgres:
            q = q.with_for_update(skip_locked=True)
        return list(self.conn.execute(q))

    def mark_sent(self, note_id: str, now: datetime) -> None:
        self.conn.execute(sa.update(notifications).where(notifications.c.id == note_id).values(
            status="sent", sent_at=now, attempts=notifications.c.attempts + 1, last_error=None))

    def mark_failed(self, note_id: str, error: str, retry_at: datetime) -> None:
        self.conn.execute(sa.update(notifications).where(notifications.c.id == note_id).values(
            status="retrying", attempts=notifications.c.attempts + 1, last_error=error[:500],
            next_attempt_at=retry_at))
