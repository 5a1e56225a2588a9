"""Real-time call charging: decide, grant time in slices, settle, release.

Safety under concurrency: every step that reserves or spends takes the tenant's wallet lock
(and the pool counter's row lock on PostgreSQL) in the same transaction, so the sum of what
is reserved never exceeds what the lots hold, and settlement never takes a lot below zero.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson

from commcredits.domain import call_clock
from commcredits.domain import calls as rules
from commcredits.domain import pools as poolrules
from commcredits.domain.calls import Extension, Grant, Party, Route
from commcredits.domain.errors import DomainError, ErrorKind, conflict, invalid, not_found
from commcredits.domain.money import ZERO
from commcredits.domain.numbers import Number, classify
from commcredits.domain.rating import Rate, RateDeck
from commcredits.domain.tenancy import Tenant
from commcredits.domain.wallet import RechargeStatus, Wallet
from commcredits.services import settlement
from commcredits.services.call_records import (
    grant_of,
    grant_values,
    pool_left_s,
    pool_total,
    route_json,
    route_of,
)
from commcredits.services.tenants import get_tenant

if TYPE_CHECKING:
    import sqlalchemy as sa

    from commcredits.adapters.db.repositories.directory import User
    from commcredits.adapters.db.repositories.tenants import WalletRow
    from commcredits.adapters.db.uow import UnitOfWork

__all__ = ["pool_total"]  # the minute-pools report reads pool sizes through this module


def _zone_a() -> frozenset[str]:
    from commcredits.data import zone_a_countries
    return zone_a_countries()


# -- decide -----------------------------------------------------------------------------------
class _Context(NamedTuple):
    known: bool  # the call id is taken: answer the stored decision
    tenant: Tenant | None  # None: no such tenant
    party: Party | None
    deck: RateDeck | None
    deck_version: int | None = None


def _context(uow: UnitOfWork, call_id: str, tenant_id: str, upn: str | None) -> _Context:
    """What deciding a call reads, in one round trip (``call_context``), fresh each time:
    nothing cached but the deck, keyed by the version read in that same statement (a CDR
    batch's unit of work answers it from the batch's memory)."""
    ctx = uow.charging.call_context(call_id, tenant_id, upn)
    if ctx is None:
        return _Context(uow.charging.call(call_id) is not None, None, None, None)
    if ctx.existing_call:
        return _Context(True, None, None, None)
    return _Context(False, ctx.tenant, _party_from(ctx.user),
                    uow.rates.deck_at(ctx.tenant.currency, ctx.deck_version), ctx.deck_version)


def _party_from(user: User | None) -> Party | None:
    return None if user is None else Party(user.id, user.upn, user.display_name,
                                           user.usage_location, user.licenses)


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
    return _party_from(uow.directory.user_by_id(tenant_id, user_id))


def authorize_call(uow: UnitOfWork, slice_s: int, body: dict[str, Any],
                   at: datetime | None = None, happened: bool = False) -> dict[str, Any]:
    """``POST /v1/calls``: may this call go ahead, who pays, and for how long.

    ``at`` backdates the call (offline CDR rating): its start time and pool month.
    ``happened``: the call took place (a CDR), so a call credits should have paid is let
    through even when they ran out; settling it records what they could not pay as
    ``uncollected`` instead of the usage vanishing as ``blocked``.
    """
    started = at or uow.now
    call_id = str(body["call_id"])
    call_type = body["call_type"]
    upn = body.get("organizer_upn") if call_type in rules.CONFERENCE_OUT else None
    upn = None if call_type in rules.BOT_CALLS else (upn or body.get("upn"))
    known, tenant, party, deck, version = _context(uow, call_id, body["tenant_id"],
                                                   upn or None)
    if known:
        first = stored_decision(uow, call_id, body["tenant_id"], slice_s)
        if first is None:
            raise conflict("call_id_in_use", f"call {call_id!r} belongs to another tenant")
        return first
    if call_type not in rules.CALL_TYPES:
        raise invalid("validation_error", f"call_type must be one of "
                                          f"{', '.join(sorted(rules.CALL_TYPES))}")
    if tenant is None:
        raise not_found("tenant", body["tenant_id"])
    route, number = _route(uow, tenant, call_type, body, party, deck)
    grant, capped, final = Grant(), False, False
    month = poolrules.month_of(started)
    if not route.blocked and not (route.free and route.pool is None):
        ext, capped, final = _extend(uow, tenant, route, party, Grant(), slice_s, month)
        grant = ext.grant
    elif route.free:
        grant = Grant(tail="free")
    funding = rules.first_funding(route, grant)
    decision = "allowed" if funding else "blocked"
    reason = None if funding else rules.block_reason(route)
    if reason == "insufficient_credits" and capped:
        reason = "daily_cap_reached"
    if happened and reason in {"insufficient_credits", "daily_cap_reached"}:
        funding, decision, reason = "credits", "allowed", None  # nothing reserved
    uow.charging.add_call(
        call_id=call_id, tenant_id=tenant.id, call_type=call_type,
        from_number=str(body.get("from") or "")[:40], to_number=str(body.get("to") or "")[:40],
        user_id=party.id if party else None, conference_id=body.get("conference_id"),
        decision=decision, reason=reason, route=route_json(route, number, party, version),
        pool=route.pool.code if route.pool and funding else None,
        pool_month=month if route.pool else None, pool_s=grant.pool_s,
        credit_s=grant.credit_s, credit_reserved=grant.credit_reserved,
        with_fee=grant.with_fee, tail=grant.tail,
        status="active" if funding else "blocked", started_at=started, last_seen_at=uow.now,
        elapsed_s=0, final=final)
    out: dict[str, Any] = {"call_id": call_id, "decision": decision}
    if reason:
        return {**out, **blocked_view(reason)}
    out["funding"] = funding
    return {**out, **grant_view(grant.max_duration_s, 0, final, slice_s)}


def blocked_view(reason: str) -> dict[str, Any]:
    """A refusal, with the SIP response a switch should send for it."""
    code, text = call_clock.sip_response(reason)
    return {"reason": reason, "sip_code": code, "sip_reason": text}


def grant_view(max_s: int | None, elapsed_s: int, final: bool, slice_s: int) -> dict[str, Any]:
    """``max_duration_s`` (absent: unlimited), ``final`` and when to ask again."""
    out: dict[str, Any] = {}
    if max_s is not None:
        out["max_duration_s"] = max_s
    out["final"] = final
    validity = call_clock.validity_s(max_s, elapsed_s, final, slice_s)
    if validity is not None:
        out["validity_s"] = validity
    return out


def _extend(uow: UnitOfWork, tenant: Tenant, route: Route, party: Party | None, grant: Grant,
            want_s: int, month: str) -> tuple[Extension, bool, bool]:
    """Grant up to ``want_s`` more seconds under the wallet lock and reserve them.

    Returns the extension, whether the per-user daily cap bound it, and whether the grant is
    final (it fell short and no auto-recharge can bring more)."""
    wallet, lots = uow.tenants.wallet_and_lots(tenant.id)  # locked
    pool_left = pool_left_s(uow, tenant.id, route.pool, month) if route.pool else 0
    available = Wallet(tenant.id, wallet.currency, tuple(lots), wallet.reserved).available(
        uow.now)
    spendable, capped = _within_cap(uow, tenant, party, available)
    ext = rules.extend(route, grant, want_s, pool_left, spendable, tenant.currency)
    if rules.first_funding(route, ext.grant):
        _reserve(uow, wallet, tenant.id, route, month, ext.pool_take_s, ext.money_take)
    wanted = grant.pool_s + grant.credit_s + want_s
    recharge = wallet.auto_recharge.enabled and \
        wallet.auto_recharge.status is not RechargeStatus.SUSPENDED and not capped
    return ext, capped, call_clock.is_final(ext.grant.max_duration_s, wanted, recharge)


def _route(uow: UnitOfWork, tenant: Tenant, call_type: str, body: dict[str, Any],
           party: Party | None, deck: RateDeck | None) -> tuple[Route, Number | None]:
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
    rate = rate_for(deck, number, toll_free)
    route = rules.route_call(call_type, commerce=tenant.commerce, party=party, number=number,
                             rate=rate, toll_free_inbound=toll_free,
                             allow_premium=tenant.allow_premium, zone_a=_zone_a(),
                             blocked_prefixes=tenant.blocked_prefixes,
                             overage_enabled=tenant.overage_enabled, no_rate=tenant.no_rate)
    return route, number


def rate_for(deck: RateDeck | None, number: Number, toll_free_inbound: bool) -> Rate | None:
    """The deck's rate for a call's number (longest prefix): the caller's origin for an
    inbound call to a toll-free number, the destination's number type otherwise. Live calls,
    CDRs and re-rating (``services.rerate``) all look rates up here."""
    if deck is None:
        return None
    return deck.lookup(number.digits,
                       "toll_free_inbound" if toll_free_inbound else number.number_type)


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


def stored_decision(uow: UnitOfWork, call_id: str, tenant_id: str,
                    slice_s: int = 300) -> dict[str, Any] | None:
    """The decision already recorded for ``call_id`` (None if there is none)."""
    call = uow.charging.call(call_id)
    if call is None or call.tenant_id != tenant_id:
        return None
    return decision_view(call, slice_s)


def decision_view(call: sa.Row, slice_s: int = 300) -> dict[str, Any]:
    out: dict[str, Any] = {"call_id": call.call_id, "decision": call.decision}
    if call.decision == "blocked":
        return {**out, **blocked_view(call.reason)}
    route = route_of(call)
    out["funding"] = rules.first_funding(route, grant_of(call)) or "free"
    return {**out, **grant_view(grant_of(call).max_duration_s, 0, call.final, slice_s)}


# -- interim ----------------------------------------------------------------------------------
def _active_call(uow: UnitOfWork, call_id: str) -> sa.Row:
    call = uow.charging.call(call_id, lock=True)
    if call is None:
        raise not_found("call", call_id)
    return call


def interim(uow: UnitOfWork, slice_s: int, call_id: str, elapsed_s: int,
            answered_at: datetime | None = None) -> dict[str, Any]:
    """Extend the grant while funds last. ``max_duration_s`` is the total since the answer
    (or, for a switch without answer events, since the authorization)."""
    return _interim(uow, slice_s, _active_call(uow, call_id), elapsed_s, answered_at)


def _interim(uow: UnitOfWork, slice_s: int, call: sa.Row, elapsed_s: int,
             answered_at: datetime | None = None) -> dict[str, Any]:
    call_id = call.call_id
    if answered_at is not None and call.answered_at is None and call.status == "active":
        call = _record_answer(uow, call, answered_at)
    if call.status == "expired":  # heard from after its authorization lapsed: grant again
        call = _regrant(uow, call, max(elapsed_s, 0) + slice_s)
    if call.status != "active":
        return {"continue": False, "reason": "call_ended" if call.status == "ended"
                else call.reason, "final": True}
    if call.cut_reason:
        uow.charging.update_call(call_id, last_seen_at=uow.now,
                                 elapsed_s=max(elapsed_s, call.elapsed_s))
        return {"continue": False, "reason": call.cut_reason, "final": True,
                **({} if call.tail else {"max_duration_s": grant_of(call).max_duration_s})}
    grant = grant_of(call)
    elapsed_s = max(elapsed_s, call.elapsed_s)
    values: dict[str, Any] = {"last_seen_at": uow.now, "elapsed_s": elapsed_s}
    final = call.final
    if grant.max_duration_s is not None and elapsed_s + slice_s > grant.max_duration_s:
        tenant = get_tenant(uow, call.tenant_id)
        route = route_of(call)
        month = call.pool_month or poolrules.month_of(uow.now)
        want = elapsed_s + slice_s - grant.max_duration_s
        party = _party_of(uow, tenant.id, call.user_id)
        ext, _, final = _extend(uow, tenant, route, party, grant, want, month)
        grant = ext.grant
        values.update(grant_values(grant), pool=route.pool.code if route.pool else None,
                      pool_month=month, final=final)
    uow.charging.update_call(call_id, **values)
    max_s = grant.max_duration_s
    return {"continue": max_s is None or elapsed_s < max_s,
            **grant_view(max_s, elapsed_s, final, slice_s)}


def _record_answer(uow: UnitOfWork, call: sa.Row, reported: datetime | None) -> sa.Row:
    """Billing and the silent-call clock run from the answer; ringing was not billable."""
    at = call_clock.answer_time(reported, call.started_at, uow.now)
    uow.charging.update_call(call.call_id, answered_at=at, last_seen_at=uow.now, elapsed_s=0)
    return _active_call(uow, call.call_id)


def _regrant(uow: UnitOfWork, call: sa.Row, want_s: int) -> sa.Row:
    """Reserve again for a call whose authorization lapsed (its reservation was released)."""
    tenant = get_tenant(uow, call.tenant_id)
    route = route_of(call)
    month = call.pool_month or poolrules.month_of(call.started_at)
    party = _party_of(uow, tenant.id, call.user_id)
    if route.free and route.pool is None:
        grant, final = Grant(tail="free"), False
    else:
        ext, _, final = _extend(uow, tenant, route, party, Grant(), max(want_s, 1), month)
        grant = ext.grant
    uow.charging.update_call(call.call_id, status="active", settled_by=None, final=final,
                             **grant_values(grant))
    return _active_call(uow, call.call_id)


def answer(uow: UnitOfWork, slice_s: int, call_id: str,
           answered_at: datetime | None = None) -> dict[str, Any]:
    """``POST /v1/calls/{id}/answer``: the callee picked up. Repeating it changes nothing."""
    call = _active_call(uow, call_id)
    if call.status == "blocked":
        raise DomainError("call_blocked", f"call {call_id!r} was blocked: {call.reason}",
                          ErrorKind.CONFLICT)
    if call.status == "expired":  # rang past its authorization: reserve again
        call = _regrant(uow, call, slice_s)
    if call.status == "active" and call.answered_at is None:
        call = _record_answer(uow, call, answered_at)
    return _interim(uow, slice_s, call, call.elapsed_s)


# -- end --------------------------------------------------------------------------------------
def end_call(uow: UnitOfWork, call_id: str, duration_s: int,
             answered_at: datetime | None = None) -> dict[str, Any]:
    """Settle the exact charge FIFO across lots, free the rest. Repeating it changes nothing;
    an ``end`` after the service settled a silent call corrects that settlement."""
    call = _active_call(uow, call_id)
    duration_s = max(0, duration_s)
    if call.status == "blocked":
        raise DomainError("call_blocked", f"call {call_id!r} was blocked: {call.reason}",
                          ErrorKind.CONFLICT)
    if call.status == "ended":
        if call.settled_by == "silence":
            return settlement.correct(uow, call, duration_s)
        return dict(orjson.loads(call.result))
    if call.status == "expired":  # a switch without answer or interim events
        call = _regrant(uow, call, duration_s)
    if answered_at is not None and call.answered_at is None:
        call = _record_answer(uow, call, answered_at)
    return settlement.settle(uow, call, duration_s)


