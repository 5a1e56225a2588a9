"""Real-time call charging: decide, grant time in slices, settle, release.

Safety under concurrency: every step that reserves or spends takes the tenant's wallet lock
(and the pool counter's row lock on PostgreSQL) in the same transaction, so the sum of what
is reserved never exceeds what the lots hold, and settlement never takes a lot below zero.
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from commcredits.domain import calls as rules
from commcredits.domain import ledger as ledger_rules
from commcredits.domain import lots as lotrules
from commcredits.domain import notifications as notes
from commcredits.domain import pools as poolrules
from commcredits.domain.calls import Grant, Party, Route
from commcredits.domain.errors import DomainError, ErrorKind, conflict, invalid, not_found
from commcredits.domain.money import ZERO, fmt
from commcredits.domain.numbers import Number, classify, is_domestic
from commcredits.domain.pools import PoolKey
from commcredits.domain.rating import Rate
from commcredits.domain.tenancy import Tenant
from commcredits.domain.wallet import Wallet
from commcredits.services import ledger, notify
from commcredits.services.ids import new_id
from commcredits.services.tenants import get_tenant

if TYPE_CHECKING:
    import sqlalchemy as sa

    from commcredits.adapters.db.repositories.tenants import WalletRow
    from commcredits.adapters.db.uow import UnitOfWork


def _zone_a() -> frozenset[str]:
    from commcredits.data import zone_a_countries
    return zone_a_countries()


# -- what is stored with a call --------------------------------------------------------------
def _route_json(route: Route, number: Number | None, party: Party | None) -> str:
    return json.dumps({
        "blocked": route.blocked, "pool": route.pool.code if route.pool else None,
        "credits": route.credits, "overage": route.overage, "free": route.free,
        "no_pay_reason": route.no_pay_reason, "capability": route.capability,
        "toll_free_inbound": route.toll_free_inbound,
        "rate": None if route.rate is None else {
            **asdict(route.rate), "per_minute": str(route.rate.per_minute),
            "connection_fee": str(route.rate.connection_fee)},
        "number": None if number is None else asdict(number),
        "party": None if party is None else {
            "id": party.id, "upn": party.upn, "display_name": party.display_name,
            "usage_location": party.usage_location},
    })


def _route_from(data: dict[str, Any]) -> Route:
    rate = data["rate"]
    return Route(blocked=data["blocked"],
                 pool=PoolKey.parse(data["pool"]) if data["pool"] else None,
                 credits=data["credits"], overage=data["overage"], free=data["free"],
                 no_pay_reason=data["no_pay_reason"],
                 rate=None if rate is None else Rate(
                     rate["prefix"], rate["destination"], rate["number_type"],
                     Decimal(rate["per_minute"]), Decimal(rate["connection_fee"]),
                     rate["increment_s"]),
                 capability=data["capability"], toll_free_inbound=data["toll_free_inbound"])


def _grant_of(call: sa.Row) -> Grant:
    return Grant(call.pool_s, call.credit_s, call.credit_reserved, call.with_fee, call.tail)


# -- pools ------------------------------------------------------------------------------------
def pool_total(uow: UnitOfWork, tenant_id: str, key: PoolKey) -> int:
    """Minutes in a pool this month: members times minutes per user."""
    if key.kind == "conferencing":  # sized by purchased licences, assigned or not
        members = sum(uow.directory.seats(tenant_id, sku)[0]
                      for sku in sorted(poolrules.CONFERENCING_POOL_SKUS))
    else:
        assert key.plan is not None
        members = uow.directory.count_holders(tenant_id, frozenset({key.plan}), key.country)
    return members * poolrules.minutes_per_user(key)


def _pool_left_s(uow: UnitOfWork, tenant_id: str, key: PoolKey, month: str) -> int:
    row = uow.charging.pool(tenant_id, month, key.code, lock=True)
    total = pool_total(uow, tenant_id, key)
    return max(0, total * 60 - row.used_minutes * 60 - row.reserved_s)


# -- decide -----------------------------------------------------------------------------------
def _party(uow: UnitOfWork, tenant_id: str, upn: str | None) -> Party | None:
    if not upn:
        return None
    user = uow.directory.user(tenant_id, upn)
    if user is None:
        return None
    return Party(user.id, user.upn, user.display_name, user.usage_location, user.licenses)


def _within_cap(uow: UnitOfWork, tenant: Tenant, party: Party | None,
                available: Decimal) -> tuple[Decimal, bool]:
    """What this user may still be granted today: the available balance, or less under the
    tenant's per-user daily cap (a toll-fraud guardrail). Returns (amount, cap is binding)."""
    if tenant.user_daily_cap is None or party is None:
        return available, False
    day = uow.now.replace(hour=0, minute=0, second=0, microsecond=0)
    left = max(ZERO, tenant.user_daily_cap - uow.charging.user_credit_use(tenant.id, party.id,
                                                                           day))
    return (left, True) if left < available else (available, False)


def _party_of(uow: UnitOfWork, tenant_id: str, user_id: str | None) -> Party | None:
    if user_id is None:
        return None
    user = uow.directory.user_by_id(tenant_id, user_id)
    if user is None:
        return None
    return Party(user.id, user.upn, user.display_name, user.usage_location, user.licenses)


def _available(uow: UnitOfWork, wallet: WalletRow, tenant_id: str) -> Decimal:
    return Wallet(tenant_id, wallet.currency, tuple(uow.credits.lots(tenant_id)),
                  wallet.reserved).available(uow.now)


def authorize_call(uow: UnitOfWork, slice_s: int, body: dict[str, Any],
                   at: datetime | None = None) -> dict[str, Any]:
    """``POST /v1/calls``: may this call go ahead, who pays, and for how long.

    ``at`` backdates the call (offline CDR rating): its start time and pool month.
    """
    started = at or uow.now
    call_id = str(body["call_id"])
    if uow.charging.call(call_id) is not None:
        first = stored_decision(uow, call_id, body["tenant_id"])
        if first is None:
            raise conflict("call_id_in_use", f"call {call_id!r} belongs to another tenant")
        return first
    call_type = body["call_type"]
    if call_type not in rules.CALL_TYPES:
        raise invalid("validation_error", f"call_type must be one of "
                                          f"{', '.join(sorted(rules.CALL_TYPES))}")
    tenant = get_tenant(uow, body["tenant_id"])
    upn = body.get("organizer_upn") if call_type in rules.CONFERENCE_OUT else None
    party = None if call_type in rules.BOT_CALLS else _party(uow, tenant.id,
                                                            upn or body.get("upn"))
    route, number = _route(uow, tenant, call_type, body, party)
    grant, pool_take, money = Grant(), 0, ZERO
    capped = False
    month = poolrules.month_of(started)
    wallet = None
    if not route.blocked and not (route.free and route.pool is None):
        wallet = uow.tenants.wallet(tenant.id, lock=True)
        pool_left = _pool_left_s(uow, tenant.id, route.pool, month) if route.pool else 0
        available = _available(uow, wallet, tenant.id)
        spendable, capped = _within_cap(uow, tenant, party, available)
        ext = rules.extend(route, Grant(), slice_s, pool_left, spendable, tenant.currency)
        grant, pool_take, money = ext.grant, ext.pool_take_s, ext.money_take
    elif route.free:
        grant = Grant(tail="free")
    funding = rules.first_funding(route, grant)
    decision = "allowed" if funding else "blocked"
    reason = None if funding else rules.block_reason(route)
    if reason == "insufficient_credits" and wallet is not None and capped:
        reason = "daily_cap_reached"
    if funding and wallet is not None:
        _reserve(uow, wallet, tenant.id, route, month, pool_take, money)
    uow.charging.add_call(
        call_id=call_id, tenant_id=tenant.id, call_type=call_type,
        from_number=str(body.get("from") or "")[:40], to_number=str(body.get("to") or "")[:40],
        user_id=party.id if party else None, conference_id=body.get("conference_id"),
        decision=decision, reason=reason, route=_route_json(route, number, party),
        pool=route.pool.code if route.pool and funding else None,
        pool_month=month if route.pool else None, pool_s=grant.pool_s,
        credit_s=grant.credit_s, credit_reserved=grant.credit_reserved,
        with_fee=grant.with_fee, tail=grant.tail,
        status="active" if funding else "blocked", started_at=started, last_seen_at=uow.now,
        elapsed_s=0)
    out: dict[str, Any] = {"call_id": call_id, "decision": decision}
    if reason:
        out["reason"] = reason
        return out
    out["funding"] = funding
    if grant.max_duration_s is not None:
        out["max_duration_s"] = grant.max_duration_s
    return out


def _route(uow: UnitOfWork, tenant: Tenant, call_type: str, body: dict[str, Any],
           party: Party | None) -> tuple[Route, Number | None]:
    deck = uow.rates.deck(tenant.currency)
    inbound = call_type in rules.INBOUND
    toll_free = False
    if inbound:
        dialled = _maybe(body.get("to"))
        row = uow.directory.number(dialled.e164) if dialled else None
        toll_free = bool(row is not None and row.tenant_id == tenant.id
                         and row.type == "toll_free")
        origin = _maybe(body.get("from"))
        # the caller's origin prices toll-free calls and says domestic or international
        number = origin if toll_free else (origin or dialled)
        if number is None:
            return rules.Route(free=True, capability=rules.FREECALL,
                               toll_free_inbound=toll_free), None
    else:
        try:
            number = classify(str(body.get("to") or ""))
        except DomainError:
            return rules.blocked("invalid_number"), None
    kind = "toll_free_inbound" if toll_free else number.number_type
    rate = deck.lookup(number.digits, kind) if deck else None
    route = rules.route_call(call_type, commerce=tenant.commerce, party=party, number=number,
                             rate=rate, toll_free_inbound=toll_free,
                             allow_premium=tenant.allow_premium, zone_a=_zone_a(),
                             blocked_prefixes=tenant.blocked_prefixes,
                             overage_enabled=tenant.overage_enabled, no_rate=tenant.no_rate)
    return route, number


def _maybe(raw: object) -> Number | None:
    try:
        return classify(str(raw)) if raw else None
    except DomainError:
        return None


def _reserve(uow: UnitOfWork, wallet: WalletRow, tenant_id: str, route: Route, month: str,
             pool_take: int, money: Decimal) -> None:
    if pool_take and route.pool:
        row = uow.charging.pool(tenant_id, month, route.pool.code, lock=True)
        uow.charging.update_pool(tenant_id, month, route.pool.code,
                                 reserved_s=row.reserved_s + pool_take)
    if money > ZERO:
        wallet.reserved += money
        uow.tenants.save_wallet(wallet)


def stored_decision(uow: UnitOfWork, call_id: str, tenant_id: str) -> dict[str, Any] | None:
    """The decision already recorded for ``call_id`` (None if there is none)."""
    call = uow.charging.call(call_id)
    if call is None or call.tenant_id != tenant_id:
        return None
    return decision_view(call)


def decision_view(call: sa.Row) -> dict[str, Any]:
    out: dict[str, Any] = {"call_id": call.call_id, "decision": call.decision}
    if call.decision == "blocked":
        out["reason"] = call.reason
        return out
    route = _route_from(json.loads(call.route))
    out["funding"] = rules.first_funding(route, _grant_of(call)) or "free"
    max_s = _grant_of(call).max_duration_s
    if max_s is not None:
        out["max_duration_s"] = max_s
    return out


# -- interim ----------------------------------------------------------------------------------
def _active_call(uow: UnitOfWork, call_id: str) -> sa.Row:
    call = uow.charging.call(call_id, lock=True)
    if call is None:
        raise not_found("call", call_id)
    return call


def interim(uow: UnitOfWork, slice_s: int, call_id: str, elapsed_s: int) -> dict[str, Any]:
    """Extend the grant while funds last. ``max_duration_s`` is the total since the start."""
    call = _active_call(uow, call_id)
    if call.status != "active":
        return {"continue": False, "reason": "call_ended" if call.status == "ended"
                else call.reason}
    grant = _grant_of(call)
    elapsed_s = max(elapsed_s, call.elapsed_s)
    values: dict[str, Any] = {"last_seen_at": uow.now, "elapsed_s": elapsed_s}
    if grant.max_duration_s is not None and elapsed_s + slice_s > grant.max_duration_s:
        tenant = get_tenant(uow, call.tenant_id)
        route = _route_from(json.loads(call.route))
        wallet = uow.tenants.wallet(tenant.id, lock=True)
        month = call.pool_month or poolrules.month_of(uow.now)
        pool_left = _pool_left_s(uow, tenant.id, route.pool, month) if route.pool else 0
        want = elapsed_s + slice_s - grant.max_duration_s
        party = _party_of(uow, tenant.id, call.user_id)
        spendable, _ = _within_cap(uow, tenant, party, _available(uow, wallet, tenant.id))
        ext = rules.extend(route, grant, want, pool_left, spendable, tenant.currency)
        _reserve(uow, wallet, tenant.id, route, month, ext.pool_take_s, ext.money_take)
        grant = ext.grant
        values.update(pool_s=grant.pool_s, credit_s=grant.credit_s,
                      credit_reserved=grant.credit_reserved, with_fee=grant.with_fee,
                      tail=grant.tail, pool=route.pool.code if route.pool else None,
                      pool_month=month)
    uow.charging.update_call(call_id, **values)
    max_s = grant.max_duration_s
    out: dict[str, Any] = {"continue": max_s is None or elapsed_s < max_s}
    if max_s is not None:
        out["max_duration_s"] = max_s
    return out


# -- end --------------------------------------------------------------------------------------
def end_call(uow: UnitOfWork, call_id: str, duration_s: int) -> dict[str, Any]:
    """Settle the exact charge FIFO across lots, free the rest. Repeating it changes nothing."""
    call = _active_call(uow, call_id)
    if call.status == "ended":
        return json.loads(call.result)
    if call.status == "blocked":
        raise DomainError("call_blocked", f"call {call_id!r} was blocked: {call.reason}",
                          ErrorKind.CONFLICT)
    return _settle(uow, call, max(0, duration_s))


def _settle(uow: UnitOfWork, call: sa.Row, duration_s: int) -> dict[str, Any]:
    tenant = get_tenant(uow, call.tenant_id)
    cur = tenant.currency
    data = json.loads(call.route)
    route = _route_from(data)
    grant = _grant_of(call)
    wallet = uow.tenants.wallet(tenant.id, lock=True)
    # seconds past the grant draw on what the pool still holds (same funding order)
    overran_pool = grant.credit_s == 0 and grant.tail is None and duration_s > grant.pool_s
    pool_left = _pool_left_s(uow, tenant.id, route.pool, call.pool_month) if (
        overran_pool and route.pool and call.pool and call.pool_month) else 0
    released = max(ZERO, wallet.reserved - grant.credit_reserved)
    # past the grant an overage route pays from credits only what they cover (then overage)
    covered = _available(uow, replace(wallet, reserved=released), tenant.id) if (
        route.overage and grant.tail is None) else None
    s = rules.settle(route, grant, duration_s, cur, pool_left, covered)
    changed = released != wallet.reserved
    wallet.reserved = released
    charged, uncollected, draws = ZERO, ZERO, []
    if s.credit_charge > ZERO:
        lots = uow.credits.lots(tenant.id)
        live = Wallet(tenant.id, cur, tuple(lots), wallet.reserved)
        charged = min(s.credit_charge, live.available(uow.now))
        uncollected = s.credit_charge - charged
        if charged > ZERO:
            draws = lotrules.allocate(lots, charged, uow.now)
            txn = ledger_rules.spend(tenant.id, draws, ledger_rules.TxnKind.USAGE, "usage",
                                     reference=f"call {call.call_id}")
            ledger.post(uow, wallet, txn, lots)  # saves the wallet, release included
            changed = False
    if changed:
        uow.tenants.save_wallet(wallet)
    if call.pool and call.pool_month:
        _settle_pool(uow, tenant, PoolKey.parse(call.pool), call.pool_month, grant.pool_s,
                     s.pool_minutes)
    number = data["number"] or {}
    party = data["party"] or {}
    start = call.started_at
    charge = charged + s.overage_charge
    uow.charging.add_usage(
        id=new_id("use"), tenant_id=tenant.id, kind="call", ref=call.call_id,
        conference_id=call.conference_id, user_location=party.get("usage_location"),
        user_id=party.get("id"), upn=party.get("upn"), display_name=party.get("display_name"),
        caller_id=call.from_number, call_type=call.call_type,
        number_type=number.get("number_type"),
        scope=_scope(number, party, call.call_type),
        destination=(route.rate.destination if route.rate else number.get("country")),
        destination_number=call.to_number, start_time=start,
        end_time=start + timedelta(seconds=duration_s), duration_s=duration_s,
        connection_fee=s.connection_fee if charge > ZERO else ZERO,
        charge=charge, currency=cur,
        capability=_capability(route, s, call.call_type), funding=s.funding,
        included_minutes=s.pool_minutes,
        credits_charge=charged, overage_charge=s.overage_charge, uncollected=uncollected,
        lots=json.dumps([[d.lot_id, str(d.amount)] for d in draws]))
    result = {"call_id": call.call_id, "charge": fmt(charge, cur),
              "connection_fee": fmt(s.connection_fee if charge > ZERO else ZERO, cur),
              "currency": cur, "included_minutes": s.pool_minutes, "funding": s.funding,
              "duration_s": duration_s, "credits_charge": fmt(charged, cur),
              "overage_charge": fmt(s.overage_charge, cur)}
    uow.charging.update_call(call.call_id, status="ended", ended_at=uow.now,
                             elapsed_s=duration_s, result=json.dumps(result))
    return result


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


def _settle_pool(uow: UnitOfWork, tenant: Tenant, key: PoolKey, month: str, reserved_s: int,
                 minutes: int) -> None:
    row = uow.charging.pool(tenant.id, month, key.code, lock=True)
    used = row.used_minutes + minutes
    total = pool_total(uow, tenant.id, key)
    crossed = poolrules.alerts_crossed(total, row.used_minutes, used)
    alerted = max([row.alerted, *crossed])
    uow.charging.update_pool(tenant.id, month, key.code, used_minutes=used,
                             reserved_s=max(0, row.reserved_s - reserved_s), alerted=alerted)
    for percent in crossed:
        if percent > row.alerted:
            notify.queue(uow, tenant, notes.pool_alert(tenant.name, key.label, percent, month,
                                                      key.code))


# -- calls nobody ended --------------------------------------------------------------------
def settle_stale(uow: UnitOfWork, call: sa.Row, grace_s: int, idle_s: int) -> bool:
    """Settle a call that went silent: at its granted length once past grant + grace; an
    unlimited call at its last reported length once idle for ``idle_s``."""
    grant = _grant_of(call)
    limit = grant.max_duration_s
    if limit is not None:
        if uow.now < call.started_at + timedelta(seconds=limit + grace_s):
            return False
        _settle(uow, call, limit)
        return True
    if uow.now < call.last_seen_at + timedelta(seconds=idle_s):
        return False
    _settle(uow, call, call.elapsed_s)
    return True


def settle_stale_calls(db: Any, grace_s: int, idle_s: int) -> int:
    with db.uow() as uow:
        candidates = [c.call_id for c in uow.charging.active_calls()]
    settled = 0
    for call_id in candidates:
        with db.uow() as uow:
            call = uow.charging.call(call_id, lock=True)
            if call is not None and call.status == "active" and \
                    settle_stale(uow, call, grace_s, idle_s):
                settled += 1
                uow.commit()
    return settled

