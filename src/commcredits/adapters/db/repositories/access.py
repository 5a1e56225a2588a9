"""API keys, console admins, idempotency records."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from commcredits.adapters.db.schema import admins, api_keys, idempotency_keys


class AccessRepo:
    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    def add_api_key(self, key_id: str, key_hash: str, role: str, tenant_id: str | None,
                    now: datetime) -> None:
        self.conn.execute(sa.insert(api_keys).values(id=key_id, key_hash=key_hash, role=role,
                                                     tenant_id=tenant_id, created_at=now))

    def api_key_by_hash(self, key_hash: str) -> sa.Row | None:
        return self.conn.execute(sa.select(api_keys).where(api_keys.c.key_hash == key_hash)).first()

    def add_admin(self, admin_id: str, tenant_id: str, email: str, password_hash: str, role: str,
                  now: datetime) -> None:
        self.conn.execute(sa.insert(admins).values(id=admin_id, tenant_id=tenant_id, email=email,
                                                   password_hash=password_hash, role=role,
                                                   created_at=now))

    def admin(self, admin_id: str) -> sa.Row | None:
        return self.conn.execute(sa.select(admins).where(admins.c.id == admin_id)).first()

    def admin_emails(self, tenant_id: str, roles: frozenset[str]) -> list[str]:
        """Console admins of a tenant holding one of ``roles``, oldest first."""
        return list(self.conn.scalars(sa.select(admins.c.email).where(
            admins.c.tenant_id == tenant_id, admins.c.role.in_(sorted(roles)))
            .order_by(admins.c.created_at, admins.c.id)))

    def admin_by_email(self, email: str) -> sa.Row | None:
        return self.conn.execute(sa.select(admins).where(
            sa.func.lower(admins.c.email) == email.lower())).first()

    # -- idempotency -----------------------------------------------------------------------
    def claim_idempotency_key(self, scope: str, key: str, request_hash: str,
                              now: datetime) -> bool:
        """Insert the key inside the current transaction. False if it already exists.

        On PostgreSQL a concurrent claim of the same key waits on the unique index until the
        first transaction ends, so only one request ever does the work.
        """
        try:
            with self.conn.begin_nested():
                self.conn.execute(sa.insert(idempotency_keys).values(
                    scope=scope, key=key, request_hash=request_hash, created_at=now))
            return True
        except sa.exc.IntegrityError:
            return False

    def idempotency_record(self, scope: str, key: str) -> sa.Row | None:
        return self.conn.execute(sa.select(idempotency_keys).where(
            idempotency_keys.c.scope == scope, idempotency_keys.c.key == key)).first()

    def complete_idempotency_key(self, scope: str, key: str, status_code: int,
                                 body: str) -> None:
        self.conn.execute(sa.update(idempotency_keys).where(
            idempotency_keys.c.scope == scope, idempotency_keys.c.key == key)
            .values(status_code=status_code, response_body=body))
