"""The repositories a :class:`~commcredits.charging.work.Batch` shows the charging rules:
what the batch read up front (or read once since) is answered from memory and kept current
there, what the rules write is collected for the batch's bulk write, and anything else goes
to the real repository after the changes so far are written (:class:`Passthrough`)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from commcredits.adapters.db.repositories.charging import CallContext
from commcredits.adapters.db.schema import calls
from commcredits.domain.ledger import Transaction
from commcredits.domain.lots import Lot

if TYPE_CHECKING:
    from commcredits.adapters.db.repositories.directory import User
    from commcredits.adapters.db.repositories.tenants import WalletRow
    from commcredits.charging.work import Batch
    from commcredits.domain.rating import RateDeck
    from commcredits.domain.tenancy import Tenant


class Row(dict[str, Any]):
    """A dict read like a SQLAlchemy row (``row.status``)."""

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


_CALL_NULLS = {str(c.name): None for c in calls.c if c.server_default is None}
_CALL_DEFAULTS = {"final": False, "cut_reason": None, "settled_by": None}


class Passthrough:
    """Anything the batch does not keep goes to the real repository, after a flush."""

    def __init__(self, work: Batch, real: Any) -> None:
        self._work = work
        self._real = real

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
        if tenant_id not in w.tenant_rows:
            w.flush()
            w.tenant_rows[tenant_id] = self._real.get(tenant_id)
        return w.tenant_rows[tenant_id]

    def _held(self, tenant_id: str) -> WalletRow:
        w = self._work
        if tenant_id not in w.wallets:  # not named up front: lock it now
            w.flush()
            wallet, held = self._real.wallet_and_lots(tenant_id)
            w.wallets[tenant_id], w.lots[tenant_id] = wallet, held
            w.lot_tenant.update((lot.id, tenant_id) for lot in held)
        return w.wallets[tenant_id]

    def wallet(self, tenant_id: str, *, lock: bool = False) -> WalletRow:
        return self._held(tenant_id)

    def wallet_and_lots(self, tenant_id: str) -> tuple[WalletRow, list[Lot]]:
        wallet = self._held(tenant_id)
        return wallet, list(self._work.lots[tenant_id])

    def save_wallet(self, wallet: WalletRow) -> None:
        w = self._work
        w.wrote()
        w.wallets[wallet.tenant_id] = wallet
        w.dirty_wallets.add(wallet.tenant_id)


class Credits(Passthrough):
    def lots(self, tenant_id: str) -> list[Lot]:
        w = self._work
        if tenant_id not in w.lots:
            w.tenants._held(tenant_id)
        return list(w.lots[tenant_id])

    def set_remaining(self, lot_id: str, remaining: Decimal) -> None:
        w = self._work
        w.wrote()
        tid = w.lot_tenant.get(lot_id)
        for i, lot in enumerate(w.lots.get(tid, ()) if tid else ()):
            if lot.id == lot_id:
                w.lots[tid][i] = Lot(lot.id, lot.seq, lot.amount, remaining, lot.purchased_at,
                                     lot.expires_at, lot.source)
                w.dirty_lots[lot_id] = (tid, remaining)
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
        """What deciding a call reads (``ChargingRepo.call_context``), from memory."""
        w = self._work
        tenant = w.tenants.get(tenant_id)
        if tenant is None:
            return None
        if self.call(call_id) is not None:
            return CallContext(tenant, None, None, True)
        if tenant_id not in w.deck_versions:
            w.deck_versions[tenant_id] = w.rates.version(tenant.currency)
        user = w.directory.user(tenant.id, upn) if upn else None
        return CallContext(tenant, w.deck_versions[tenant_id], user, False)

    def call(self, call_id: str, *, lock: bool = False) -> Row | None:
        w = self._work
        row = w.calls.get(call_id)
        if row is None:
            if call_id in w.no_calls:
                return None
            w.flush()
            found = self._real.call(call_id, lock=True)
            if found is None:
                w.no_calls.add(call_id)
                return None
            row = w.calls[call_id] = Row(found._mapping)
        return Row(row)  # a snapshot, as a database row is

    def add_call(self, **values: Any) -> None:
        w = self._work
        w.wrote()
        call_id = values["call_id"]
        w.calls[call_id] = Row({**_CALL_NULLS, **_CALL_DEFAULTS, **values})
        w.no_calls.discard(call_id)
        w.new_calls.add(call_id)

    def update_call(self, call_id: str, **values: Any) -> None:
        w = self._work
        w.wrote()
        w.calls[call_id].update(values)
        w.changed_calls.add(call_id)

    def pool(self, tenant_id: str, month: str, pool: str, *, lock: bool = False) -> Row:
        return Row(self._held(tenant_id, month, pool))  # a snapshot, as a database row is

    def _held(self, tenant_id: str, month: str, pool: str) -> Row:
        w = self._work
        key = (tenant_id, month, pool)
        if key not in w.pools:
            if (tenant_id, month) in w.pool_scope:  # read up front: not stored yet, so zero
                w.pools[key] = Row(tenant_id=tenant_id, month=month, pool=pool,
                                   used_minutes=0, reserved_s=0, alerted=0)
            else:  # (the counters are only changed under the tenant's wallet lock)
                w.flush()
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
        w.usage.append({"segments": None, **values})

    def user_credit_use(self, tenant_id: str, user_id: str, since: datetime) -> Decimal:
        """Read after a flush: the batch's usage records and reservations so far count."""
        self._work.flush()
        return Decimal(self._real.user_credit_use(tenant_id, user_id, since))

    def message(self, message_id: str) -> Row | None:
        w = self._work
        if message_id not in w.messages:
            w.flush()
            found = self._real.message(message_id)
            w.messages[message_id] = None if found is None else Row(found._mapping)
        return w.messages[message_id]

    def add_message(self, message_id: str, tenant_id: str, result: str, now: datetime) -> None:
        w = self._work
        w.wrote()
        row = Row(message_id=message_id, tenant_id=tenant_id, result=result, created_at=now)
        w.messages[message_id] = row
        w.new_messages.append(row)


class Directory(Passthrough):
    def _once(self, key: tuple[Any, ...], read: Any, *args: Any) -> Any:
        cache = self._work.reads
        if key not in cache:
            cache[key] = read(*args)  # directory tables: the batch never writes them
        return cache[key]

    def user(self, tenant_id: str, upn: str) -> User | None:
        return self._once(("upn", tenant_id, upn.lower()), self._real.user,  # type: ignore[no-any-return]
                          tenant_id, upn)

    def user_by_id(self, tenant_id: str, user_id: str) -> User | None:
        return self._once(("id", tenant_id, user_id), self._real.user_by_id,  # type: ignore[no-any-return]
                          tenant_id, user_id)

    def number(self, number: str) -> Any:
        return self._once(("number", number), self._real.number, number)

    def count_holders(self, tenant_id: str, skus: frozenset[str],
                      country: str | None = None) -> int:
        return self._once(("holders", tenant_id, skus, country),  # type: ignore[no-any-return]
                          self._real.count_holders, tenant_id, skus, country)

    def seats(self, tenant_id: str, sku: str) -> tuple[int, int]:
        return self._once(("seats", tenant_id, sku), self._real.seats,  # type: ignore[no-any-return]
                          tenant_id, sku)

    def billing_contacts(self, tenant_id: str) -> list[str]:
        return list(self._once(("contacts", tenant_id), self._real.billing_contacts,
                               tenant_id))


class Rates(Passthrough):
    def version(self, currency: str) -> int | None:
        return self._once(("deck version", currency), self._real.version, currency)  # type: ignore[no-any-return]

    def deck(self, currency: str) -> RateDeck | None:
        return self.deck_at(currency, self.version(currency))

    def deck_at(self, currency: str, version: int | None) -> RateDeck | None:
        return self._once(("deck", currency, version), self._real.deck_at,  # type: ignore[no-any-return]
                          currency, version)

    def _once(self, key: tuple[Any, ...], read: Any, *args: Any) -> Any:
        cache = self._work.reads
        if key not in cache:
            cache[key] = read(*args)
        return cache[key]


class Access(Passthrough):
    def api_key_by_hash(self, key_hash: str) -> Row | None:
        w = self._work
        if key_hash not in w.keys:
            found = self._real.api_key_by_hash(key_hash)  # api_keys: the batch never writes
            w.keys[key_hash] = None if found is None else dict(found._mapping)
        row = w.keys[key_hash]
        return None if row is None else Row(row)

    def touch_api_key(self, key_id: str, at: datetime, stale_before: datetime) -> None:
        self._work.key_uses.append((key_id, at, stale_before))
