"""Lots: 12-month expiry, FIFO allocation, forfeiting and expiring notices."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from commcredits.domain.errors import DomainError, ErrorKind
from commcredits.domain.lots import (
    Draw,
    Lot,
    allocate,
    apply,
    due_for_expiring_notice,
    due_for_expiry,
    expiry_for,
    fifo,
)
from commcredits.domain.wallet import Wallet
from tests.domain.helpers import T0, cents, live_total, lot_sets, make_lot, nows, utc

US = timedelta(microseconds=1)


# -- expiry --------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("bought", "expires"),
    [
        (utc(2027, 1, 31), utc(2028, 1, 31)),
        (utc(2028, 2, 29), utc(2029, 2, 28)),
        (utc(2027, 2, 28), utc(2028, 2, 28)),
        (utc(2027, 3, 31, 14, 23, 45, 123456), utc(2028, 3, 31, 14, 23, 45, 123456)),
        (utc(2027, 12, 31, 23, 59, 59), utc(2028, 12, 31, 23, 59, 59)),
    ],
)
def test_expiry_is_twelve_calendar_months(bought: datetime, expires: datetime) -> None:
    assert expiry_for(bought) == expires
    assert expiry_for(bought).tzinfo is bought.tzinfo


def test_is_live_boundaries() -> None:
    lot = make_lot("a", "10.00")
    assert lot.is_live(lot.expires_at - US)
    assert not lot.is_live(lot.expires_at)
    assert not make_lot("b", "10.00", remaining="0").is_live(T0)


def test_due_for_expiry_at_exactly_expires_at() -> None:
    lot = make_lot("a", "10.00", remaining="3.25")
    assert due_for_expiry([lot], lot.expires_at) == [Draw("a", Decimal("3.25"))]
    assert due_for_expiry([lot], lot.expires_at - US) == []


def test_due_for_expiry_skips_empty_lots_and_orders_fifo() -> None:
    old = make_lot("old", "5", seq=2, purchased_at=utc(2027, 1, 1))
    new = make_lot("new", "5", seq=1, purchased_at=utc(2027, 2, 1))
    empty = make_lot("empty", "5", seq=3, remaining="0", purchased_at=utc(2026, 12, 1))
    got = due_for_expiry([new, empty, old], utc(2028, 6, 1))
    assert [d.lot_id for d in got] == ["old", "new"]


def test_expiring_notice_window_boundaries() -> None:
    lot = make_lot("a", "10.00", remaining="1.00")
    window = timedelta(days=30)
    assert due_for_expiring_notice([lot], lot.expires_at - window) == [lot]
    assert due_for_expiring_notice([lot], lot.expires_at - window - US) == []
    assert due_for_expiring_notice([lot], lot.expires_at - US) == [lot]
    assert due_for_expiring_notice([lot], lot.expires_at) == []  # already expired
    empty = make_lot("b", "10.00", remaining="0")
    assert due_for_expiring_notice([empty], empty.expires_at - US) == []


# -- allocation examples -------------------------------------------------------------------

def test_allocate_spans_lots_oldest_first() -> None:
    a = make_lot("a", "10.00", seq=1, purchased_at=utc(2027, 3, 1))
    b = make_lot("b", "10.00", seq=2, purchased_at=utc(2027, 1, 1))
    assert allocate([a, b], Decimal("12.50"), utc(2027, 4, 1)) == [
        Draw("b", Decimal("10.00")), Draw("a", Decimal("2.50"))]


def test_allocate_tie_on_purchase_goes_to_lower_seq() -> None:
    a = make_lot("a", "10", seq=7)
    b = make_lot("b", "10", seq=3)
    assert allocate([a, b], Decimal("4"), T0) == [Draw("b", Decimal("4"))]
    assert [lot.id for lot in fifo([a, b])] == ["b", "a"]


def test_allocate_zero_draws_nothing() -> None:
    assert allocate([], Decimal(0), T0) == []
    assert allocate([make_lot("a", "5")], Decimal(0), T0) == []


def test_allocate_negative_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        allocate([make_lot("a", "5")], Decimal("-1"), T0)


def test_allocate_short_reports_the_shortfall() -> None:
    lot = make_lot("a", "5.00", remaining="4.00")
    expired = make_lot("x", "100.00", purchased_at=utc(2025, 1, 1))
    with pytest.raises(DomainError) as e:
        allocate([lot, expired], Decimal("4.01"), T0)
    assert e.value.code == "insufficient_credits"
    assert e.value.kind is ErrorKind.CONFLICT
    assert "0.01" in e.value.message


def test_apply_refuses_overdraw_and_keeps_inputs() -> None:
    lot = make_lot("a", "5.00", remaining="2.00")
    with pytest.raises(ValueError):
        apply([lot], [Draw("a", Decimal("2.01"))])
    after = apply([lot], [Draw("a", Decimal("1.50")), Draw("a", Decimal("0.50"))])
    assert after[0].remaining == Decimal("0.00")
    assert lot.remaining == Decimal("2.00")  # frozen input untouched


# -- properties ----------------------------------------------------------------------------

def _earlier(x: Lot, y: Lot) -> bool:
    return (x.purchased_at, x.seq) < (y.purchased_at, y.seq)


def _amounts_around(live: Decimal) -> st.SearchStrategy[Decimal]:
    """Exactly the live total, one cent more, something below it, or anything."""
    return st.one_of(st.just(live), st.just(live + Decimal("0.01")),
                     cents(0, int(live * 100)), cents(0, 300_000))


@given(lot_sets(), nows, st.data())
def test_allocate_properties(lots: list[Lot], now: datetime, data: st.DataObject) -> None:
    live = live_total(lots, now)
    amount = data.draw(_amounts_around(live))
    if amount > live:
        with pytest.raises(DomainError) as e:
            allocate(lots, amount, now)
        assert e.value.code == "insufficient_credits"
        return
    draws = allocate(lots, amount, now)
    by_id = {lot.id: lot for lot in lots}
    assert sum((d.amount for d in draws), Decimal(0)) == amount  # never more, never less
    assert len({d.lot_id for d in draws}) == len(draws)
    for d in draws:
        lot = by_id[d.lot_id]
        assert d.amount > 0
        assert d.amount <= lot.remaining
        assert lot.expires_at > now  # expired lots are never drawn from
    # FIFO: draws come in (purchased_at, seq) order and every live lot earlier than a
    # drawn lot is drained completely.
    drawn = [by_id[d.lot_id] for d in draws]
    assert all(_earlier(x, y) for x, y in pairwise(drawn))
    taken = {d.lot_id: d.amount for d in draws}
    for y in drawn:
        for x in lots:
            if x.is_live(now) and _earlier(x, y):
                assert taken.get(x.id) == x.remaining


@given(lot_sets(), st.lists(cents(0, 20_000), max_size=8), nows)
def test_allocate_apply_sequences(lots: list[Lot], amounts: list[Decimal],
                                  now: datetime) -> None:
    start = sum((lot.remaining for lot in lots), Decimal(0))
    spent = Decimal(0)
    for amount in amounts:
        short = amount > live_total(lots, now)
        try:
            draws = allocate(lots, amount, now)
        except DomainError as e:
            assert short and e.code == "insufficient_credits"
            continue
        assert not short
        lots = apply(lots, draws)
        spent += amount
        assert all(lot.remaining >= 0 for lot in lots)
        assert Wallet("t", "USD", tuple(lots)).balance == start - spent
        assert Wallet("t", "USD", tuple(lots)).balance == sum(
            (lot.remaining for lot in lots), Decimal(0))


@given(lot_sets(), nows)
def test_due_for_expiry_takes_exactly_the_expired_remainders(lots: list[Lot],
                                                             now: datetime) -> None:
    draws = due_for_expiry(lots, now)
    expect = {lot.id: lot.remaining for lot in lots if lot.expires_at <= now and lot.remaining}
    assert {d.lot_id: d.amount for d in draws} == expect
    after = apply(lots, draws)
    assert all(lot.remaining == 0 for lot in after if lot.expires_at <= now)
    assert live_total(after, now) == live_total(lots, now)
