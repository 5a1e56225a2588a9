"""Operator admins: the people who sign in to the operator console (``/operator``)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from commcredits.adapters.db.schema import operator_admins, rate_decks, recharges


class OperatorAdminRepo:
    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    def add(self, admin_id: str, email: str, password_hash: str, now: datetime) -> None:
        self.conn.execute(sa.insert(operator_admins).values(
            id=admin_id, email=email, password_hash=password_hash, created_at=now))

    def get(self, admin_id: str) -> sa.Row | None:
        return self.conn.execute(sa.select(operator_admins)
                                 .where(operator_admins.c.id == admin_id)).first()

    def by_email(self, email: str) -> sa.Row | None:
        return self.conn.execute(sa.select(operator_admins).where(
            sa.func.lower(operator_admins.c.email) == email.lower())).first()

    # -- the operator's overview -----------------------------------------------------------
    def decks(self) -> list[sa.Row]:
        """Every currency's current rate deck: currency, version, rows, imported_at."""
        return list(self.conn.execute(sa.select(rate_decks).order_by(rate_decks.c.currency)))

    def failed_recharges(self, limit: int = 100) -> list[sa.Row]:
        """The newest auto-recharges that failed or were capped, every tenant."""
        return list(self.conn.execute(
            sa.select(recharges).where(recharges.c.status.in_(("failed", "capped")))
            .order_by(recharges.c.updated_at.desc()).limit(limit)))
