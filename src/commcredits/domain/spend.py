"""Which credits expire unspent at the current burn (SPEC §2: lots expire 12 months after
purchase; usage draws the oldest lot first).

Spend runs at ``burn_per_day`` from today and draws lots in FIFO order. A lot starts being
used when the ones before it are spent or expired; whatever of it is left on its expiry day
expires unspent.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from commcredits.domain.money import ZERO


@dataclass(frozen=True, slots=True)
class LotLeft:
    id: str
    remaining: Decimal
    expires_on: date


@dataclass(frozen=True, slots=True)
class Expiring:
    id: str
    unspent: Decimal
    expires_on: date


def expiring_unspent(lots: list[LotLeft], burn_per_day: Decimal,
                     today: date) -> list[Expiring]:
    """The lots (FIFO order given) that will still hold money on their expiry day."""
    out: list[Expiring] = []
    free_from = Decimal(0)  # days from today when spend starts drawing the next lot
    for lot in lots:
        if lot.remaining <= ZERO:
            continue
        days_left = Decimal((lot.expires_on - today).days)
        if burn_per_day <= ZERO:
            out.append(Expiring(lot.id, lot.remaining, lot.expires_on))
            continue
        drawn = min(lot.remaining, max(ZERO, burn_per_day * (days_left - free_from)))
        if drawn >= lot.remaining:
            free_from += lot.remaining / burn_per_day
        else:
            out.append(Expiring(lot.id, lot.remaining - drawn, lot.expires_on))
            free_from = max(free_from, days_left)
    return out
