"""The repositories a CDR batch (:class:`~commcredits.services.cdr_batch.BatchWork`) shows
the live charging code: what it reads often is served from the batch's memory and kept
current there, what it writes is collected for the batch's bulk write, and anything else
goes to the real repository after those writes are flushed (:class:`Passthrough`)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from commcredits.adapters.db.repositories.charging import CallContext
from commcredits.adapters.db.schema import calls, license_assignments, users
from commcredits.domain.ledger import Transaction
from commcredits.domain.lots import Lot
from commcredits.domain.money import ZERO

if TYPE_CHECKING:
    from commcredits.adapters.db.repositories.directory import User
    from commcredits.adapters.db.repositories.tenants import WalletRow
    from commcredits.domain.rating import RateDeck
    from commcredits.domain.tenancy import Tenant
    from commcredits.services.cdr_batch import BatchWork


class Row(dict[str, Any]):
    """A dict read like a SQLAlchemy row (``row.status``)."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


_CALL_NULLS = {c.name: None for c in calls.c if c.server_default is None}


class Passthrough:
    """Anything not kept in memory goes to the real repository, after a flush."""

    def __init__(self, work: BatchWork, real: Any) -> None:
        self._work = work
        self._repo = real

    @property
    def _real(self) -> Any:
        """The repository, once the connection is free (no ``COPY`` still running on it)."""
        self._work.wait()
        return self._repo

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._real, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self._work.flush()
            return attr(*args, **kwargs)
        return call


class Tenants(Passthrough):
    def get(self, tenant_id: str) -> Tenant | None:
        w = self._work
        if tenant_id not in w.tenant_cache:
            w.tenant_cache[tenant_id] = self._real.get(tenant_id)
        return w.tenant_cache[tenant_id]

    def wallet(self, tenant_id: str, *, lock: bool = False) -> WalletRow:
        w = self._work
        if tenant_id not in w.wallets:
            w.wallets[tenant_id] = self._real.wallet(tenant_id, lock=True)
        return w.wallets[tenant_id]

    def wallet_and_lots(self, tenant_id: str) -> tuple[WalletRow, list[Lot]]:
        return self.wallet(tenant_id, lock=True), self._work.credits.lots(tenant_id)

    def save_wallet(self, wallet: WalletRow) -> None:
        self._work.wrote()
        self._work.wallets[wallet.tenant_id] = wallet
        self._work.dirty_wallets.add(wallet.tenant_id)


class Credits(Passthrough):
    def lots(self, tenant_id: str) -> list[Lot]:
        w = self._work
        if tenant_id not in w.lots:
            w.lots[tenant_id] = self._real.lots(tenant_id)
        return list(w.lots[tenant_id])

    def set_remaining(self, lot_id: str, remaining: Decimal) -> None:
        w = self._work
        w.wrote()
        for held in w.lots.values():
            for i, lot in enumerate(held):
                if lot.id == lot_id:
                    held[i] = replace(lot, remaining=remaining)
                    w.dirty_lots[lot_id] = remaining
                    return
        raise LookupError(f"lot {lot_id} was not read in this batch")

    def record(self, txn_id: str, tenant_id: str, seq: int, txn: Transaction, at: datetime,
               balance_after: Decimal) -> None:
        w = self._work
        w.wrote()
        w.transactions.append({
            "id": txn_id, "tenant_id": tenant_id, "seq": seq, "kind": txn.kind.value, "at": at,
            "amount": txn.wallet_delta, "balance_after": balance_after, "lot_id": txn.lot_id,
            "reference": txn.reference})
        w.postings.extend(
            {"transaction_id": txn_id, "tenant_id": tenant_id, "debit_account": p.debit,
             "credit_account": p.credit, "amount": p.amount} for p in txn.postings)


class Charging(Passthrough):
    def call_context(self, call_id: str, tenant_id: str, upn: str | None
                     ) -> CallContext | None:
        """What deciding a call reads (``ChargingRepo.call_context``), from the batch's
        memory: tenant, deck version and user are read once per batch."""
        w = self._work
        tenant = w.tenants.get(tenant_id)
        if tenant is None:
            return None
        if self.call(call_id) is not None:
            return CallContext(tenant, None, None, True)
        user = w.directory.user(tenant.id, upn) if upn else None
        return CallContext(tenant, w.rates.version(tenant.currency), user, False)

    def call(self, call_id: str, *, lock: bool = False) -> Row | None:
        # rows stored before the batch began were sorted out as duplicates beforehand
        w = self._work
        row = w.calls.get(call_id) or w.stored_calls.get(call_id)
        return None if row is None else Row(row)  # a snapshot, as a database row is

    def add_call(self, **values: Any) -> None:
        self._work.wrote()
        # every column a call row has, as the database would give it back
        self._work.calls[values["call_id"]] = Row({**_CALL_NULLS, **values})

    def update_call(self, call_id: str, **values: Any) -> None:
        w = self._work
        w.wrote()
        if call_id in w.calls:
            w.calls[call_id].update(values)
        else:  # already written by a flush in the middle of this call
            w.stored_calls[call_id].update(values)
            self._real.update_call(call_id, **values)

    def pool(self, tenant_id: str, month: str, pool: str, *, lock: bool = False) -> Row:
        return Row(self._held(tenant_id, month, pool))  # a snapshot, as a database row is

    def _held(self, tenant_id: str, month: str, pool: str) -> Row:
        w = self._work
        key = (tenant_id, month, pool)
        if key not in w.pools:
            w.pools[key] = Row(self._real.pool(tenant_id, month, pool, lock=True)._mapping)
        return w.pools[key]

    def update_pool(self, tenant_id: str, month: str, pool: str, **values: Any) -> None:
        w = self._work
        w.wrote()
        self._held(tenant_id, month, pool).update(values)
        w.dirty_pools.add((tenant_id, month, pool))

    def add_usage(self, **values: Any) -> None:
        w = self._work
        w.wrote()
        w.usage.append(values)
        if values.get("user_id") and values["start_time"] >= w.day:
            key = (values["tenant_id"], values["user_id"])
            w.user_spend[key] = w.user_spend.get(key, ZERO) + values["credits_charge"]

    def user_credit_use(self, tenant_id: str, user_id: str, since: datetime) -> Decimal:
        w = self._work
        if since != w.day:
            w.flush()
            return Decimal(self._real.user_credit_use(tenant_id, user_id, since))
        key = (tenant_id, user_id)
        if key not in w.user_base:
            w.flush()
            w.user_base[key] = self._real.user_credit_use(tenant_id, user_id, since) - \
                w.user_spend.get(key, ZERO)
        return Decimal(w.user_base[key] + w.user_spend.get(key, ZERO))


class Directory(Passthrough):
    def preload(self, tenant_id: str, upns: set[str]) -> None:
        """Read the users of many UPNs in one round trip, as ``user`` would one by one (a
        UPN that matches two users case-insensitively is left to ``user``)."""
        from commcredits.adapters.db.repositories.directory import User

        cache = self._work.reads
        wanted = {u.lower() for u in upns} - {k[2] for k in cache if k[:2] == ("upn", tenant_id)}
        if not wanted:
            return
        self._work.wait()
        q = (sa.select(users, license_assignments.c.sku)
             .select_from(users.outerjoin(license_assignments,
                                          license_assignments.c.user_id == users.c.id))
             .where(users.c.tenant_id == tenant_id, sa.func.lower(users.c.upn).in_(wanted)))
        rows: dict[str, list[Any]] = {}
        for row in self._work.conn.execute(q):
            rows.setdefault(row.upn.lower(), []).append(row)
        for upn in wanted:
            found = rows.get(upn, [])
            if len({r.id for r in found}) > 1:
                continue
            cache[("upn", tenant_id, upn)] = None if not found else User(
                found[0].id, found[0].tenant_id, found[0].upn, found[0].display_name,
                found[0].usage_location, found[0].phone_number,
                frozenset(r.sku for r in found if r.sku))

    def user(self, tenant_id: str, upn: str) -> User | None:
        key = ("upn", tenant_id, upn.lower())
        cache = self._work.reads
        if key not in cache:
            cache[key] = self._real.user(tenant_id, upn)
        return cache[key]  # type: ignore[no-any-return]

    def user_by_id(self, tenant_id: str, user_id: str) -> User | None:
        key = ("id", tenant_id, user_id)
        cache = self._work.reads
        if key not in cache:
            cache[key] = self._real.user_by_id(tenant_id, user_id)
        return cache[key]  # type: ignore[no-any-return]

    def number(self, number: str) -> Any:
        key = ("number", number)
        cache = self._work.reads
        if key not in cache:
            cache[key] = self._real.number(number)
        return cache[key]

    def count_holders(self, tenant_id: str, skus: frozenset[str],
                      country: str | None = None) -> int:
        key = ("holders", tenant_id, skus, country)
        cache = self._work.reads
        if key not in cache:
            cache[key] = self._real.count_holders(tenant_id, skus, country)
        return cache[key]  # type: ignore[no-any-return]

    def billing_contacts(self, tenant_id: str) -> list[str]:
        key = ("contacts", tenant_id)
        cache = self._work.reads
        if key not in cache:
            cache[key] = self._real.billing_contacts(tenant_id)
        return list(cache[key])


class Rates(Passthrough):
    def version(self, currency: str) -> int | None:
        return self._once(("deck version", currency), self._real.version, currency)

    def deck(self, currency: str) -> RateDeck | None:
        return self.deck_at(currency, self.version(currency))

    def deck_at(self, currency: str, version: int | None) -> RateDeck | None:
        return self._once(("deck", currency, version), self._real.deck_at, currency, version)

    def _once(self, key: tuple[Any, ...], read: Any, *args: Any) -> Any:
        cache = self._work.reads
        if key not in cache:
            cache[key] = read(*args)
        return cache[key]
