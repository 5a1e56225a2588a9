"""Settlement: a call's real duration becomes a charge (FIFO across lots, capped at what the
wallet holds, the rest recorded as uncollected), pool minutes and a usage record; calls the
switch went silent on are settled or, never answered, released.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson

from commcredits.domain import call_clock
from commcredits.domain import calls as rules
from commcredits.domain import ledger as ledger_rules
from commcredits.domain import lots as lotrules
from commcredits.domain.calls import Grant, Route
from commcredits.domain.money import ZERO, fmt
from commcredits.domain.numbers import is_domestic
from commcredits.domain.pools import PoolKey
from commcredits.domain.wallet import Wallet
from commcredits.services import ledger
from commcredits.services.call_records import (
    grant_of,
    grant_values,
    pool_left_s,
    route_data,
    route_of,
    settle_pool,
    usage_detail,
)
from commcredits.services.ids import new_id
from commcredits.services.tenants import get_tenant

if TYPE_CHECKING:
    import sqlalchemy as sa

    from commcredits.adapters.db.repositories.tenants import WalletRow
    from commcredits.adapters.db.uow import UnitOfWork


def settle(uow: UnitOfWork, call: sa.Row, duration_s: int,
           settled_by: str = "switch") -> dict[str, Any]:
    """Charge ``duration_s`` of talk, free the reservation, write the usage record."""
    data, route = route_data(call), route_of(call)
    grant = grant_of(call)
    # the lots are read with the lock, once: nothing else can change them until commit
    wallet, lots = uow.tenants.wallet_and_lots(call.tenant_id)
    cur = wallet.currency  # the tenant's, fixed when it was created
    wallet.reserved = max(ZERO, wallet.reserved - grant.credit_reserved)
    s = _split(uow, call, route, grant, duration_s, cur, wallet, lots)
    charged, draws, txn_id = _collect(uow, wallet, s.credit_charge, call.call_id, lots)
    pool = None
    if call.pool and call.pool_month:
        before, after = settle_pool(uow, get_tenant(uow, call.tenant_id),
                                    PoolKey.parse(call.pool), call.pool_month, grant.pool_s,
                                    s.pool_minutes)
        pool = (call.pool, before, after)
    drawn = [(d.lot_id, d.amount) for d in draws]
    uow.charging.add_usage(
        id=new_id("use"), tenant_id=call.tenant_id, kind="call", ref=call.call_id,
        **_usage(call, data, route, s, charged, s.credit_charge - charged, cur),
        lots=lots_json(drawn),
        detail=usage_detail(deck_version=data.get("deck_version"), rate=route.rate,
                            draws=drawn, lots=lots, txn_ids=[txn_id] if txn_id else [],
                            seconds=(s.pool_s, s.credit_s, s.overage_s), pool=pool))
    return _ended(uow, call, s, charged, cur, settled_by)


_PLAIN_ID = re.compile(r"[A-Za-z0-9_:.-]*").fullmatch


def lots_json(draws: list[tuple[str, Decimal]]) -> str:
    """The usage record's ``lots`` column: ``json.dumps`` of ``[[lot id, amount], ...]``
    (the same text), written directly for the plain ids the service makes."""
    if all(_PLAIN_ID(lot_id) for lot_id, _ in draws):
        return "[" + ", ".join(f'["{lot_id}", "{amount}"]' for lot_id, amount in draws) + "]"
    return json.dumps([[lot_id, str(amount)] for lot_id, amount in draws])


def _split(uow: UnitOfWork, call: sa.Row, route: Route, grant: Grant, duration_s: int,
           cur: str, wallet: WalletRow, lots: list[lotrules.Lot]) -> rules.Settlement:
    """Split the talk; seconds past the grant follow the same funding order as every other
    second: what the pool still holds, then credits (on an overage route only what they
    cover), then overage. ``wallet`` is locked, this call's reservation already released;
    ``lots`` are its lots, read under that lock."""
    overran_pool = grant.credit_s == 0 and grant.tail is None and duration_s > grant.pool_s
    pool_left = pool_left_s(uow, call.tenant_id, route.pool, call.pool_month) if (
        overran_pool and route.pool and call.pool and call.pool_month) else 0
    covered = None
    if route.overage and grant.tail is None:
        covered = Wallet(wallet.tenant_id, cur, tuple(lots), wallet.reserved).available(uow.now)
    return rules.settle(route, grant, duration_s, cur, pool_left, covered)


def _collect(uow: UnitOfWork, wallet: WalletRow, amount: Decimal, call_id: str,
             lots: list[lotrules.Lot] | None = None
             ) -> tuple[Decimal, list[lotrules.Draw], str | None]:
    """Take what the wallet can give of ``amount`` FIFO (a usage entry); always saves the
    wallet row. Returns what was taken, from which lots (``lots``: already read under the
    wallet lock in this transaction) and the ledger transaction (None: nothing taken)."""
    if amount > ZERO:
        if lots is None:
            lots = uow.credits.lots(wallet.tenant_id)
        live = Wallet(wallet.tenant_id, wallet.currency, tuple(lots), wallet.reserved)
        charged = min(amount, live.available(uow.now))
        if charged > ZERO:
            draws = lotrules.allocate(lots, charged, uow.now)
            txn = ledger_rules.spend(wallet.tenant_id, draws, ledger_rules.TxnKind.USAGE,
                                     "usage", reference=f"call {call_id}")
            txn_id = ledger.post(uow, wallet, txn, lots)  # saves the wallet, release included
            return charged, draws, txn_id
    uow.tenants.save_wallet(wallet)
    return ZERO, [], None


def _usage(call: sa.Row, data: dict[str, Any], route: Route, s: rules.Settlement,
           charged: Decimal, uncollected: Decimal, cur: str) -> dict[str, Any]:
    """The usage record's columns (the PSTN report row and the funding split)."""
    number = data["number"] or {}
    party = data["party"] or {}
    start = call_clock.talk_start(call.started_at, call.answered_at)
    charge = charged + s.overage_charge
    return dict(
        conference_id=call.conference_id, user_location=party.get("usage_location"),
        user_id=party.get("id"), upn=party.get("upn"), display_name=party.get("display_name"),
        caller_id=call.from_number, call_type=call.call_type,
        number_type=number.get("number_type"),
        scope=_scope(number, party, call.call_type),
        destination=(route.rate.destination if route.rate else number.get("country")),
        destination_number=call.to_number, start_time=start,
        end_time=start + timedelta(seconds=s.duration_s), duration_s=s.duration_s,
        connection_fee=s.connection_fee if charge > ZERO else ZERO,
        charge=charge, currency=cur,
        capability=_capability(route, s, call.call_type), funding=s.funding,
        included_minutes=s.pool_minutes,
        credits_charge=charged, overage_charge=s.overage_charge, uncollected=uncollected)


def _ended(uow: UnitOfWork, call: sa.Row, s: rules.Settlement, charged: Decimal, cur: str,
           settled_by: str) -> dict[str, Any]:
    """Mark the call settled and return (and store) the answer ``end`` repeats."""
    charge = charged + s.overage_charge
    result = {"call_id": call.call_id, "charge": fmt(charge, cur),
              "connection_fee": fmt(s.connection_fee if charge > ZERO else ZERO, cur),
              "currency": cur, "included_minutes": s.pool_minutes, "funding": s.funding,
              "duration_s": s.duration_s, "credits_charge": fmt(charged, cur),
              "overage_charge": fmt(s.overage_charge, cur),
              "uncollected": fmt(s.credit_charge - charged, cur)}
    uow.charging.update_call(call.call_id, status="ended", ended_at=uow.now,
                             elapsed_s=s.duration_s, result=orjson.dumps(result).decode(),
                             settled_by=settled_by)
    return result


# -- an end after a silent call was settled ------------------------------------------------
def correct(uow: UnitOfWork, call: sa.Row, duration_s: int) -> dict[str, Any]:
    """The switch reported the real duration of a call the service had settled as silent:
    re-settle it at that duration. The difference is one more usage entry (longer) or an
    adjustment back to the lots it was drawn from (shorter; forfeited if a lot has expired
    since) — never a second charge. Pool minutes and the usage record follow."""
    old = orjson.loads(call.result)
    if old["duration_s"] == duration_s:
        uow.charging.update_call(call.call_id, settled_by="switch")
        return dict(old)
    tenant = get_tenant(uow, call.tenant_id)
    cur = tenant.currency
    data, route = route_data(call), route_of(call)
    wallet, lots = uow.tenants.wallet_and_lots(tenant.id)  # locked; the lots read once
    s = _split(uow, call, route, grant_of(call), duration_s, cur, wallet, lots)
    row = uow.charging.usage_record(tenant.id, "call", call.call_id)
    drawn = [(lot_id, Decimal(amount)) for lot_id, amount in json.loads(row.lots)]
    delta = s.credit_charge - (row.credits_charge + row.uncollected)
    charged, uncollected = row.credits_charge, row.uncollected
    stored = json.loads(row.detail) if row.detail else {}
    txn_ids: list[str] = list(stored.get("txn") or [])
    if delta > ZERO:
        more, draws, txn_id = _collect(uow, wallet, delta, call.call_id, lots)
        charged, uncollected = charged + more, uncollected + delta - more
        drawn += [(d.lot_id, d.amount) for d in draws]
        txn_ids += [txn_id] if txn_id else []
    elif delta < ZERO:
        forgiven = min(-delta, uncollected)
        refund = -delta - forgiven
        uncollected -= forgiven
        drawn, txn_id = _refund(uow, wallet, drawn, refund, call.call_id, lots)
        charged -= refund
        txn_ids += [txn_id] if txn_id else []
    pool = None
    if call.pool and call.pool_month:
        before, _ = settle_pool(uow, tenant, PoolKey.parse(call.pool), call.pool_month, 0,
                                s.pool_minutes - row.included_minutes)
        first = (stored.get("pool") or [None, before - row.included_minutes])[1]
        pool = (call.pool, first, first + s.pool_minutes)
    drawn = [(lot_id, amount) for lot_id, amount in drawn if amount]
    uow.charging.update_usage(
        row.id, **_usage(call, data, route, s, charged, uncollected, cur),
        lots=lots_json(drawn),
        detail=usage_detail(deck_version=data.get("deck_version"), rate=route.rate,
                            draws=drawn, lots=lots, txn_ids=txn_ids,
                            seconds=(s.pool_s, s.credit_s, s.overage_s), pool=pool))
    return _ended(uow, call, s, charged, cur, "switch")


def _refund(uow: UnitOfWork, wallet: WalletRow, drawn: list[tuple[str, Decimal]],
            amount: Decimal, call_id: str, held: list[lotrules.Lot]
            ) -> tuple[list[tuple[str, Decimal]], str | None]:
    """Give ``amount`` back to the lots it came from, newest draw first (an ``adjustment``
    entry); what came from a lot that has expired since is forfeited, as its rest was.
    ``held``: the tenant's lots, read under the wallet lock."""
    if amount <= ZERO:
        return drawn, None
    lots = {lot.id: lot for lot in held}
    postings: list[ledger_rules.Posting] = []
    left, out = amount, list(drawn)
    usage = ledger_rules.external_account(wallet.tenant_id, "usage")
    for i in range(len(out) - 1, -1, -1):
        if left == ZERO:
            break
        lot_id, took = out[i]
        back = min(took, left)
        live = lot_id in lots and uow.now < lots[lot_id].expires_at
        to = ledger_rules.lot_account(lot_id) if live else \
            ledger_rules.external_account(wallet.tenant_id, "forfeited")
        postings.append(ledger_rules.Posting(usage, to, back))
        out[i] = (lot_id, took - back)
        left -= back
    txn = ledger_rules.Transaction(ledger_rules.TxnKind.ADJUSTMENT, tuple(postings),
                                   reference=f"call {call_id} corrected")
    return out, ledger.post(uow, wallet, txn, list(lots.values()))


def _scope(number: dict[str, Any], party: dict[str, Any], call_type: str) -> str | None:
    if not number:
        return None
    location = party.get("usage_location")
    if location is None:
        return None
    return "Domestic" if is_domestic(number.get("country"), location) else "International"


def _capability(route: Route, s: rules.Settlement, call_type: str) -> str:
    """The license the usage record is charged under (FREECALL when it could not be priced)."""
    if s.credit_charge > ZERO or (route.toll_free_inbound and route.rate is not None):
        return "MCOPSTNPP"
    unpriced = route.rate is None and (route.toll_free_inbound or call_type in rules.OUTBOUND)
    if unpriced and not s.pool_minutes:
        return rules.FREECALL
    return route.capability


# -- calls nobody ended --------------------------------------------------------------------
def settle_stale(uow: UnitOfWork, call: sa.Row, grace_s: int, idle_s: int,
                 auth_ttl_s: int = 120,
                 policy: call_clock.SilentCharge = call_clock.SilentCharge.REPORTED) -> bool:
    """Deal with a call the switch went silent on (see ``domain.call_clock``): an
    authorization never answered nor heard from lapses and costs nothing; an answered call
    is settled at what was last reported (or its whole grant, by policy) once past its grant
    and the grace; an unlimited call once idle for ``idle_s``. A later ``end`` corrects it."""
    heard = call.elapsed_s > 0 or call.last_seen_at > call.started_at
    todo = call_clock.silent_action(
        now=uow.now, started_at=call.started_at, answered_at=call.answered_at, heard=heard,
        last_seen_at=call.last_seen_at, elapsed_s=call.elapsed_s,
        max_s=grant_of(call).max_duration_s, auth_ttl_s=auth_ttl_s, grace_s=grace_s,
        idle_s=idle_s, policy=policy)
    if todo is None:
        return False
    if todo.action == "expire":
        _release(uow, call)
    else:
        settle(uow, call, todo.duration_s, settled_by="silence")
    return True


def _release(uow: UnitOfWork, call: sa.Row) -> None:
    """Free what an unanswered call holds; it keeps its route, so it can be granted again."""
    grant = grant_of(call)
    if grant.credit_reserved > ZERO:
        wallet = uow.tenants.wallet(call.tenant_id, lock=True)
        wallet.reserved = max(ZERO, wallet.reserved - grant.credit_reserved)
        uow.tenants.save_wallet(wallet)
    if call.pool and call.pool_month and grant.pool_s:
        row = uow.charging.pool(call.tenant_id, call.pool_month, call.pool, lock=True)
        uow.charging.update_pool(call.tenant_id, call.pool_month, call.pool,
                                 reserved_s=max(0, row.reserved_s - grant.pool_s))
    uow.charging.update_call(call.call_id, status="expired", settled_by="expired",
                             **grant_values(Grant()))
