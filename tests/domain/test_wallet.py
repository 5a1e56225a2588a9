"""The wallet: balance, spendable and available money; order and auto-recharge rules."""

from __future__ import annotations

from decimal import Decimal

import pytest

from commcredits.domain.errors import DomainError, ErrorKind
from commcredits.domain.lots import Draw
from commcredits.domain.wallet import (
    AutoRecharge,
    RechargeStatus,
    Wallet,
    check_auto_recharge,
    check_order_amount,
)
from tests.domain.helpers import make_lot, utc

D = Decimal
NOW = utc(2028, 2, 1)
MIN = D("50")


def _wallet(reserved: str = "0") -> Wallet:
    lots = (
        make_lot("expired", "100.00", seq=1, remaining="40.00", purchased_at=utc(2027, 1, 15)),
        make_lot("old", "50.00", seq=2, remaining="30.00", purchased_at=utc(2027, 6, 1)),
        make_lot("new", "50.00", seq=3, purchased_at=utc(2028, 1, 1)),
        make_lot("empty", "50.00", seq=4, remaining="0", purchased_at=utc(2027, 9, 1)),
    )
    return Wallet("T", "USD", lots, reserved=D(reserved))


def test_balance_spendable_available() -> None:
    w = _wallet(reserved="25.00")
    assert w.balance == D("120.00")  # every remainder, forfeiting is the expiry job's move
    assert w.spendable(NOW) == D("80.00")  # the expired lot is not spendable
    assert w.available(NOW) == D("55.00")
    assert _wallet(reserved="100.00").available(NOW) == D(0)  # never negative


def test_draws_for_is_fifo_over_live_lots() -> None:
    assert _wallet().draws_for(D("35.00"), NOW) == [Draw("old", D("30.00")),
                                                    Draw("new", D("5.00"))]
    with pytest.raises(DomainError) as e:
        _wallet().draws_for(D("80.01"), NOW)
    assert e.value.code == "insufficient_credits"


def test_empty_wallet() -> None:
    w = Wallet("T", "USD", ())
    assert (w.balance, w.spendable(NOW), w.available(NOW)) == (D(0), D(0), D(0))


def test_order_minimum() -> None:
    check_order_amount(D("50.00"), MIN)
    with pytest.raises(DomainError) as e:
        check_order_amount(D("49.99"), MIN, field="recharge_amount")
    assert (e.value.code, e.value.kind) == ("amount_below_minimum", ErrorKind.INVALID)
    assert "recharge_amount" in e.value.message


def test_auto_recharge_enabled_becomes_active() -> None:
    got = check_auto_recharge(
        AutoRecharge(True, D("100"), D("10"), "pm_1", RechargeStatus.SUSPENDED), MIN)
    assert got == AutoRecharge(True, D("100"), D("10"), "pm_1", RechargeStatus.ACTIVE)
    zero_trigger = check_auto_recharge(AutoRecharge(True, D("50"), D("0"), "pm_1"), MIN)
    assert zero_trigger.status is RechargeStatus.ACTIVE


def test_auto_recharge_off_keeps_values_and_skips_checks() -> None:
    got = check_auto_recharge(AutoRecharge(False, D("1"), None, None, RechargeStatus.ACTIVE), MIN)
    assert got == AutoRecharge(False, D("1"), None, None, RechargeStatus.OFF)


@pytest.mark.parametrize(
    ("settings", "code"),
    [
        (AutoRecharge(True, None, D("10"), "pm_1"), "validation_error"),
        (AutoRecharge(True, D("100"), None, "pm_1"), "validation_error"),
        (AutoRecharge(True, D("100"), D("10"), None), "payment_method_required"),
        (AutoRecharge(True, D("49.99"), D("10"), "pm_1"), "amount_below_minimum"),
        (AutoRecharge(True, D("100"), D("-0.01"), "pm_1"), "validation_error"),
    ],
)
def test_auto_recharge_refusals(settings: AutoRecharge, code: str) -> None:
    with pytest.raises(DomainError) as e:
        check_auto_recharge(settings, MIN)
    assert e.value.code == code
    assert e.value.kind is ErrorKind.INVALID
