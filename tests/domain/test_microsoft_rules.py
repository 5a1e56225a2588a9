"""Issue 9: the rules checked against Microsoft's own documentation, and the money bugs an
independent model found (settlement order, connection-fee rounding, premium in a pool)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from commcredits.domain.calls import (
    CALL_TYPES,
    OUTBOUND,
    Grant,
    Party,
    Route,
    block_reason,
    extend,
    first_funding,
    route_call,
    settle,
)
from commcredits.domain.errors import DomainError
from commcredits.domain.licensing import CATALOG, check_assign, credits_prerequisite_met
from commcredits.domain.money import fmt
from commcredits.domain.numbers import classify
from commcredits.domain.pools import PoolKey, minutes_per_user, pools_of
from commcredits.domain.rating import Rate
from commcredits.domain.tenancy import Commerce

D = Decimal
RATE = Rate("1", "Somewhere", "any", D("0.60"), D("0.10"), 60)
ZONE_A = frozenset({"US", "CA", "GB", "DE"})
US_GEO, CA_GEO, GB_GEO, DE_GEO = "+14255550100", "+16135550100", "+442079460000", "+4930123456"
FR_PREMIUM, US_PREMIUM = "+33891234567", "+19002530000"


def who(location: str, *licenses: str) -> Party:
    return Party("u1", "u@contoso.com", "U", location, frozenset(licenses))


def route(call_type: str, party: Party | None, number: str, *, commerce: Commerce =
          Commerce.LEGACY, rate: Rate | None = RATE, allow_premium: bool = False,
          overage_enabled: bool = False, no_rate: str = "free",
          toll_free_inbound: bool = False) -> Route:
    return route_call(call_type, commerce=commerce, party=party, number=classify(number),
                      rate=rate, toll_free_inbound=toll_free_inbound,
                      allow_premium=allow_premium, zone_a=ZONE_A,
                      overage_enabled=overage_enabled, no_rate=no_rate)


def first(r: Route, pool_left_s: int = 6000, available: str = "10.00") -> tuple[str | None,
                                                                                str | None]:
    g = extend(r, Grant(), 300, pool_left_s, D(available), "USD").grant
    f = first_funding(r, g)
    return f, None if f else block_reason(r)


# -- 1. calling-plan minutes -------------------------------------------------------------------
@pytest.mark.parametrize(("country", "plan", "minutes"), [
    ("US", "MCOPSTN1", 3000), ("PR", "MCOPSTN1", 3000), ("CA", "MCOPSTN2", 3000),
    ("GB", "MCOPSTN1", 1200), ("GB", "MCOPSTN2", 1200), ("DE", "MCOPSTN1", 1200),
    ("GB", "MCOPSTN5", 120), ("DE", "MCOPSTN6", 240), ("CA", "MCOPSTN5", 120),
])
def test_domestic_minutes_per_user(country: str, plan: str, minutes: int) -> None:
    assert minutes_per_user(PoolKey("domestic", country, plan)) == minutes


def test_the_120_and_240_minute_plans_are_sold_outside_the_us_only() -> None:
    for plan in ("MCOPSTN5", "MCOPSTN6"):
        assert plan in CATALOG
        assert check_assign(frozenset(), plan, 5, usage_location="GB") is True
        with pytest.raises(DomainError) as e:
            check_assign(frozenset(), plan, 5, usage_location="US")
        assert e.value.code == "not_available_in_country"
        # they are calling plans: Phone System + one of them lets a user hold credits
        assert credits_prerequisite_met(frozenset({"MCOEV", plan}))
        assert pools_of(frozenset({"MCOEV", plan}), "GB") == [PoolKey("domestic", "GB", plan)]
        r = route("user_out", who("GB", "MCOEV", plan, "MCOPSTNPP"), GB_GEO)
        assert r.pool == PoolKey("domestic", "GB", plan)
        assert r.capability == plan


# -- 2. US <-> Canada ---------------------------------------------------------------------------
@pytest.mark.parametrize(("location", "number", "pool_country"), [
    ("US", CA_GEO, "US"), ("CA", US_GEO, "CA")])
def test_us_canada_calls_are_domestic_both_ways(location: str, number: str,
                                                pool_country: str) -> None:
    n = classify(number)
    assert n.is_domestic_for(location)
    assert n.scope_for(location) == "Domestic"
    r = route("user_out", who(location, "MCOEV", "MCOPSTN1", "MCOPSTNPP"), number)
    assert r.pool == PoolKey("domestic", pool_country, "MCOPSTN1")
    # not for other countries
    assert not classify(CA_GEO).is_domestic_for("GB")
    assert not classify(GB_GEO).is_domestic_for("US")


# -- 3. Audio Conferencing ------------------------------------------------------------------
def test_pay_per_minute_conferencing_has_no_pool_and_needs_credits() -> None:
    assert "MCOMEETACPEA" in CATALOG
    assert credits_prerequisite_met(frozenset({"MCOMEETACPEA"}))
    with_pp = route("conf_out", who("US", "MCOMEETACPEA", "MCOPSTNPP"), US_GEO)
    assert with_pp.pool is None
    assert with_pp.credits
    assert first(with_pp) == ("credits", None)
    without = route("conf_out", who("US", "MCOMEETACPEA"), US_GEO)
    assert first(without) == (None, "no_credits_license")
    assert pools_of(frozenset({"MCOMEETACPEA", "MCOPSTNPP"}), "US") == []


def test_conference_dial_out_without_audio_conferencing_has_its_own_reason() -> None:
    r = route("conf_out", who("US", "MCOEV", "MCOPSTN1", "MCOPSTNPP"), US_GEO)
    assert r.blocked == "no_conferencing_license"


def test_conference_dial_out_rate_follows_the_destination() -> None:
    # a German organizer dialling the US: the US pool rules (Zone A) and the US rate
    r = route("conf_out", who("DE", "MCOMEETADD", "MCOPSTNPP"), US_GEO)
    assert r.pool == PoolKey("conferencing")
    assert r.rate == RATE


# -- 4. overage off by default for NCE ------------------------------------------------------
def test_nce_overage_is_off_unless_turned_on() -> None:
    dom = who("US", "MCOEV", "MCOPSTN1")
    off = route("user_out", dom, US_GEO, commerce=Commerce.NCE)
    assert not off.overage
    assert first(off, pool_left_s=0) == (None, "overage_disabled")
    assert first(off, pool_left_s=600) == ("included", None)  # the pool still works
    on = route("user_out", dom, US_GEO, commerce=Commerce.NCE, overage_enabled=True)
    assert first(on, pool_left_s=0) == ("overage", None)
    # a tenant that moved from legacy spends its remaining credits first
    pp = who("US", "MCOEV", "MCOPSTN1", "MCOPSTNPP")
    moved = route("user_out", pp, US_GEO, commerce=Commerce.NCE)
    assert first(moved, pool_left_s=0, available="5.00") == ("credits", None)
    assert first(moved, pool_left_s=0, available="0.00") == (None, "overage_disabled")
    # legacy tenants never have overage
    assert not route("user_out", dom, US_GEO, overage_enabled=True).overage
    # toll-free inbound on NCE without overage needs credits too
    tf = route("user_in", None, US_GEO, commerce=Commerce.NCE, toll_free_inbound=True)
    assert first(tf, available="0.00") == (None, "overage_disabled")


# -- 6. call types ----------------------------------------------------------------------------
def test_transfer_and_forwarding_are_charged_like_user_out() -> None:
    p = who("US", "MCOEV", "MCOPSTN_PAYG", "MCOPSTNPP")
    base = route("user_out", p, GB_GEO)
    for kind in ("user_out_transfer", "user_out_forwarding"):
        assert kind in CALL_TYPES and kind in OUTBOUND
        r = route(kind, p, GB_GEO)
        assert r == base
        assert first(r) == ("credits", None)


# -- 8. a call that overruns its grant ---------------------------------------------------------
def test_overrun_is_funded_from_the_pool_while_it_has_minutes() -> None:
    r = route("user_out", who("US", "MCOEV", "MCOPSTN1", "MCOPSTNPP"), US_GEO)
    grant = extend(r, Grant(), 300, 3000 * 60, D("10.00"), "USD").grant
    assert grant == Grant(pool_s=300)
    # 600 s, no interim; 2,995 minutes were left beyond this call's 5
    s = settle(r, grant, 600, "USD", pool_left_s=2995 * 60)
    assert (s.pool_s, s.pool_minutes, s.credit_s, s.credit_charge) == (600, 10, 0, D(0))
    assert s.funding == "included"
    # only 2 minutes left: they go first, the rest is paid from credits (no fee: it started
    # in the pool)
    s = settle(r, grant, 600, "USD", pool_left_s=120)
    assert (s.pool_s, s.pool_minutes, s.credit_s) == (420, 7, 180)
    assert (s.credit_charge, s.connection_fee) == (D("1.80"), D(0))


# -- 13. one rounding rule for money shown --------------------------------------------------
@pytest.mark.parametrize(("fee", "shown"), [("2.5", "3"), ("4.5", "5"), ("3.5", "4")])
def test_connection_fee_is_rounded_like_the_charge(fee: str, shown: str) -> None:
    rate = Rate("81", "Japan", "any", D("0"), D(fee), 60)
    r = Route(credits=True, rate=rate, capability="MCOPSTNPP")
    grant = Grant(credit_s=60, credit_reserved=rate.charge(60, "JPY"), with_fee=True)
    s = settle(r, grant, 30, "JPY")
    assert s.credit_charge == D(shown)
    assert fmt(s.connection_fee, "JPY") == shown
    assert fmt(D(fee), "JPY") == shown  # every figure shown rounds half up


# -- 14. premium is never in a plan ---------------------------------------------------------
@pytest.mark.parametrize(("location", "number"), [("US", US_PREMIUM), ("FR", FR_PREMIUM)])
def test_allowed_premium_is_paid_from_credits_not_the_pool(location: str, number: str) -> None:
    for plan in ("MCOPSTN1", "MCOPSTN2"):
        r = route("user_out", who(location, "MCOEV", plan, "MCOPSTNPP"), number,
                  allow_premium=True)
        assert r.pool is None
        assert first(r) == ("credits", None)


# -- 15. calls that cannot be priced ---------------------------------------------------------
def test_no_rate_policy() -> None:
    p = who("US", "MCOEV", "MCOPSTN_PAYG", "MCOPSTNPP")
    assert first(route("user_out", p, GB_GEO, rate=None)) == ("free", None)
    blocked = route("user_out", p, GB_GEO, rate=None, no_rate="block")
    assert first(blocked) == (None, "no_rate")
    # the pool still pays for what it covers; beyond it the call is cut, not free
    dom = route("user_out", who("US", "MCOEV", "MCOPSTN1", "MCOPSTNPP"), US_GEO, rate=None,
                no_rate="block")
    g = extend(dom, Grant(), 300, 120, D("10.00"), "USD").grant
    assert g == Grant(pool_s=120)
    assert first(dom, pool_left_s=0) == (None, "no_rate")
    tf = route("user_in", None, US_GEO, rate=None, no_rate="block", toll_free_inbound=True)
    assert first(tf) == (None, "no_rate")
    # ordinary inbound calls cost nothing and need no price
    assert first(route("user_in", p, GB_GEO, rate=None, no_rate="block")) == ("free", None)
