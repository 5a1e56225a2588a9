"""API keys, console admins, idempotency records."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from commcredits.adapters.db.schema import (
    admins,
    api_keys,
    console_sessions,
    idempotency_keys,
    login_failures,
)


class AccessRepo:
    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    def add_api_key(self, key_id: str, key_hash: str, role: str, tenant_id: str | None,
                    now: datetime) -> None:
        self.conn.execute(sa.insert(api_keys).values(id=key_id, key_hash=key_hash, role=role,
                                                     tenant_id=tenant_id, created_at=now))

    def api_key_by_hash(self, key_hash: str) -> sa.Row | None:
        return self.conn.execute(sa.select(api_keys).where(api_keys.c.key_hash == key_hash)).first()

    def api_key(self, key_id: str) -> sa.Row | None:
        return self.conn.execute(sa.select(api_keys).where(api_keys.c.id == key_id)).first()

    def api_keys(self, tenant_id: str | None = None) -> list[sa.Row]:
        """Every key (of one tenant when ``tenant_id`` is given), newest first."""
        q = sa.select(api_keys).order_by(api_keys.c.created_at.desc(), api_keys.c.id)
        if tenant_id is not None:
            q = q.where(api_keys.c.tenant_id == tenant_id)
        return list(self.conn.execute(q))

    def revoke_api_key(self, key_id: str, at: datetime) -> None:
        self.conn.execute(sa.update(api_keys).where(api_keys.c.id == key_id,
                                                    api_keys.c.revoked_at.is_(None))
                          .values(revoked_at=at))

    def touch_api_key(self, key_id: str, at: datetime, stale_before: datetime) -> None:
        """Record a use, unless one at or after ``stale_before`` is already recorded (so
        several processes write it at most once per interval between them)."""
        self.conn.execute(sa.update(api_keys).where(
            api_keys.c.id == key_id,
            sa.or_(api_keys.c.last_used_at.is_(None), api_keys.c.last_used_at < stale_before))
            .values(last_used_at=at))

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

    # -- console sessions ------------------------------------------------------------------
    def add_session(self, **values: Any) -> None:
        self.conn.execute(sa.insert(console_sessions).values(**values))

    def session(self, session_id: str, realm: str = "tenant") -> sa.Row | None:
        return self.conn.execute(sa.select(console_sessions).where(
            console_sessions.c.id == session_id, console_sessions.c.realm == realm)).first()

    def sessions(self, admin_id: str, realm: str = "tenant") -> list[sa.Row]:
        return list(self.conn.execute(sa.select(console_sessions).where(
            console_sessions.c.admin_id == admin_id, console_sessions.c.realm == realm,
            console_sessions.c.revoked_at.is_(None))
            .order_by(console_sessions.c.created_at)))

    def revoke_sessions(self, at: datetime, *, session_id: str | None = None,
                        admin_id: str | None = None, realm: str = "tenant") -> None:
        q = sa.update(console_sessions).where(console_sessions.c.revoked_at.is_(None),
                                              console_sessions.c.realm == realm)
        if session_id is not None:
            q = q.where(console_sessions.c.id == session_id)
        if admin_id is not None:
            q = q.where(console_sessions.c.admin_id == admin_id)
        self.conn.execute(q.values(revoked_at=at))

    # -- sign-in throttle -------------------------------------------------------------------
    def recent_failures(self, keys: list[str], since: datetime) -> dict[str, tuple[int, datetime]]:
        """Per key with failures after ``since``: (how many, the oldest of them)."""
        f = login_failures
        return {k: (int(n), oldest) for k, n, oldest in self.conn.execute(
            sa.select(f.c.key, sa.func.count(), sa.func.min(f.c.at))
            .where(f.c.key.in_(keys), f.c.at > since).group_by(f.c.key))}

    def add_failures(self, keys: list[str], at: datetime) -> None:
        self.conn.execute(sa.insert(login_failures), [{"key": k, "at": at} for k in keys])

    def forget_failures(self, key: str | None = None, *, before: datetime | None = None) -> None:
        """Delete one key's failures, or every failure older than ``before``."""
        q = sa.delete(login_failures)
        if key is not None:
            q = q.where(login_failures.c.key == key)
        if before is not None:
            q = q.where(login_failures.c.at < before)
        self.conn.execute(q)

    def set_password_hash(self, admin_id: str, password_hash: str) -> None:
        self.conn.execute(sa.update(admins).where(admins.c.id == admin_id)
                          .values(password_hash=password_hash))

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

    def admins_of(self, tenant_id: str) -> list[tuple[str, str]]:
        """(email, role) of a tenant's console admins, by email."""
        return [(r.email, r.role) for r in self.conn.execute(
            sa.select(admins.c.email, admins.c.role).where(admins.c.tenant_id == tenant_id)
            .order_by(admins.c.email))]
