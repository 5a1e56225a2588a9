"""Call decisions, grants and settlement — pure rules (SPEC §2 What credits pay for).

A call is *routed* once (who pays, in which order, at what rate), then *granted* time in
slices as the switch asks (pool minutes first, then credits reserved as money, or an
unlimited tail for overage / free calls), and finally *settled* from its real duration.

Funding order: included pool → credits (user or organizer holds MCOPSTNPP and the tenant has
available funds) → overage (``nce`` tenants that turned it on) → blocked with a reason. The
same order holds at settlement for seconds past the grant (a switch that did not cut).

Premium-rate numbers never draw on a pool. A call that cannot be priced is free beyond any
pool (``FREECALL``), or blocked with ``no_rate`` when the tenant's ``no_rate`` policy is
``block``.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from commcredits.domain import licensing
from commcredits.domain.money import ZERO, round_half_up
from commcredits.domain.numbers import Number
from commcredits.domain.pools import PoolKey, minutes_for
from commcredits.domain.rating import Rate
from commcredits.domain.tenancy import Commerce

INBOUND = frozenset({"user_in", "conf_in", "ucap_in"})
CONFERENCE_OUT = frozenset({"conf_out", "user_out_conf"})
#: Charged like ``user_out``, reported with their own type.
USER_OUT = frozenset({"user_out", "user_out_transfer", "user_out_forwarding"})
OUTBOUND = USER_OUT | {"ucap_out"} | CONFERENCE_OUT
CALL_TYPES = INBOUND | OUTBOUND
#: Calls by auto attendants and call queues: no user (the report's user columns are empty).
BOT_CALLS = frozenset({"ucap_in", "ucap_out"})

FREECALL = "FREECALL"
NO_RATE_POLICIES = ("free", "block")
OVERAGE_DISABLED = "overage_disabled"
NO_RATE = "no_rate"


@dataclass(frozen=True, slots=True)
class Party:
    id: str
    upn: str
    display_name: str
    usage_location: str
    licenses: frozenset[str]

    @property
    def has_credits_license(self) -> bool:
        return licensing.CREDITS in self.licenses


@dataclass(frozen=True, slots=True)
class Route:
    """How a call is paid for, before looking at balances."""

    blocked: str | None = None
    pool: PoolKey | None = None
    credits: bool = False  # credits may pay (license held)
    overage: bool = False  # nce tenant: usage beyond pools is billed later
    free: bool = False  # nothing to pay (incoming, or unpriceable)
    no_pay_reason: str = "no_credits_license"  # why it is blocked when nothing can pay
    rate: Rate | None = None
    capability: str = FREECALL
    toll_free_inbound: bool = False


def blocked(reason: str) -> Route:
    return Route(blocked=reason)


def route_call(call_type: str, *, commerce: Commerce, party: Party | None, number: Number,
               rate: Rate | None, toll_free_inbound: bool, allow_premium: bool,
               zone_a: frozenset[str], blocked_prefixes: frozenset[str] = frozenset(),
               overage_enabled: bool = False, no_rate: str = "free") -> Route:
    """Decide who pays for a call. ``number`` is the destination, or for an inbound call to a
    toll-free number the caller's origin. ``party`` is the user, or the meeting organizer.

    ``overage_enabled``: an ``nce`` tenant turned pay-as-you-go overage on (otherwise its
    calls stop once pools and any remaining credits are used: ``overage_disabled``).
    ``no_rate``: ``free`` (FREECALL) or ``block`` for what no rate prices."""
    nce = commerce is Commerce.NCE
    overage = nce and overage_enabled
    no_pay = OVERAGE_DISABLED if nce and not overage_enabled else "insufficient_credits"
    if call_type in INBOUND:
        if not toll_free_inbound:
            return Route(free=True, capability=_plan_capability(party))
        # the tenant pays every minute of calls to its toll-free numbers, from credits
        if rate is None:
            if no_rate == "block":
                return blocked(NO_RATE)
            return Route(free=True, capability=FREECALL, toll_free_inbound=True)
        return Route(credits=True, overage=overage, rate=rate,
                     capability=licensing.CREDITS, toll_free_inbound=True,
                     no_pay_reason=no_pay)
    if any(number.digits.startswith(p) for p in blocked_prefixes):
        return blocked("destination_blocked")
    premium = number.number_type == "premium"
    if premium and not allow_premium:
        return blocked("destination_blocked")
    if call_type == "ucap_out":  # auto attendants and call queues: the tenant pays
        return _paid(rate, no_rate, credits=True, overage=overage,
                     capability=licensing.CREDITS, no_pay_reason=no_pay)
    if party is None:
        return blocked("unknown_user")
    have = licensing.effective(party.licenses)
    no_license = OVERAGE_DISABLED if nce and not overage_enabled else "no_credits_license"
    if call_type in CONFERENCE_OUT:
        if not have & licensing.CONFERENCING:
            return blocked("no_conferencing_license")
        pool = None
        pooled = licensing.AUDIO_CONFERENCING in have  # pay-per-minute has no pool
        if pooled and number.country in zone_a and not premium:
            pool = PoolKey("conferencing")
        return _paid(rate, no_rate, pool=pool, credits=party.has_credits_license,
                     overage=overage, no_pay_reason=no_license,
                     capability=licensing.AUDIO_CONFERENCING if pooled
                     else licensing.CONFERENCING_PPM)
    plans = have & licensing.CALLING_PLANS
    if not plans:
        return blocked("no_calling_plan")
    pool = None
    if premium:  # never included in a plan
        pass
    elif number.is_domestic_for(party.usage_location):
        for plan in licensing.DOMESTIC_PLANS:
            if plan in plans:
                pool = PoolKey("domestic", party.usage_location, plan)
                break
    elif licensing.INTERNATIONAL_PLAN in plans:
        pool = PoolKey("international", party.usage_location, licensing.INTERNATIONAL_PLAN)
    capability = pool.plan if pool and pool.plan else sorted(plans)[0]
    return _paid(rate, no_rate, pool=pool, credits=party.has_credits_license,
                 overage=overage, no_pay_reason=no_license, capability=capability)


def _paid(rate: Rate | None, no_rate: str = "free", **route: Any) -> Route:
    """The route of the fields ``route``: beyond any pool the call must be priced; if it
    cannot be, that part is free — or, under the ``block`` policy, not allowed
    (``no_rate``). (Built at once: ``dataclasses.replace`` cost more than the rule.)"""
    if rate is None:
        if no_rate == "block":
            return Route(**{**route, "credits": False, "overage": False,
                            "no_pay_reason": NO_RATE})
        return Route(**{**route, "free": True, "credits": False, "overage": False})
    return Route(**route, rate=rate)


def _plan_capability(party: Party | None) -> str:
    if party is None:
        return licensing.PHONE_SYSTEM
    plans = licensing.effective(party.licenses) & licensing.CALLING_PLANS
    return sorted(plans)[0] if plans else licensing.PHONE_SYSTEM


# -- grants ----------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Grant:
    """What a call has been allowed so far."""

    pool_s: int = 0
    credit_s: int = 0
    credit_reserved: Decimal = ZERO
    with_fee: bool | None = None  # decided when credits first pay (fee only if they pay first)
    tail: str | None = None  # "overage" or "free": unlimited time after the granted part

    @property
    def max_duration_s(self) -> int | None:
        return None if self.tail else self.pool_s + self.credit_s


@dataclass(frozen=True, slots=True)
class Extension:
    grant: Grant
    pool_take_s: int  # pool seconds newly reserved
    money_take: Decimal  # credits newly reserved


def extend(route: Route, grant: Grant, want_s: int, pool_left_s: int, available: Decimal,
           currency: str) -> Extension:
    """Grant up to ``want_s`` more seconds: pool first, then credits, then an unlimited tail."""
    if grant.tail:
        return Extension(grant, 0, ZERO)
    pool_take = 0
    if route.pool and grant.credit_s == 0 and pool_left_s > 0:
        pool_take = min(want_s, pool_left_s)
        want_s -= pool_take
    # the grant's fields, changed below (as ``dataclasses.replace`` would, without its cost)
    pool_s, credit_s, reserved = grant.pool_s + pool_take, grant.credit_s, grant.credit_reserved
    fee, tail = grant.with_fee, grant.tail
    money = ZERO
    if want_s > 0:
        rate = route.rate
        if route.free:
            tail = "free"
        elif route.credits and rate is not None:
            with_fee = fee if fee is not None else pool_s == 0
            affordable = rate.seconds_for(reserved + available, currency, with_fee=with_fee)
            if affordable is None:  # free per minute: the fee buys unlimited time
                money = max(rate.charge(1, currency, with_fee=with_fee) - reserved, ZERO)
                fee, reserved, tail = with_fee, reserved + money, "free"
            else:
                target = min(credit_s + want_s, affordable)
                if target > credit_s:
                    cost = rate.charge(target, currency, with_fee=with_fee)
                    money = cost - reserved
                    credit_s, reserved, fee = target, cost, with_fee
                if target < credit_s + want_s and route.overage and money == ZERO:
                    tail = "overage"
        elif route.overage:
            tail = "overage"
    new = Grant(pool_s, credit_s, reserved, fee, tail)
    return Extension(new, pool_take, money)


def first_funding(route: Route, grant: Grant) -> str | None:
    """The decision's ``funding``, or None when nothing was granted (blocked)."""
    if grant.pool_s > 0:
        return "included"
    if grant.credit_s > 0 or (grant.credit_reserved > ZERO and grant.tail == "free"):
        return "credits"
    if grant.tail == "overage":
        return "overage"
    if grant.tail == "free":
        return "free"
    return None


def block_reason(route: Route) -> str:
    if route.blocked:
        return route.blocked
    if route.no_pay_reason in {NO_RATE, OVERAGE_DISABLED}:
        return route.no_pay_reason
    if route.credits:
        return "insufficient_credits"
    return route.no_pay_reason


# -- settlement ------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Settlement:
    duration_s: int
    pool_s: int
    pool_minutes: int
    credit_s: int
    credit_charge: Decimal  # what the call costs on credits (before any shortfall cap)
    overage_s: int
    overage_charge: Decimal
    connection_fee: Decimal

    @property
    def funding(self) -> str:
        if self.credit_charge > ZERO:
            return "credits"
        if self.overage_charge > ZERO:
            return "overage"
        if self.pool_minutes > 0:
            return "included"
        return "free"


@dataclass(frozen=True, slots=True)
class Split:
    """Which seconds of a call each source pays (time only: no money yet)."""

    duration_s: int
    pool_s: int
    credit_s: int
    overage_s: int
    with_fee: bool
    fee_buys_all: bool  # a free-per-minute rate: the fee paid for the whole talk


def settle(route: Route, grant: Grant, duration_s: int, currency: str,
           pool_left_s: int = 0, credits_available: Decimal | None = None) -> Settlement:
    """Split the real duration (:func:`split`) and price it at the route's rate
    (:func:`price`)."""
    return price(route, grant, split(route, grant, duration_s, currency, pool_left_s,
                                     credits_available), currency)


def split(route: Route, grant: Grant, duration_s: int, currency: str,
          pool_left_s: int = 0, credits_available: Decimal | None = None) -> Split:
    """Split the real duration: pool seconds, then credit seconds, then the tail.

    Seconds past the whole grant (a switch that did not cut the call) follow the funding
    order too: the pool while it has seconds left (``pool_left_s``: what it holds beyond this
    call's own reservation) if the call was still in its pool, then credits, then overage.
    With ``credits_available`` (what the wallet holds for this call, its reservation
    included) an overage route pays from credits only what they cover and the rest as
    overage; otherwise credits take it all (the charge is then capped by what the wallet
    holds, the rest uncollected).
    """
    duration_s = max(0, duration_s)
    pool_cap = grant.pool_s
    if route.pool and grant.tail is None and grant.credit_s == 0 and grant.pool_s > 0:
        pool_cap += max(0, pool_left_s)
    pool_s = min(duration_s, pool_cap)
    rest = duration_s - pool_s
    rate = route.rate
    with_fee = grant.with_fee if grant.with_fee is not None else pool_s == 0
    if grant.tail:
        credit_s = min(rest, grant.credit_s)
    else:
        credit_s = rest if (grant.credit_s or route.credits) and route.rate else 0
        if route.overage and rate and credits_available is not None \
                and credit_s > grant.credit_s:
            covered = rate.seconds_for(credits_available, currency, with_fee=with_fee)
            if covered is not None:
                credit_s = min(credit_s, max(covered, grant.credit_s))
    tail_s = rest - credit_s
    overage_s = tail_s if grant.tail == "overage" or (grant.tail is None and route.overage) \
        else 0
    fee_buys_all = grant.tail == "free" and grant.credit_reserved > ZERO and rate is not None \
        and rate.per_minute == ZERO and rest > 0
    return Split(duration_s, pool_s, credit_s, overage_s, with_fee, fee_buys_all)


def price(route: Route, grant: Grant, sp: Split, currency: str) -> Settlement:
    """What a split costs at the route's rate. Re-rating prices a settled call's split again
    with the route's rate replaced by another deck's (``domain.rerate``)."""
    rate = route.rate
    credit_s, overage_s, with_fee = sp.credit_s, sp.overage_s, sp.with_fee
    credit_charge = rate.charge(credit_s, currency, with_fee=with_fee) if (
        rate and credit_s and route.credits) else ZERO
    if sp.fee_buys_all and rate is not None:
        credit_charge = rate.charge(sp.duration_s - sp.pool_s, currency, with_fee=with_fee)
    overage_charge = rate.charge(overage_s, currency, with_fee=with_fee and credit_s == 0) \
        if rate and overage_s else ZERO
    fee = ZERO
    if rate and with_fee and (credit_charge or overage_charge):
        fee = round_half_up(rate.connection_fee, currency)  # shown as the charge rounds
    return Settlement(sp.duration_s, sp.pool_s, minutes_for(sp.pool_s), credit_s, credit_charge,
                      overage_s, overage_charge, fee)
