"""What a balance change sets off: one auto-recharge per crossing, balance_zero once per time."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from commcredits.domain.wallet import AutoRecharge, RechargeStatus
from commcredits.domain.wallet_events import Events, after_change

D = Decimal
ACTIVE = AutoRecharge(True, D("100.00"), D("20.00"), "pm_1", RechargeStatus.ACTIVE)


def run(balances: list[str], settings: AutoRecharge = ACTIVE, *, armed: bool = True,
        zero_notified: bool = False) -> tuple[list[int], list[int]]:
    """Feed balances in order; the indexes where a recharge starts / balance_zero is sent."""
    starts: list[int] = []
    zeros: list[int] = []
    for i, balance in enumerate(balances):
        ev = after_change(D(balance), settings, armed, zero_notified)
        armed, zero_notified = ev.armed, ev.zero_notified
        if ev.start_recharge:
            starts.append(i)
        if ev.notify_zero:
            zeros.append(i)
    return starts, zeros


def test_single_step() -> None:
    assert after_change(D("19.99"), ACTIVE, True, False) == Events(True, False, False, False)
    assert after_change(D("19.99"), ACTIVE, False, False) == Events(False, False, False, False)
    assert after_change(D("20.00"), ACTIVE, False, False) == Events(False, False, True, False)
    assert after_change(D("0"), ACTIVE, True, False) == Events(True, True, False, True)
    assert after_change(D("0"), ACTIVE, False, True) == Events(False, False, False, True)


def test_one_recharge_per_crossing() -> None:
    # 25 → 15 starts one; 10 and 5 (still below, not recovered) start nothing more
    assert run(["25.00", "15.00", "10.00", "5.00"])[0] == [1]


def test_re_armed_once_the_balance_is_at_the_trigger_again() -> None:
    starts, _ = run(["25.00", "15.00", "20.00", "19.99", "120.00", "10.00", "9.00"])
    assert starts == [1, 3, 5]
    # reaching exactly the trigger is not falling below it
    assert run(["25.00", "20.00", "20.00"])[0] == []


def test_starts_on_the_first_change_when_armed_and_below() -> None:
    assert run(["5.00"])[0] == [0]
    assert run(["5.00"], armed=False)[0] == []


@pytest.mark.parametrize(
    "settings",
    [
        AutoRecharge(False, D("100.00"), D("20.00"), "pm_1", RechargeStatus.OFF),
        AutoRecharge(False, D("100.00"), D("20.00"), "pm_1", RechargeStatus.ACTIVE),
        AutoRecharge(True, D("100.00"), D("20.00"), "pm_1", RechargeStatus.SUSPENDED),
        AutoRecharge(True, D("100.00"), D("20.00"), "pm_1", RechargeStatus.OFF),
        AutoRecharge(True, D("100.00"), None, "pm_1", RechargeStatus.ACTIVE),
        AutoRecharge(),
    ],
)
def test_disabled_or_suspended_settings_start_nothing(settings: AutoRecharge) -> None:
    starts, zeros = run(["25.00", "15.00", "30.00", "0", "25.00", "0"], settings)
    assert starts == []
    assert zeros == [3, 5]  # balance_zero does not depend on auto-recharge


def test_suspension_lifted_while_below_starts_on_the_next_change() -> None:
    suspended = AutoRecharge(True, D("100.00"), D("20.00"), "pm_1", RechargeStatus.SUSPENDED)
    ev = after_change(D("15.00"), suspended, True, False)
    assert ev == Events(False, False, True, False)  # still armed: nothing was started
    assert after_change(D("14.00"), ACTIVE, ev.armed, False).start_recharge


def test_balance_zero_once_per_time_it_is_reached() -> None:
    _, zeros = run(["10.00", "0", "0", "0.00", "5.00", "0", "-0.50", "0.01", "0"])
    assert zeros == [1, 5, 8]
    assert run(["0"], zero_notified=True)[1] == []
    assert run(["-1.00"])[1] == [0]


def test_zero_trigger_never_recharges() -> None:
    settings = AutoRecharge(True, D("50.00"), D("0"), "pm_1", RechargeStatus.ACTIVE)
    starts, zeros = run(["10.00", "0", "5.00", "0"], settings)
    assert starts == []
    assert zeros == [1, 3]


balances = st.integers(-500, 5_000).map(lambda n: D(n).scaleb(-2))


@given(st.lists(balances, min_size=1, max_size=40), st.integers(0, 3_000))
def test_recharges_and_notices_match_the_crossings(seq: list[Decimal], trigger_cents: int) -> None:
    trigger = D(trigger_cents).scaleb(-2)
    settings = AutoRecharge(True, D("100.00"), trigger, "pm_1", RechargeStatus.ACTIVE)
    starts, zeros = run([str(b) for b in seq], settings)
    # a recharge starts exactly where the balance goes below the trigger from at or above it
    # (the first change counts as a crossing: the state starts armed)
    assert starts == [i for i, b in enumerate(seq)
                      if b < trigger and (i == 0 or seq[i - 1] >= trigger)]
    # balance_zero is sent exactly where the balance reaches zero from above it
    assert zeros == [i for i, b in enumerate(seq) if b <= 0 and (i == 0 or seq[i - 1] > 0)]
