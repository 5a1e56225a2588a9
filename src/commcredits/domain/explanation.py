"""Why a usage record cost what it did: the parts of a charge, as stored when it settled.

A charge (what the call or SMS cost) is made of what each lot gave, FIFO (oldest purchase
first), plus what was billed as post-usage overage, plus what credits could not pay
(``uncollected``)::

    charge = sum(lots[].amount) + overage + uncollected

The rate line is the one that priced the call when it was authorized (its deck version), not
today's deck. Seconds are billed in whole increments: ``ceil(s / increment) * increment`` for
the seconds paid from credits and, separately, for those billed as overage; pooled seconds
are rounded up to whole minutes. :func:`assemble` checks that the parts add up and refuses a
record whose parts do not (a bug, never rounded away). Pure: no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from commcredits.domain.calls import CONFERENCE_OUT, INBOUND
from commcredits.domain.money import ZERO, fmt, fmt_rate


@dataclass(frozen=True, slots=True)
class RateLine:
    deck_version: int | None
    prefix: str
    destination: str
    number_type: str
    per_minute: Decimal
    connection_fee: Decimal
    increment_s: int


@dataclass(frozen=True, slots=True)
class PoolTake:
    pool: str
    minutes: int
    used_before: int | None
    used_after: int | None


@dataclass(frozen=True, slots=True)
class LotTake:
    lot_id: str
    amount: Decimal
    expires_at: datetime | None


@dataclass(frozen=True, slots=True)
class Seconds:
    """How a call's talk was split and rounded."""
    duration_s: int
    pool_s: int = 0
    credit_s: int = 0
    overage_s: int = 0
    increment_s: int | None = None

    @property
    def credit_billed_s(self) -> int:
        return billed(self.credit_s, self.increment_s)

    @property
    def overage_billed_s(self) -> int:
        return billed(self.overage_s, self.increment_s)

    @property
    def billed_s(self) -> int:
        """Seconds paid for with money (credits or overage), in whole increments."""
        return self.credit_billed_s + self.overage_billed_s


@dataclass(frozen=True, slots=True)
class Correction:
    rerate_id: str
    old_charge: Decimal
    new_charge: Decimal
    delta: Decimal
    at: datetime


@dataclass(frozen=True, slots=True)
class Explanation:
    usage_id: str
    kind: str  # call | sms
    ref: str  # call id or message id
    call_type: str
    funding: str
    currency: str
    charge: Decimal
    collected: Decimal
    connection_fee: Decimal
    seconds: Seconds | None  # calls
    segments: int | None  # SMS
    rate: RateLine | None
    pool: PoolTake | None
    lots: tuple[LotTake, ...]
    overage: Decimal
    uncollected: Decimal
    ledger_transaction_ids: tuple[str, ...]
    corrections: tuple[Correction, ...] = field(default=())
    route: dict[str, Any] = field(default_factory=dict)


class PartsDoNotAddUp(ValueError):
    """A stored record whose lots, overage and uncollected are not its charge."""


def paid_by(kind: str, call_type: str) -> str:
    """Whose usage it is: a user's call or SMS, a meeting's dial-out (its organizer's
    licences), or a toll-free number's inbound call (the tenant's)."""
    if kind == "call" and call_type in CONFERENCE_OUT:
        return "conferencing"
    if kind == "call" and call_type in INBOUND:
        return "toll_free"
    return "user"


def billed(seconds: int, increment_s: int | None) -> int:
    """``seconds`` rounded up to whole increments (no increment: as they are)."""
    if seconds <= 0:
        return 0
    if not increment_s:
        return seconds
    return math.ceil(seconds / increment_s) * increment_s


def assemble(*, usage_id: str, kind: str, ref: str, call_type: str, funding: str,
             currency: str, collected: Decimal, connection_fee: Decimal,
             seconds: Seconds | None, segments: int | None, rate: RateLine | None,
             pool: PoolTake | None, lots: list[LotTake], overage: Decimal,
             uncollected: Decimal, ledger_transaction_ids: list[str],
             corrections: list[Correction] | None = None,
             route: dict[str, Any] | None = None) -> Explanation:
    """The explanation of one usage record. ``collected`` is what the record says was
    charged (credits taken + overage); the charge is that plus what went uncollected."""
    drawn = sum((lot.amount for lot in lots), ZERO)
    charge = collected + uncollected
    if drawn + overage + uncollected != charge:
        raise PartsDoNotAddUp(f"usage {usage_id}: lots {drawn} + overage {overage} + "
                              f"uncollected {uncollected} != charge {charge}")
    return Explanation(usage_id, kind, ref, call_type, funding, currency, charge, collected,
                       connection_fee, seconds, segments, rate, pool, tuple(lots), overage,
                       uncollected, tuple(ledger_transaction_ids), tuple(corrections or ()),
                       dict(route or {}))


def view(e: Explanation) -> dict[str, Any]:
    """The explanation as the API answers it (money as strings in the currency's places;
    a rate's prices as the rate lookup shows them: at least two places, more when the deck
    has them)."""
    cur = e.currency
    out: dict[str, Any] = {
        ("call_id" if e.kind == "call" else "message_id"): e.ref,
        "usage_id": e.usage_id, "call_type": e.call_type, "funding": e.funding,
        "currency": cur, "charge": fmt(e.charge, cur), "collected": fmt(e.collected, cur),
        "connection_fee": fmt(e.connection_fee, cur), "route": e.route}
    if e.seconds is not None:
        s = e.seconds
        out.update(duration_s=s.duration_s, billed_s=s.billed_s, rounding={
            "increment_s": s.increment_s, "pool_s": s.pool_s,
            "pool_minutes": e.pool.minutes if e.pool else 0,
            "credit_s": s.credit_s, "credit_billed_s": s.credit_billed_s,
            "overage_s": s.overage_s, "overage_billed_s": s.overage_billed_s})
    else:
        out["segments"] = e.segments
    r = e.rate
    out["rate"] = None if r is None else {
        "deck_version": r.deck_version, "prefix": r.prefix, "destination": r.destination,
        "number_type": r.number_type, "per_minute": fmt_rate(r.per_minute),
        "connection_fee": fmt_rate(r.connection_fee), "increment_s": r.increment_s}
    p = e.pool
    out["pool"] = None if p is None else {"pool": p.pool, "minutes": p.minutes,
                                          "used_before": p.used_before,
                                          "used_after": p.used_after}
    out["lots"] = [{"lot_id": lot.lot_id, "amount": fmt(lot.amount, cur),
                    "expires_at": lot.expires_at.isoformat() if lot.expires_at else None}
                   for lot in e.lots]
    out["overage"] = fmt(e.overage, cur)
    out["uncollected"] = fmt(e.uncollected, cur)
    ids = e.ledger_transaction_ids
    out["ledger_transaction_id"] = ids[0] if ids else None
    out["ledger_transaction_ids"] = list(ids)
    out["corrections"] = [{"rerate_id": c.rerate_id, "old_charge": fmt(c.old_charge, cur),
                           "new_charge": fmt(c.new_charge, cur), "delta": fmt(c.delta, cur),
                           "at": c.at.isoformat()}
                          for c in e.corrections]
    return out
