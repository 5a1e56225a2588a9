"""Call rules: who pays (route_call), the time granted (extend), and settlement (settle)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from commcredits.domain.calls import (
    FREECALL,
    Grant,
    Party,
    Route,
    block_reason,
    blocked,
    extend,
    first_funding,
    route_call,
    settle,
)
from commcredits.domain.numbers import classify
from commcredits.domain.pools import PoolKey
from commcredits.domain.rating import Rate
from commcredits.domain.tenancy import Commerce
from tests.domain.helpers import cents

D = Decimal
USD = "USD"
LEGACY, NCE = Commerce.LEGACY, Commerce.NCE
RATE = Rate("1", "Somewhere", "any", D("0.60"), D("0.10"), 60)
ZONE_A = frozenset({"US", "CA", "GB", "DE"})  # FR deliberately outside

US_GEO = "+14255550100"
US_TOLL_FREE = "+18002530000"
US_PREMIUM = "+19002530000"
PR_GEO = "+17875550100"
CA_GEO = "+16135550100"
GB_GEO = "+442079460000"
GB_MOB = "+447400123456"
FR_GEO = "+33123456789"
FR_PREMIUM = "+33891234567"
FREEPHONE = "+80012345678"

DOM, INTL, PAYG = "MCOPSTN1", "MCOPSTN2", "MCOPSTN_PAYG"


def who(name: str, location: str, *licenses: str) -> Party:
    return Party(name, f"{name}@contoso.com", name.title(), location, frozenset(licenses))


USERS: dict[str, Party | None] = {
    "dom_pp": who("dom_pp", "US", "MCOEV", DOM, "MCOPSTNPP"),
    "dom": who("dom", "US", "MCOEV", DOM),
    "intl_pp": who("intl_pp", "US", "MCOEV", INTL, "MCOPSTNPP"),
    "payg_pp": who("payg_pp", "US", "MCOEV", PAYG, "MCOPSTNPP"),
    "payg": who("payg", "US", "MCOEV", PAYG),
    "ev_pp": who("ev_pp", "US", "MCOEV", "MCOPSTNPP"),
    "fr_dom_pp": who("fr_dom_pp", "FR", "MCOEV", DOM, "MCOPSTNPP"),
    "conf_pp": who("conf_pp", "FR", "MCOMEETADD", "MCOPSTNPP"),
    "conf": who("conf", "FR", "MCOMEETADD"),
    "e5_pp": who("e5_pp", "DE", "SPE_E5", "MCOPSTNPP"),
    "e5": who("e5", "DE", "SPE_E5"),
    "nobody": None,
}


def route_for(call_type: str, user: str, number: str, *, commerce: Commerce = LEGACY,
              rate: Rate | None = RATE, toll_free_inbound: bool = False,
              allow_premium: bool = False, zone_a: frozenset[str] = ZONE_A,
              blocked_prefixes: frozenset[str] = frozenset(),
              overage_enabled: bool = True) -> Route:
    """NCE tenants here have pay-as-you-go overage on (test_microsoft_rules covers off)."""
    return route_call(call_type, commerce=commerce, party=USERS[user], number=classify(number),
                      rate=rate, toll_free_inbound=toll_free_inbound,
                      allow_premium=allow_premium, zone_a=zone_a,
                      blocked_prefixes=blocked_prefixes, overage_enabled=overage_enabled)


@dataclass(frozen=True)
class Decision:
    funding: str | None
    reason: str | None
    grant: Grant
    money: Decimal
    pool_take: int


def decide(route: Route, *, want_s: int = 300, pool_left_s: int = 6000,
           available: str = "10.00") -> Decision:
    """What the switch is told for the first slice of a call."""
    ext = extend(route, Grant(), want_s, pool_left_s, D(available), USD)
    funding = first_funding(route, ext.grant)
    return Decision(funding, None if funding else block_reason(route), ext.grant,
                    ext.money_take, ext.pool_take_s)


def dom_pool(country: str, plan: str = DOM) -> PoolKey:
    return PoolKey("domestic", country, plan)


INTL_US = PoolKey("international", "US", INTL)
CONF = PoolKey("conferencing")


# -- the decision table ----------------------------------------------------------------------

@pytest.mark.parametrize(
    ("call_type", "user", "number", "commerce", "pool_left", "available", "pool", "funding",
     "reason"),
    [
        # included pool first, then credits, then nothing / overage
        ("user_out", "dom_pp", US_GEO, LEGACY, 6000, "10.00", dom_pool("US"), "included", None),
        ("user_out", "dom_pp", US_GEO, LEGACY, 0, "10.00", dom_pool("US"), "credits", None),
        ("user_out", "dom_pp", US_GEO, LEGACY, 0, "0.00", dom_pool("US"), None,
         "insufficient_credits"),
        ("user_out", "dom", US_GEO, LEGACY, 6000, "10.00", dom_pool("US"), "included", None),
        ("user_out", "dom", US_GEO, LEGACY, 0, "10.00", dom_pool("US"), None,
         "no_credits_license"),
        ("user_out", "dom", US_GEO, NCE, 0, "0.00", dom_pool("US"), "overage", None),
        ("user_out", "dom_pp", US_GEO, NCE, 0, "10.00", dom_pool("US"), "credits", None),
        ("user_out", "dom_pp", US_GEO, NCE, 0, "0.00", dom_pool("US"), "overage", None),
        # international on a domestic plan: no pool
        ("user_out", "dom_pp", GB_MOB, LEGACY, 6000, "10.00", None, "credits", None),
        ("user_out", "dom_pp", FREEPHONE, LEGACY, 6000, "10.00", None, "credits", None),
        ("user_out", "dom", GB_MOB, LEGACY, 6000, "10.00", None, None, "no_credits_license"),
        ("user_out", "dom", GB_MOB, NCE, 6000, "0.00", None, "overage", None),
        # domestic and international plan
        ("user_out", "intl_pp", GB_MOB, LEGACY, 6000, "0.00", INTL_US, "included", None),
        ("user_out", "intl_pp", US_GEO, LEGACY, 6000, "0.00", dom_pool("US", INTL), "included",
         None),
        ("user_out", "intl_pp", GB_MOB, LEGACY, 0, "10.00", INTL_US, "credits", None),
        # pay-as-you-go: no pool, every minute paid
        ("user_out", "payg_pp", US_GEO, LEGACY, 6000, "10.00", None, "credits", None),
        ("user_out", "payg_pp", US_GEO, LEGACY, 6000, "0.00", None, None,
         "insufficient_credits"),
        ("user_out", "payg", US_GEO, LEGACY, 6000, "10.00", None, None, "no_credits_license"),
        ("user_out", "payg", US_GEO, NCE, 6000, "0.00", None, "overage", None),
        # no calling plan at all
        ("user_out", "ev_pp", US_GEO, LEGACY, 6000, "10.00", None, None, "no_calling_plan"),
        ("user_out", "ev_pp", US_GEO, NCE, 6000, "10.00", None, None, "no_calling_plan"),
        ("user_out", "conf_pp", FR_GEO, LEGACY, 6000, "10.00", None, None, "no_calling_plan"),
        ("user_out", "e5_pp", US_GEO, LEGACY, 6000, "10.00", None, None, "no_calling_plan"),
        ("user_out", "nobody", US_GEO, LEGACY, 6000, "10.00", None, None, "unknown_user"),
        # premium is blocked unless allowed
        ("user_out", "dom_pp", US_PREMIUM, LEGACY, 6000, "10.00", None, None,
         "destination_blocked"),
        ("user_out", "dom_pp", FR_PREMIUM, NCE, 6000, "10.00", None, None,
         "destination_blocked"),
        # the pool follows the usage location
        ("user_out", "fr_dom_pp", FR_GEO, LEGACY, 6000, "0.00", dom_pool("FR"), "included",
         None),
        ("user_out", "fr_dom_pp", US_GEO, LEGACY, 6000, "10.00", None, "credits", None),
        # conference dial-out: the conferencing pool only for Zone A non-premium numbers
        ("conf_out", "conf_pp", US_GEO, LEGACY, 3600, "0.00", CONF, "included", None),
        ("conf_out", "conf_pp", GB_MOB, LEGACY, 0, "10.00", CONF, "credits", None),
        ("conf_out", "conf_pp", GB_MOB, LEGACY, 0, "0.00", CONF, None, "insufficient_credits"),
        ("conf_out", "conf", GB_MOB, LEGACY, 0, "10.00", CONF, None, "no_credits_license"),
        ("conf_out", "conf", GB_MOB, NCE, 0, "0.00", CONF, "overage", None),
        ("conf_out", "conf_pp", FR_GEO, LEGACY, 3600, "10.00", None, "credits", None),
        ("conf_out", "conf", FR_GEO, LEGACY, 3600, "10.00", None, None, "no_credits_license"),
        ("conf_out", "conf_pp", FREEPHONE, LEGACY, 3600, "10.00", None, "credits", None),
        ("conf_out", "e5_pp", GB_MOB, LEGACY, 3600, "0.00", CONF, "included", None),
        ("conf_out", "e5", CA_GEO, LEGACY, 3600, "0.00", CONF, "included", None),
        ("user_out_conf", "conf_pp", US_GEO, LEGACY, 3600, "0.00", CONF, "included", None),
        ("conf_out", "dom_pp", US_GEO, LEGACY, 3600, "10.00", None, None,
         "no_conferencing_license"),
        ("conf_out", "conf_pp", US_PREMIUM, LEGACY, 3600, "10.00", None, None,
         "destination_blocked"),
        ("conf_out", "nobody", US_GEO, LEGACY, 3600, "10.00", None, None, "unknown_user"),
        # auto attendants and call queues: the tenant pays, no user needed
        ("ucap_out", "nobody", US_GEO, LEGACY, 6000, "10.00", None, "credits", None),
        ("ucap_out", "dom", US_GEO, LEGACY, 6000, "10.00", None, "credits", None),
        ("ucap_out", "nobody", US_GEO, LEGACY, 6000, "0.00", None, None,
         "insufficient_credits"),
        ("ucap_out", "nobody", US_GEO, NCE, 6000, "0.00", None, "overage", None),
        ("ucap_out", "nobody", US_PREMIUM, LEGACY, 6000, "10.00", None, None,
         "destination_blocked"),
        # inbound is free (not to a toll-free number)
        ("user_in", "dom", GB_MOB, LEGACY, 0, "0.00", None, "free", None),
        ("user_in", "ev_pp", US_GEO, LEGACY, 0, "0.00", None, "free", None),
        ("user_in", "nobody", US_PREMIUM, LEGACY, 0, "0.00", None, "free", None),
        ("conf_in", "conf", FR_GEO, LEGACY, 0, "0.00", None, "free", None),
        ("ucap_in", "nobody", US_GEO, NCE, 0, "0.00", None, "free", None),
    ],
)
def test_decision_table(call_type: str, user: str, number: str, commerce: Commerce,
                        pool_left: int, available: str, pool: PoolKey | None,
                        funding: str | None, reason: str | None) -> None:
    route = route_for(call_type, user, number, commerce=commerce)
    assert route.pool == pool
    d = decide(route, pool_left_s=pool_left, available=available)
    assert (d.funding, d.reason) == (funding, reason)
    if funding is None:
        assert d.grant == Grant()
        assert d.money == 0
        assert d.pool_take == 0
    if funding == "included":
        assert d.grant.pool_s == 300
        assert d.pool_take == 300
        assert d.money == 0
    if funding == "credits":
        assert d.grant.credit_s == 300
        assert d.money == RATE.charge(300, USD) == D("3.10")
    if funding in {"overage", "free"}:
        assert d.grant.max_duration_s is None
        assert d.money == 0


@pytest.mark.parametrize(
    ("location", "number"),
    [("US", US_GEO), ("PR", PR_GEO), ("CA", CA_GEO), ("GB", GB_GEO), ("GB", GB_MOB),
     ("FR", FR_GEO), ("US", US_TOLL_FREE)],
)
def test_domestic_pool_per_plan_and_country(location: str, number: str) -> None:
    for plan in (DOM, INTL):
        party = who("u", location, "MCOEV", plan, "MCOPSTNPP")
        route = route_call("user_out", commerce=LEGACY, party=party, number=classify(number),
                           rate=RATE, toll_free_inbound=False, allow_premium=False,
                           zone_a=ZONE_A)
        assert route.pool == PoolKey("domestic", location, plan)
        assert route.capability == plan
        assert route.credits
    # holding both plans, domestic calls draw on the domestic-only plan's pool
    both = who("u", location, "MCOEV", DOM, INTL)
    route = route_call("user_out", commerce=LEGACY, party=both, number=classify(number),
                       rate=RATE, toll_free_inbound=False, allow_premium=False, zone_a=ZONE_A)
    assert route.pool == PoolKey("domestic", location, DOM)


def test_international_pool_follows_the_usage_location() -> None:
    party = who("u", "FR", "MCOEV", INTL)
    route = route_call("user_out", commerce=LEGACY, party=party, number=classify(US_GEO),
                       rate=RATE, toll_free_inbound=False, allow_premium=False, zone_a=ZONE_A)
    assert route.pool == PoolKey("international", "FR", INTL)
    assert not route.credits


def test_payg_never_has_a_pool() -> None:
    for number in (US_GEO, GB_MOB, FREEPHONE):
        route = route_for("user_out", "payg_pp", number)
        assert route.pool is None
        assert route.credits
        assert route.capability == PAYG


def test_capabilities() -> None:
    assert route_for("user_out", "dom_pp", US_GEO).capability == DOM
    assert route_for("user_out", "dom_pp", GB_MOB).capability == DOM
    assert route_for("conf_out", "conf_pp", GB_MOB).capability == "MCOMEETADD"
    assert route_for("ucap_out", "nobody", GB_MOB).capability == "MCOPSTNPP"
    assert route_for("user_in", "intl_pp", GB_MOB).capability == INTL
    assert route_for("user_in", "ev_pp", GB_MOB).capability == "MCOEV"
    assert route_for("user_in", "nobody", GB_MOB).capability == "MCOEV"


def test_premium_allowed_is_priced() -> None:
    route = route_for("user_out", "dom_pp", FR_PREMIUM, allow_premium=True)
    assert route.blocked is None
    assert route.rate == RATE
    assert decide(route).funding == "credits"
    # never from the conferencing pool, even in Zone A
    conf = route_for("conf_out", "conf_pp", US_PREMIUM, allow_premium=True)
    assert conf.blocked is None
    assert conf.pool is None
    assert decide(conf, pool_left_s=3600).funding == "credits"


def test_conferencing_pool_depends_on_zone_a_not_the_organizer() -> None:
    # a French organizer dialling a French number: FR is not in this Zone A
    assert route_for("conf_out", "conf_pp", FR_GEO).pool is None
    # make FR part of Zone A and the same call draws on the pool
    assert route_for("conf_out", "conf_pp", FR_GEO, zone_a=ZONE_A | {"FR"}).pool == CONF
    # an empty Zone A never uses the pool
    assert route_for("conf_out", "conf_pp", US_GEO, zone_a=frozenset()).pool is None
    # non-geographic numbers have no country, so are never Zone A
    assert route_for("conf_out", "conf_pp", FREEPHONE, zone_a=ZONE_A | {"001"}).pool is None


@pytest.mark.parametrize(
    ("call_type", "user", "number", "prefixes", "is_blocked"),
    [
        ("user_out", "dom_pp", GB_MOB, {"44"}, True),
        ("user_out", "dom_pp", GB_MOB, {"4474"}, True),
        ("user_out", "dom_pp", GB_GEO, {"4474"}, False),
        ("user_out", "dom_pp", US_GEO, {"44", "33"}, False),
        ("user_out", "dom_pp", US_GEO, {"1425"}, True),
        ("ucap_out", "nobody", GB_MOB, {"44"}, True),
        ("conf_out", "conf_pp", GB_MOB, {"44"}, True),
        ("user_out", "nobody", GB_MOB, {"44"}, True),  # checked before the user
        ("user_in", "dom", GB_MOB, {"44"}, False),  # inbound is never blocked
    ],
)
def test_blocked_prefixes(call_type: str, user: str, number: str, prefixes: set[str],
                          is_blocked: bool) -> None:
    route = route_for(call_type, user, number, blocked_prefixes=frozenset(prefixes))
    assert (route.blocked == "destination_blocked") is is_blocked
    if is_blocked:
        assert decide(route).funding is None
        assert block_reason(route) == "destination_blocked"


# -- toll-free inbound -----------------------------------------------------------------------

def test_toll_free_inbound_is_paid_from_credits_without_a_license() -> None:
    for user in ("nobody", "dom", "ev_pp"):
        route = route_for("user_in", user, GB_MOB, toll_free_inbound=True)
        assert route.toll_free_inbound
        assert route.credits
        assert not route.free
        assert route.rate == RATE
        assert route.capability == "MCOPSTNPP"
        d = decide(route, available="10.00")
        assert d.funding == "credits"
        assert d.money == D("3.10")
        # it needs a positive balance
        d = decide(route, available="0.00")
        assert (d.funding, d.reason) == (None, "insufficient_credits")


def test_toll_free_inbound_on_nce_falls_to_overage() -> None:
    route = route_for("user_in", "nobody", GB_MOB, toll_free_inbound=True, commerce=NCE)
    assert decide(route, available="0.00").funding == "overage"
    assert decide(route, available="10.00").funding == "credits"


def test_unpriced_toll_free_inbound_is_free() -> None:
    route = route_for("user_in", "nobody", GB_MOB, toll_free_inbound=True, rate=None)
    assert route == Route(free=True, capability=FREECALL, toll_free_inbound=True)
    d = decide(route, available="0.00")
    assert d.funding == "free"
    assert d.grant.max_duration_s is None


# -- unpriced outbound -----------------------------------------------------------------------

def test_unpriced_outbound_is_free_beyond_the_pool() -> None:
    route = route_for("user_out", "dom", GB_MOB, rate=None)  # no license, but nothing to pay
    assert route.free
    assert not route.credits
    assert route.rate is None
    d = decide(route, available="0.00")
    assert d.funding == "free"
    assert d.grant == Grant(tail="free")

    route = route_for("user_out", "dom_pp", US_GEO, rate=None, commerce=NCE)
    assert route.free
    assert (route.credits, route.overage) == (False, False)
    assert route.pool == dom_pool("US")
    d = decide(route, want_s=300, pool_left_s=120)
    assert d.funding == "included"
    assert d.grant == Grant(pool_s=120, tail="free")
    assert d.money == 0


# -- block_reason ----------------------------------------------------------------------------

def test_block_reason() -> None:
    assert block_reason(blocked("unknown_user")) == "unknown_user"
    assert block_reason(Route(credits=True, rate=RATE)) == "insufficient_credits"
    assert block_reason(Route(rate=RATE)) == "no_credits_license"
    assert block_reason(Route(rate=RATE, no_pay_reason="custom")) == "custom"


# -- first_funding ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("grant", "funding"),
    [
        (Grant(), None),
        (Grant(pool_s=60), "included"),
        (Grant(pool_s=60, credit_s=60, credit_reserved=D("0.60")), "included"),
        (Grant(pool_s=60, tail="overage"), "included"),
        (Grant(credit_s=60, credit_reserved=D("0.70"), with_fee=True), "credits"),
        (Grant(credit_s=60, credit_reserved=D("0.70"), tail="overage"), "credits"),
        (Grant(credit_reserved=D("0.10"), with_fee=True, tail="free"), "credits"),
        (Grant(tail="overage"), "overage"),
        (Grant(tail="free"), "free"),
    ],
)
def test_first_funding(grant: Grant, funding: str | None) -> None:
    assert first_funding(Route(credits=True, rate=RATE), grant) == funding


# -- extend: worked examples -----------------------------------------------------------------

def test_pool_then_credits_pays_no_connection_fee() -> None:
    route = route_for("user_out", "dom_pp", US_GEO)
    ext = extend(route, Grant(), 300, 120, D("10.00"), USD)
    assert ext.pool_take_s == 120
    assert ext.grant == Grant(pool_s=120, credit_s=180, credit_reserved=D("1.80"),
                              with_fee=False)
    assert ext.money_take == D("1.80")
    s = settle(route, ext.grant, 300, USD)
    assert (s.pool_s, s.pool_minutes, s.credit_s) == (120, 2, 180)
    assert (s.credit_charge, s.connection_fee, s.funding) == (D("1.80"), D(0), "credits")
    # the same call without pool minutes pays the fee
    ext = extend(route, Grant(), 300, 0, D("10.00"), USD)
    assert ext.grant == Grant(credit_s=300, credit_reserved=D("3.10"), with_fee=True)
    s = settle(route, ext.grant, 300, USD)
    assert (s.credit_charge, s.connection_fee) == (D("3.10"), D("0.10"))


def test_pool_only_slice_then_credits_still_no_fee() -> None:
    route = route_for("user_out", "dom_pp", US_GEO)
    first = extend(route, Grant(), 60, 60, D("10.00"), USD)
    assert first.grant == Grant(pool_s=60)
    second = extend(route, first.grant, 60, 0, D("10.00"), USD)
    assert second.grant == Grant(pool_s=60, credit_s=60, credit_reserved=D("0.60"),
                                 with_fee=False)
    assert second.pool_take_s == 0


def test_slices_reserve_the_difference() -> None:
    route = route_for("user_out", "payg_pp", US_GEO)
    g = Grant()
    takes = []
    for _ in range(3):
        ext = extend(route, g, 60, 0, D("10.00"), USD)
        g = ext.grant
        takes.append(ext.money_take)
    assert takes == [D("0.70"), D("0.60"), D("0.60")]
    assert g == Grant(credit_s=180, credit_reserved=D("1.90"), with_fee=True)
    # once credits pay, the pool is no longer drawn even if minutes appear
    pooled = route_for("user_out", "dom_pp", US_GEO)
    ext = extend(pooled, Grant(credit_s=60, credit_reserved=D("0.70"), with_fee=True), 60,
                 6000, D("10.00"), USD)
    assert ext.pool_take_s == 0
    assert ext.grant.credit_s == 120


def test_credits_run_short_then_nce_overage() -> None:
    route = route_for("user_out", "dom_pp", GB_MOB, commerce=NCE)
    first = extend(route, Grant(), 600, 0, D("1.00"), USD)
    assert first.grant == Grant(credit_s=60, credit_reserved=D("0.70"), with_fee=True)
    assert first.money_take == D("0.70")
    second = extend(route, first.grant, 600, 0, D("0.30"), USD)
    assert second.money_take == 0
    assert second.grant.tail == "overage"
    assert second.grant.max_duration_s is None
    s = settle(route, second.grant, 200, USD)
    assert (s.credit_s, s.credit_charge) == (60, D("0.70"))
    assert (s.overage_s, s.overage_charge) == (140, D("1.80"))  # no second fee
    assert s.funding == "credits"


def test_legacy_without_license_is_cut_at_the_end_of_the_pool() -> None:
    route = route_for("user_out", "dom", US_GEO)
    ext = extend(route, Grant(), 600, 90, D("10.00"), USD)
    assert ext.grant == Grant(pool_s=90)
    assert ext.grant.max_duration_s == 90


def test_a_tail_grants_nothing_more() -> None:
    route = route_for("user_out", "dom", GB_MOB, commerce=NCE)
    g = Grant(tail="overage")
    assert extend(route, g, 600, 6000, D("10.00"), USD).grant == g


def test_free_per_minute_rate_reserves_the_fee_once() -> None:
    free_minutes = Rate("1", "X", "any", D("0"), D("0.50"), 60)
    route = Route(credits=True, rate=free_minutes, capability="MCOPSTNPP")
    ext = extend(route, Grant(), 300, 0, D("10.00"), USD)
    assert ext.money_take == D("0.50")
    assert ext.grant == Grant(credit_reserved=D("0.50"), with_fee=True, tail="free")
    assert first_funding(route, ext.grant) == "credits"
    assert decide(route, available="0.49").funding is None


def test_free_per_minute_rate_settles_its_connection_fee() -> None:
    free_minutes = Rate("1", "X", "any", D("0"), D("0.50"), 60)
    route = Route(credits=True, rate=free_minutes, capability="MCOPSTNPP")
    grant = extend(route, Grant(), 300, 0, D("10.00"), USD).grant
    s = settle(route, grant, 120, USD)
    assert s.credit_charge == free_minutes.charge(120, USD) == D("0.50")
    assert s.funding == "credits"


# -- settle: worked examples -----------------------------------------------------------------

def test_settle_examples() -> None:
    route = route_for("user_out", "dom_pp", US_GEO)
    grant = Grant(pool_s=120, credit_s=180, credit_reserved=D("1.80"), with_fee=False)
    s = settle(route, grant, 0, USD)
    assert (s.pool_s, s.pool_minutes, s.credit_s, s.credit_charge, s.funding) == (
        0, 0, 0, D(0), "free")
    s = settle(route, grant, 61, USD)
    assert (s.pool_s, s.pool_minutes, s.credit_s, s.funding) == (61, 2, 0, "included")
    s = settle(route, grant, 121, USD)
    assert (s.pool_s, s.credit_s, s.credit_charge, s.connection_fee) == (120, 1, D("0.60"), 0)
    # past the grant (the switch did not cut): the excess falls to credits
    s = settle(route, grant, 400, USD)
    assert (s.pool_s, s.credit_s, s.credit_charge) == (120, 280, D("3.00"))
    assert settle(route, grant, -10, USD).duration_s == 0


def test_settle_overage_only_pays_the_fee_when_first() -> None:
    route = route_for("user_out", "dom", US_GEO, commerce=NCE)
    s = settle(route, Grant(tail="overage"), 61, USD)
    assert (s.overage_s, s.overage_charge, s.connection_fee) == (61, D("1.30"), D("0.10"))
    assert s.funding == "overage"
    s = settle(route, Grant(pool_s=60, tail="overage"), 121, USD)
    assert (s.pool_s, s.overage_s, s.overage_charge, s.connection_fee) == (60, 61, D("1.20"), 0)


def test_settle_free_tail() -> None:
    route = route_for("user_out", "dom_pp", US_GEO, rate=None)
    s = settle(route, Grant(pool_s=60, tail="free"), 200, USD)
    assert (s.pool_s, s.credit_s, s.overage_s, s.credit_charge) == (60, 0, 0, D(0))
    assert s.funding == "included"
    assert settle(route, Grant(tail="free"), 200, USD).funding == "free"


# -- extend / settle properties --------------------------------------------------------------

six_places = st.integers(0, 3_000_000).map(lambda n: D(n).scaleb(-6))
prop_rates = st.builds(
    lambda pm, fee, inc: Rate("1", "X", "any", pm, fee, inc),
    st.one_of(st.just(D(0)), st.integers(100, 3_000_000).map(lambda n: D(n).scaleb(-6))),
    st.one_of(st.just(D(0)), six_places),
    st.sampled_from([1, 6, 30, 60, 600]),
)


@st.composite
def routes(draw: st.DrawFn) -> Route:
    pool = draw(st.sampled_from([None, dom_pool("US"), CONF]))
    if draw(st.booleans()) and draw(st.booleans()):  # unpriced: free beyond any pool
        return Route(pool=pool, free=True)
    return Route(pool=pool, credits=draw(st.booleans()), overage=draw(st.booleans()),
                 rate=draw(prop_rates), capability="X")


@given(routes(), st.integers(0, 7200), cents(0, 5_000),
       st.lists(st.integers(1, 3600), min_size=1, max_size=6), st.data())
def test_extend_and_settle_invariants(route: Route, pool_left: int, available: Decimal,
                                      wants: list[int], data: st.DataObject) -> None:
    grant = Grant()
    reserved_total = D(0)
    for want in wants:
        ext = extend(route, grant, want, pool_left, available, USD)
        # never promises money the wallet does not have, nor pool seconds that are not left
        assert D(0) <= ext.money_take <= available
        assert 0 <= ext.pool_take_s <= min(pool_left, want)
        new = ext.grant
        assert new.pool_s == grant.pool_s + ext.pool_take_s
        assert new.credit_s >= grant.credit_s
        assert new.credit_s - grant.credit_s + ext.pool_take_s <= want
        available -= ext.money_take
        pool_left -= ext.pool_take_s
        reserved_total += ext.money_take
        grant = new
        assert grant.credit_reserved == reserved_total
        if grant.credit_s:
            rate = route.rate
            assert rate is not None and grant.with_fee is not None
            # the granted seconds are covered by the reserved money
            assert rate.charge(grant.credit_s, USD, with_fee=grant.with_fee) \
                <= grant.credit_reserved
        if grant.pool_s and grant.with_fee is not None:
            assert grant.with_fee is False  # started in the pool: no connection fee
        if grant.tail:
            assert extend(route, grant, want, pool_left, available, USD) == type(ext)(grant, 0,
                                                                                         D(0))

    limit = grant.max_duration_s
    within = data.draw(st.integers(0, limit if limit is not None else 20_000), label="duration")
    s = settle(route, grant, within, USD)
    free_s = within - s.pool_s - s.credit_s - s.overage_s
    assert min(s.pool_s, s.credit_s, s.overage_s, free_s) >= 0
    assert s.pool_s == min(within, grant.pool_s)
    assert s.pool_minutes * 60 >= s.pool_s > (s.pool_minutes - 1) * 60
    assert s.credit_s <= grant.credit_s
    # a duration within the grant never costs more credits than were reserved
    assert s.credit_charge <= grant.credit_reserved
    if grant.tail != "free":
        assert free_s == 0  # everything is accounted for: pool + credits + overage
    if grant.tail != "overage":
        assert s.overage_s == 0
        assert s.overage_charge == 0
    if s.pool_s and (s.credit_charge or s.overage_charge):
        assert s.connection_fee == 0

    # past the grant the split is still exact
    beyond = data.draw(st.integers(0, 20_000), label="beyond")
    total = (limit or 0) + beyond
    s = settle(route, grant, total, USD)
    free_s = total - s.pool_s - s.credit_s - s.overage_s
    assert min(s.pool_s, s.credit_s, s.overage_s, free_s) >= 0
    assert s.duration_s == total
    if grant.tail == "overage" or (grant.tail is None and route.credits and route.rate):
        assert free_s == 0


@given(prop_rates.filter(lambda r: r.per_minute > 0), st.integers(1, 7200), st.integers(1, 7200),
       cents(0, 5_000))
def test_starting_in_the_pool_then_credits_never_pays_the_fee(rate: Rate, pool_left: int,
                                                               extra: int,
                                                               available: Decimal) -> None:
    route = Route(pool=dom_pool("US"), credits=True, rate=rate, capability=DOM)
    ext = extend(route, Grant(), pool_left + extra, pool_left, available, USD)
    assert ext.grant.pool_s == pool_left
    if ext.grant.credit_s:
        assert ext.grant.with_fee is False
        assert ext.money_take == rate.charge(ext.grant.credit_s, USD, with_fee=False)
        s = settle(route, ext.grant, pool_left + ext.grant.credit_s, USD)
        assert s.connection_fee == 0
        assert s.credit_charge == ext.money_take
    else:
        # an empty wallet buys nothing; otherwise not even one increment was affordable
        assert available == 0 or rate.charge(rate.increment_s, USD, with_fee=False) > available
