"""The audit log: appended to, read, never changed (the database refuses UPDATE and DELETE)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from commcredits.adapters.db.schema import audit_log


class AuditRepo:
    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    def append(self, **values: Any) -> None:
        self.conn.execute(sa.insert(audit_log).values(**values))

    def entries(self, tenant_id: str | None, *, limit: int | None = None,
                before_id: int | None = None, action: str | None = None,
                targets: list[str] | None = None) -> list[sa.Row]:
        """Newest first. ``tenant_id`` None: every tenant's and the operator-wide entries."""
        q = sa.select(audit_log).order_by(audit_log.c.id.desc())
        if tenant_id is not None:
            q = q.where(audit_log.c.tenant_id == tenant_id)
        if before_id is not None:
            q = q.where(audit_log.c.id < before_id)
        if action is not None:
            q = q.where(audit_log.c.action == action)
        if targets is not None:
            q = q.where(audit_log.c.target.in_(targets))
        if limit is not None:
            q = q.limit(limit)
        return list(self.conn.execute(q))
