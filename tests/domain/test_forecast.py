from __future__ import annotations

from datetime import date
from decimal import Decimal as D

from hypothesis import given
from hypothesis import strategies as st

from commcredits.domain.forecast import forecast

TODAY = date(2030, 3, 31)


def test_window_burn_runout_and_recommendation() -> None:
    spend = {date(2030, 3, 30): D("3.00"), date(2030, 3, 31): D("4.00"),
             date(2030, 3, 1): D("99.00")}  # outside a 7-day window
    f = forecast(spend, TODAY, 7, D("100.00"), D("50"), "USD")
    assert [d for d, _ in f.daily] == [date(2030, 3, d) for d in range(25, 32)]
    assert f.spent == D("7.00") and f.burn_per_day == D("1.00")
    assert f.runout_days == 100
    assert (f.recommended_trigger, f.recommended_recharge) == (D("7"), D("50"))
    big = forecast({TODAY: D("70.00")}, TODAY, 7, D("100.00"), D("50"), "USD")
    assert (big.recommended_trigger, big.recommended_recharge) == (D("70"), D("300"))


def test_no_spend_never_runs_out() -> None:
    f = forecast({}, TODAY, 28, D("10.00"), D("50"), "USD")
    assert (f.spent, f.runout_days, f.recommended_trigger, f.recommended_recharge) == (
        D("0"), None, D("0"), D("50"))


@given(st.lists(st.decimals(min_value=D("0"), max_value=D("500"), places=2), min_size=1,
                max_size=40), st.decimals(min_value=D("0"), max_value=D("10000"), places=2))
def test_runout_is_what_the_balance_covers(amounts: list[D], available: D) -> None:
    spend = {date.fromordinal(TODAY.toordinal() - i): a for i, a in enumerate(amounts)}
    days = len(amounts)
    f = forecast(spend, TODAY, days, available, D("50"), "USD")
    assert f.spent == sum(amounts)
    if f.spent == 0:
        assert f.runout_days is None
    else:
        assert f.runout_days is not None
        # burn = spent / days, compared without dividing (a rounded Decimal quotient times
        # runout_days can land a hair above the balance it exactly equals)
        assert f.spent * f.runout_days <= available * days < f.spent * (f.runout_days + 1)
    assert f.recommended_recharge >= D("50")


def test_runout_date_beyond_the_horizon_is_none() -> None:
    today = date(2030, 3, 10)
    f = forecast({today: D("0.08")}, today, 28, D("10100.00"), D(50), "USD")
    assert f.runout_days == 3_535_000
    assert f.runout_date is None
    near = forecast({today: D("28")}, today, 28, D("10"), D(50), "USD")
    assert (near.runout_days, near.runout_date) == (10, date(2030, 3, 20))
