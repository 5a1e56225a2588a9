"""Users, their licenses, the tenant's subscriptions (seats), numbers and contacts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from commcredits.adapters.db.schema import (
    billing_contacts,
    license_assignments,
    numbers,
    subscriptions,
    users,
)


@dataclass(frozen=True, slots=True)
class User:
    id: str
    tenant_id: str
    upn: str
    display_name: str
    usage_location: str
    phone_number: str | None
    licenses: frozenset[str]
    aad_object_id: str | None = None  # Entra ID object id (a GUID), when given


class DirectoryRepo:
    def __init__(self, conn: sa.Connection) -> None:
        self.conn = conn

    # -- users -----------------------------------------------------------------------------
    def add_user(self, user: User, now: datetime) -> None:
        self.conn.execute(sa.insert(users).values(
            id=user.id, tenant_id=user.tenant_id, upn=user.upn, display_name=user.display_name,
            usage_location=user.usage_location, phone_number=user.phone_number,
            aad_object_id=user.aad_object_id, created_at=now))

    def user(self, tenant_id: str, upn: str) -> User | None:
        return self._user(sa.func.lower(users.c.upn) == upn.lower(), tenant_id)

    def users_named(self, *, phone: str | None = None, upn: str | None = None,
                    limit: int = 2) -> list[tuple[str, str, str | None]]:
        """``(tenant_id, upn, phone_number)`` of the users (of any tenant) with this phone
        number or UPN: a Diameter subscriber (at most ``limit``)."""
        match = users.c.phone_number == phone if phone is not None else \
            sa.func.lower(users.c.upn) == (upn or "").lower()
        q = sa.select(users.c.tenant_id, users.c.upn, users.c.phone_number).where(match)
        return [(r.tenant_id, r.upn, r.phone_number)
                for r in self.conn.execute(q.limit(limit))]

    def user_by_id(self, tenant_id: str, user_id: str) -> User | None:
        return self._user(users.c.id == user_id, tenant_id)

    def _user(self, match: sa.ColumnElement[bool], tenant_id: str) -> User | None:
        """One round trip: the user joined with the licenses it holds."""
        q = (sa.select(users, license_assignments.c.sku)
             .select_from(users.outerjoin(license_assignments, sa.and_(
                 license_assignments.c.user_id == users.c.id,
                 license_assignments.c.tenant_id == users.c.tenant_id)))
             .where(users.c.tenant_id == tenant_id, match))
        rows = list(self.conn.execute(q))
        if not rows:
            return None
        row = rows[0]
        return User(row.id, row.tenant_id, row.upn, row.display_name, row.usage_location,
                    row.phone_number, frozenset(r.sku for r in rows if r.sku),
                    row.aad_object_id)

    def users(self, tenant_id: str) -> list[User]:
        rows = list(self.conn.execute(sa.select(users).where(users.c.tenant_id == tenant_id)
                                      .order_by(users.c.upn)))
        held: dict[str, set[str]] = {}
        for a in self.conn.execute(sa.select(license_assignments.c.user_id,
                                             license_assignments.c.sku)
                                   .where(license_assignments.c.tenant_id == tenant_id)):
            held.setdefault(a.user_id, set()).add(a.sku)
        return [User(r.id, r.tenant_id, r.upn, r.display_name, r.usage_location,
                     r.phone_number, frozenset(held.get(r.id, ())), r.aad_object_id)
                for r in rows]

    def upn_taken(self, tenant_id: str, upn: str) -> bool:
        return self.user(tenant_id, upn) is not None

    def aad_object_id_taken(self, tenant_id: str, object_id: str) -> bool:
        return self.conn.scalar(sa.select(users.c.id).where(
            users.c.tenant_id == tenant_id, users.c.aad_object_id == object_id)) is not None

    # -- licenses and seats ----------------------------------------------------------------
    def assign(self, user: User, skus: frozenset[str], now: datetime) -> None:
        self.conn.execute(sa.insert(license_assignments), [
            {"user_id": user.id, "sku": s, "tenant_id": user.tenant_id, "assigned_at": now}
            for s in sorted(skus)])

    def unassign(self, user: User, skus: frozenset[str]) -> None:
        self.conn.execute(sa.delete(license_assignments).where(
            license_assignments.c.user_id == user.id, license_assignments.c.sku.in_(skus)))

    def lock_seats(self, tenant_id: str, sku: str, postgres: bool) -> None:
        """Serialize seat accounting for one SKU (PostgreSQL row lock; SQLite is serialized)."""
        if postgres:
            self.conn.execute(sa.select(subscriptions.c.quantity).where(
                subscriptions.c.tenant_id == tenant_id, subscriptions.c.sku == sku)
                .with_for_update())

    def seats(self, tenant_id: str, sku: str) -> tuple[int, int]:
        """(quantity bought, seats assigned) for one SKU."""
        qty = self.conn.scalar(sa.select(subscriptions.c.quantity).where(
            subscriptions.c.tenant_id == tenant_id, subscriptions.c.sku == sku)) or 0
        used = self.conn.scalar(sa.select(sa.func.count()).select_from(license_assignments).where(
            license_assignments.c.tenant_id == tenant_id, license_assignments.c.sku == sku)) or 0
        return int(qty), int(used)

    def add_seats(self, tenant_id: str, sku: str, quantity: int, postgres: bool) -> None:
        current = self.conn.scalar(sa.select(subscriptions.c.quantity).where(
            subscriptions.c.tenant_id == tenant_id, subscriptions.c.sku == sku)
            .with_for_update() if postgres else sa.select(subscriptions.c.quantity).where(
            subscriptions.c.tenant_id == tenant_id, subscriptions.c.sku == sku))
        if current is None:
            try:
                with self.conn.begin_nested():
                    self.conn.execute(sa.insert(subscriptions).values(
                        tenant_id=tenant_id, sku=sku, quantity=quantity))
                return
            except sa.exc.IntegrityError:  # another request created it first
                pass
        self.conn.execute(sa.update(subscriptions).where(
            subscriptions.c.tenant_id == tenant_id, subscriptions.c.sku == sku)
            .values(quantity=subscriptions.c.quantity + quantity))

    def subscriptions(self, tenant_id: str) -> list[tuple[str, int, int]]:
        """[(sku, quantity, assigned)] for every SKU bought or assigned."""
        bought = dict(self.conn.execute(sa.select(subscriptions.c.sku, subscriptions.c.quantity)
                                        .where(subscriptions.c.tenant_id == tenant_id)).all())
        used = dict(self.conn.execute(
            sa.select(license_assignments.c.sku, sa.func.count())
            .where(license_assignments.c.tenant_id == tenant_id)
            .group_by(license_assignments.c.sku)).all())
        return [(s, int(bought.get(s, 0)), int(used.get(s, 0)))
                for s in sorted(set(bought) | set(used))]

    def count_holders(self, tenant_id: str, skus: frozenset[str],
                      country: str | None = None) -> int:
        """Users holding any of ``skus`` (in ``country`` when given): a pool's members."""
        q = (sa.select(sa.func.count(sa.distinct(license_assignments.c.user_id)))
             .select_from(license_assignments.join(users, sa.and_(
                 users.c.id == license_assignments.c.user_id,
                 users.c.tenant_id == license_assignments.c.tenant_id)))
             .where(license_assignments.c.tenant_id == tenant_id,
                    license_assignments.c.sku.in_(skus)))
        if country is not None:
            q = q.where(users.c.usage_location == country)
        return int(self.conn.scalar(q) or 0)

    # -- numbers and contacts --------------------------------------------------------------
    def add_number(self, tenant_id: str, number: str, kind: str, now: datetime) -> None:
        self.conn.execute(sa.insert(numbers).values(number=number, tenant_id=tenant_id,
                                                    type=kind, created_at=now))

    def number(self, number: str) -> sa.Row | None:
        return self.conn.execute(sa.select(numbers).where(numbers.c.number == number)).first()

    def numbers(self, tenant_id: str) -> list[sa.Row]:
        return list(self.conn.execute(sa.select(numbers).where(numbers.c.tenant_id == tenant_id)
                                      .order_by(numbers.c.number)))

    def set_billing_contacts(self, tenant_id: str, emails: list[str]) -> None:
        self.conn.execute(sa.delete(billing_contacts)
                          .where(billing_contacts.c.tenant_id == tenant_id))
        if emails:
            self.conn.execute(sa.insert(billing_contacts),
                              [{"tenant_id": tenant_id, "email": e} for e in emails])

    def billing_contacts(self, tenant_id: str) -> list[str]:
        return list(self.conn.scalars(sa.select(billing_contacts.c.email)
                                      .where(billing_contacts.c.tenant_id == tenant_id)
                                      .order_by(billing_contacts.c.email)))

    # -- console search ----------------------------------------------------------------------
    def search(self, tenant_id: str, text: str, offset: int, limit: int) -> tuple[list[User], int]:
        """A page of users whose UPN or name contains ``text`` (any case), ordered by UPN,
        with the licenses each holds; and how many match in all."""
        where = [users.c.tenant_id == tenant_id]
        if text:
            like = f"%{text.lower().replace('%', '').replace('_', '')}%"
            where.append(sa.or_(sa.func.lower(users.c.upn).like(like),
                                sa.func.lower(users.c.display_name).like(like)))
        total = int(self.conn.scalar(sa.select(sa.func.count()).select_from(users)
                                     .where(*where)) or 0)
        rows = list(self.conn.execute(sa.select(users).where(*where).order_by(users.c.upn)
                                      .offset(offset).limit(limit)))
        held: dict[str, set[str]] = {}
        if rows:
            for a in self.conn.execute(sa.select(license_assignments.c.user_id,
                                                 license_assignments.c.sku)
                                       .where(license_assignments.c.user_id.in_(
                                           [r.id for r in rows]))):
                held.setdefault(a.user_id, set()).add(a.sku)
        return [User(r.id, r.tenant_id, r.upn, r.display_name, r.usage_location,
                     r.phone_number, frozenset(held.get(r.id, ())), r.aad_object_id)
                for r in rows], total
