"""Lots: one per successful funding; spent first-in first-out; forfeited at expiry.

A lot expires 12 calendar months after its purchase (``relativedelta`` keeps month ends
safe: 31 Jan → 31 Jan next year, 29 Feb 2028 → 28 Feb 2029). Usage draws from the oldest
purchase first; ties (same instant) go to the lower sequence number, i.e. the lot funded first.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from dateutil.relativedelta import relativedelta

from commcredits.domain.errors import conflict
from commcredits.domain.money import ZERO

LOT_LIFETIME = relativedelta(months=12)
EXPIRING_NOTICE = timedelta(days=30)


class LotSource(StrEnum):
    ORDER = "order"
    AUTO_RECHARGE = "auto_recharge"


@dataclass(frozen=True, slots=True)
class Lot:
    id: str
    seq: int
    amount: Decimal
    remaining: Decimal
    purchased_at: datetime
    expires_at: datetime
    source: LotSource

    def is_live(self, now: datetime) -> bool:
        """Spendable: not expired and something left."""
        return self.remaining > ZERO and now < self.expires_at


@dataclass(frozen=True, slots=True)
class Draw:
    """An amount taken from one lot."""

    lot_id: str
    amount: Decimal


def expiry_for(purchased_at: datetime) -> datetime:
    return purchased_at + LOT_LIFETIME


def fifo(lots: Iterable[Lot]) -> list[Lot]:
    """Lots in spending order: oldest purchase first, then funding order."""
    return sorted(lots, key=lambda lot: (lot.purchased_at, lot.seq))


def allocate(lots: Iterable[Lot], amount: Decimal, now: datetime) -> list[Draw]:
    """Split ``amount`` across live lots FIFO; ``insufficient_credits`` if they fall short."""
    if amount < ZERO:
        raise ValueError("cannot allocate a negative amount")
    draws: list[Draw] = []
    left = amount
    for lot in fifo(lot for lot in lots if lot.is_live(now)):
        if left == ZERO:
            break
        take = min(lot.remaining, left)
        draws.append(Draw(lot.id, take))
        left -= take
    if left > ZERO:
        raise conflict("insufficient_credits", f"the balance is short by {left}")
    return draws


def apply(lots: Sequence[Lot], draws: Iterable[Draw]) -> list[Lot]:
    """The lots after the draws were taken (pure; never goes below zero)."""
    by_id = {lot.id: lot for lot in lots}
    for draw in draws:
        lot = by_id[draw.lot_id]
        if draw.amount > lot.remaining:
            raise ValueError(f"draw {draw.amount} exceeds lot {lot.id} remainder {lot.remaining}")
        by_id[draw.lot_id] = replace(lot, remaining=lot.remaining - draw.amount)
    return [by_id[lot.id] for lot in lots]


def due_for_expiry(lots: Iterable[Lot], now: datetime) -> list[Draw]:
    """What to forfeit now: the remainder of every lot whose expiry has come."""
    return [Draw(lot.id, lot.remaining) for lot in fifo(lots)
            if lot.expires_at <= now and lot.remaining > ZERO]


def due_for_expiring_notice(lots: Iterable[Lot], now: datetime) -> list[Lot]:
    """Lots with something left that expire within the notice period (30 days)."""
    return [lot for lot in fifo(lots)
            if lot.remaining > ZERO and now < lot.expires_at <= now + EXPIRING_NOTICE]
