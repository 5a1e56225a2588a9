"""Lots that expire unspent at the current burn (FIFO draw, 12-month expiry)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

from commcredits.domain.spend import Expiring, LotLeft, expiring_unspent

TODAY = date(2030, 1, 1)


def test_no_spend_means_every_lot_expires_whole() -> None:
    lots = [LotLeft("a", D("50.00"), date(2030, 3, 1))]
    assert expiring_unspent(lots, D("0"), TODAY) == [Expiring("a", D("50.00"),
                                                              date(2030, 3, 1))]


def test_a_lot_spent_before_expiry_is_not_listed() -> None:
    # 2.00 a day for 59 days (to 1 March) draws 118.00: the 100.00 lot is gone by then
    lots = [LotLeft("a", D("100.00"), date(2030, 3, 1))]
    assert expiring_unspent(lots, D("2.00"), TODAY) == []


def test_the_part_left_on_the_expiry_day_expires() -> None:
    # 1.00 a day for 31 days draws 31.00 of 120.00 before 1 February
    lots = [LotLeft("a", D("120.00"), date(2030, 2, 1))]
    assert expiring_unspent(lots, D("1.00"), TODAY) == [Expiring("a", D("89.00"),
                                                              date(2030, 2, 1))]


def test_later_lots_are_drawn_only_after_the_earlier_ones() -> None:
    # lot a (10.00) lasts 10 days at 1.00/day; then lot b is drawn from day 10 to its expiry
    # on day 31: 21.00 of its 50.00, so 29.00 expires; lot c starts on day 31
    lots = [LotLeft("a", D("10.00"), date(2030, 6, 1)),
            LotLeft("b", D("50.00"), date(2030, 2, 1)),
            LotLeft("c", D("5.00"), date(2030, 12, 1))]
    assert expiring_unspent(lots, D("1.00"), TODAY) == [Expiring("b", D("29.00"),
                                                              date(2030, 2, 1))]


def test_an_expired_lot_frees_the_draw_for_the_next_one() -> None:
    # a expires on day 31 with 69.00 left; b is drawn from day 31: 1.00/day to day 59 → 28.00
    lots = [LotLeft("a", D("100.00"), date(2030, 2, 1)),
            LotLeft("b", D("40.00"), date(2030, 3, 1))]
    assert expiring_unspent(lots, D("1.00"), TODAY) == [
        Expiring("a", D("69.00"), date(2030, 2, 1)), Expiring("b", D("12.00"),
                                                               date(2030, 3, 1))]
