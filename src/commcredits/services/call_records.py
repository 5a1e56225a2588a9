"""What a call row stores (its route as JSON, its grant) and the minute-pool counters a call
reserves and uses. Shared by the call path (``charging``) and settlement."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson

from commcredits.domain import notifications as notes
from commcredits.domain import pools as poolrules
from commcredits.domain.calls import Grant, Party, Route
from commcredits.domain.lots import Lot
from commcredits.domain.numbers import Number
from commcredits.domain.pools import PoolKey
from commcredits.domain.rating import Rate
from commcredits.domain.tenancy import Tenant
from commcredits.services import notify

if TYPE_CHECKING:
    import sqlalchemy as sa

    from commcredits.adapters.db.uow import UnitOfWork


# -- what is stored with a call --------------------------------------------------------------
def route_json(route: Route, number: Number | None, party: Party | None,
               deck_version: int | None = None) -> str:
    """The route as stored with the call (JSON; money as decimal strings), with the version
    of the deck that priced it (what the call's explanation names). The text is remembered
    with what it says, so the settlement of the same call (a CDR is settled right after it
    is authorized) reads it back without parsing it."""
    rate = route.rate
    data = {
        "deck_version": deck_version,
        "blocked": route.blocked, "pool": route.pool.code if route.pool else None,
        "credits": route.credits, "overage": route.overage, "free": route.free,
        "no_pay_reason": route.no_pay_reason, "capability": route.capability,
        "toll_free_inbound": route.toll_free_inbound,
        "rate": None if rate is None else {
            "prefix": rate.prefix, "destination": rate.destination,
            "number_type": rate.number_type, "per_minute": str(rate.per_minute),
            "connection_fee": str(rate.connection_fee), "increment_s": rate.increment_s},
        "number": None if number is None else {
            "e164": number.e164, "digits": number.digits, "country": number.country,
            "number_type": number.number_type},
        "party": None if party is None else {
            "id": party.id, "upn": party.upn, "display_name": party.display_name,
            "usage_location": party.usage_location},
    }
    text = orjson.dumps(data).decode()
    if route.pool is None or PoolKey.parse(route.pool.code) == route.pool:  # reads back equal
        _remember(text, data, route)
    return text


def route_data(call: Any) -> dict[str, Any]:
    """What ``route_json`` stored with the call (shared: read it, never change it)."""
    return _parsed(call.route)[0]


def route_of(call: Any) -> Route:
    """The route stored with the call."""
    return _parsed(call.route)[1]


#: stored route text → (its JSON as Python values, its Route): calls of one user to one
#: number store the same text, and a route just written is read back at once (a CDR)
_ROUTES: dict[str, tuple[dict[str, Any], Route]] = {}
_ROUTES_KEPT = 4096


def _remember(text: str, data: dict[str, Any], route: Route) -> None:
    if len(_ROUTES) >= _ROUTES_KEPT:
        _ROUTES.clear()  # (one step, safe with other threads reading)
    _ROUTES[text] = (data, route)


def _parsed(text: str) -> tuple[dict[str, Any], Route]:
    """A stored route's JSON and its ``Route``, parsed once per text."""
    found = _ROUTES.get(text)
    if found is None:
        data = orjson.loads(text)
        found = (data, route_from(data))
        _remember(text, *found)
    return found


def route_from(data: dict[str, Any]) -> Route:
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


def rate_data(rate: Rate | None) -> dict[str, Any] | None:
    return None if rate is None else {
        "prefix": rate.prefix, "destination": rate.destination,
        "number_type": rate.number_type, "per_minute": str(rate.per_minute),
        "connection_fee": str(rate.connection_fee), "increment_s": rate.increment_s}


def usage_detail(*, deck_version: int | None, rate: Rate | None,
                 draws: list[tuple[str, Decimal]], lots: list[Lot], txn_ids: list[str],
                 seconds: tuple[int, int, int] | None = None,
                 pool: tuple[str, int, int] | None = None) -> str:
    """What a usage record's explanation is made of, stored with it when it settles
    (``usage_records.detail``): the deck version and rate line that priced it, the seconds
    split (pool, credits, overage), the pool counter (code, used minutes before, after),
    the expiry of each lot drawn from and the ledger transaction ids. ``lots``: the tenant's
    lots as held in this transaction."""
    drawn = {lot_id for lot_id, _ in draws}
    return orjson.dumps({
        "deck_version": deck_version, "rate": rate_data(rate),
        "seconds": list(seconds) if seconds else None,
        "pool": list(pool) if pool else None,
        "expires": {lot.id: lot.expires_at.isoformat() for lot in lots if lot.id in drawn},
        "txn": txn_ids}).decode()


def grant_of(call: sa.Row) -> Grant:
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


def pool_left_s(uow: UnitOfWork, tenant_id: str, key: PoolKey, month: str) -> int:
    row = uow.charging.pool(tenant_id, month, key.code, lock=True)
    total = pool_total(uow, tenant_id, key)
    return max(0, total * 60 - row.used_minutes * 60 - row.reserved_s)


def grant_values(grant: Grant) -> dict[str, Any]:
    return {"pool_s": grant.pool_s, "credit_s": grant.credit_s,
            "credit_reserved": grant.credit_reserved, "with_fee": grant.with_fee,
            "tail": grant.tail}


def settle_pool(uow: UnitOfWork, tenant: Tenant, key: PoolKey, month: str, reserved_s: int,
                minutes: int) -> tuple[int, int]:
    """Use ``minutes`` of the pool and free ``reserved_s``; returns the minutes used before
    and after."""
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
    return row.used_minutes, used
