"""Payment attempts: the durable record of every charge, written before the gateway is
called."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from commcredits.adapters.db.schema import payment_attempts as pa
from commcredits.adapters.db.schema import recharges


class PaymentRepo:
    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    def add(self, **values: Any) -> None:
        self.conn.execute(pa.insert().values(**values))

    def add_keyed(self, **values: Any) -> bool:
        """Insert an attempt carrying a client key unless the tenant already has one with
        that key; False then. On PostgreSQL an insert racing an uncommitted one with the
        same key waits for it: it inserts if that one rolled back, else does nothing (and
        the row is visible to this transaction's next statement)."""
        dialect = self.conn.dialect.name
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        q = insert(pa).values(**values).on_conflict_do_nothing(
            index_elements=["tenant_id", "client_key"]).returning(pa.c.id)
        return self.conn.execute(q).first() is not None  # (rowcount is -1 here on psycopg)

    def get(self, attempt_id: str) -> sa.Row | None:
        return self.conn.execute(sa.select(pa).where(pa.c.id == attempt_id)).first()

    def by_client_key(self, tenant_id: str, client_key: str) -> sa.Row | None:
        return self.conn.execute(sa.select(pa).where(
            pa.c.tenant_id == tenant_id, pa.c.client_key == client_key)).first()

    def for_recharge(self, recharge_id: str) -> sa.Row | None:
        """The attempt of a recharge that has not been settled yet (pending), if any."""
        return self.conn.execute(sa.select(pa).where(
            pa.c.recharge_id == recharge_id, pa.c.status == "pending")).first()

    def update(self, attempt_id: str, **values: Any) -> None:
        self.conn.execute(pa.update().where(pa.c.id == attempt_id).values(**values))

    def with_status(self, status: str, before: datetime | None = None) -> list[sa.Row]:
        q = sa.select(pa).where(pa.c.status == status)
        if before is not None:
            q = q.where(pa.c.updated_at <= before)
        return list(self.conn.execute(q.order_by(pa.c.created_at, pa.c.id)))

    def all(self) -> list[sa.Row]:
        return list(self.conn.execute(sa.select(pa).order_by(pa.c.created_at, pa.c.id)))

    def recharge(self, recharge_id: str) -> sa.Row:
        """The auto-recharge an attempt pays for."""
        row = self.conn.execute(sa.select(recharges).where(recharges.c.id == recharge_id)).first()
        assert row is not None
        return row
