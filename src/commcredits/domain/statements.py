"""Monthly statements: a tenant's credits over one calendar month (UTC), from the ledger.

Every ledger transaction of the month falls on exactly one line, by its kind::

    opening + purchases + auto_recharges - usage.total + corrections - expired = closing

``opening`` is the balance after the tenant's last transaction before the month, ``closing``
the balance after its last transaction of the month, so a month's closing is the next one's
opening and each is the balance (``credits``) at that instant. Usage is split by category
(domestic, international, toll-free, conferencing dial-out, SMS) from the usage record the
charge names; an adjustment (a silently settled call the switch later reported shorter)
gives usage back in the same category. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from dateutil.relativedelta import relativedelta

from commcredits.domain.calls import CONFERENCE_OUT, INBOUND
from commcredits.domain.errors import invalid
from commcredits.domain.money import ZERO, fmt

CATEGORIES = ("domestic", "international", "toll_free", "conferencing", "sms")
LINES = ("opening_balance", "purchases", "auto_recharges", "usage", "corrections", "expired",
         "closing_balance")
_MONTH = re.compile(r"(?P<y>[0-9]{4})-(?P<m>0[1-9]|1[0-2])")


def parse_month(text: str) -> tuple[datetime, datetime]:
    """``YYYY-MM`` → (first instant, first instant of the next month), UTC."""
    found = _MONTH.fullmatch(text or "")
    if not found or int(found["y"]) < 1970:
        raise invalid("validation_error", f"month must be YYYY-MM (1970 or later), not {text!r}")
    start = datetime(int(found["y"]), int(found["m"]), 1, tzinfo=UTC)
    return start, start + relativedelta(months=1)


def category(kind: str | None, call_type: str | None, scope: str | None) -> str:
    """Which usage line a charge belongs on (a charge without a usage record: domestic)."""
    if kind == "sms":
        return "sms"
    if call_type in CONFERENCE_OUT:
        return "conferencing"
    if call_type in INBOUND:  # the only inbound calls that cost money: toll-free numbers
        return "toll_free"
    if scope == "International":
        return "international"
    return "domestic"


@dataclass(frozen=True, slots=True)
class Movement:
    """One ledger transaction of the month: its kind, its signed change to the balance and,
    for usage, its category."""
    kind: str
    amount: Decimal
    category: str | None = None


@dataclass(frozen=True, slots=True)
class Statement:
    tenant_id: str
    tenant_name: str
    month: str
    currency: str
    final: bool
    opening: Decimal
    purchases: Decimal
    auto_recharges: Decimal
    usage: dict[str, Decimal]
    corrections: Decimal
    expired: Decimal
    closing: Decimal
    transactions: int = 0
    overage: Decimal = ZERO
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def usage_total(self) -> Decimal:
        return sum(self.usage.values(), ZERO)


class DoesNotReconcile(ValueError):
    """The lines do not lead from the opening to the closing balance (never rounded away)."""


def build(*, tenant_id: str, tenant_name: str, month: str, currency: str, final: bool,
          opening: Decimal, closing: Decimal, movements: Iterable[Movement],
          overage: Decimal = ZERO) -> Statement:
    """Put each movement on its line and check the identity to the cent (exactly)."""
    purchases = recharges = corrections = expired = ZERO
    usage = dict.fromkeys(CATEGORIES, ZERO)
    n = 0
    for m in movements:
        n += 1
        if m.kind == "order":
            purchases += m.amount
        elif m.kind == "auto_recharge":
            recharges += m.amount
        elif m.kind == "expiry":
            expired -= m.amount
        elif m.kind == "correction":
            corrections += m.amount
        else:  # usage, and adjustments of usage: what they took off the balance
            key = m.category if m.category in usage else "domestic"
            usage[key] -= m.amount
    s = Statement(tenant_id, tenant_name, month, currency, final, opening, purchases,
                  recharges, usage, corrections, expired, closing, n, overage)
    if opening + purchases + recharges - s.usage_total + corrections - expired != closing:
        raise DoesNotReconcile(f"{tenant_id} {month}: lines do not lead from {opening} to "
                               f"{closing}")
    return s


def view(s: Statement) -> dict[str, Any]:
    """The statement as the API answers it (money as strings in the currency's places)."""
    cur = s.currency
    return {"tenant_id": s.tenant_id, "tenant_name": s.tenant_name, "month": s.month,
            "currency": cur, "final": s.final, "opening_balance": fmt(s.opening, cur),
            "purchases": fmt(s.purchases, cur), "auto_recharges": fmt(s.auto_recharges, cur),
            "usage": {**{k: fmt(v, cur) for k, v in s.usage.items()},
                      "total": fmt(s.usage_total, cur)},
            "corrections": fmt(s.corrections, cur), "expired": fmt(s.expired, cur),
            "closing_balance": fmt(s.closing, cur), "transactions": s.transactions,
            "overage": fmt(s.overage, cur)}


_LABELS = {"opening_balance": "Opening balance", "purchases": "Purchases (card, EA + PO)",
           "auto_recharges": "Auto-recharges", "domestic": "Usage: domestic calls",
           "international": "Usage: international calls",
           "toll_free": "Usage: toll-free numbers",
           "conferencing": "Usage: conferencing dial-out", "sms": "Usage: SMS",
           "total": "Usage: total", "corrections": "Corrections",
           "expired": "Expiries and forfeitures", "closing_balance": "Closing balance",
           "overage": "Overage (invoiced separately, not from credits)"}


def lines(v: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(key, label, amount) in statement order, from :func:`view`'s answer: what the CSV and
    the PDF show."""
    out = [(k, _LABELS[k], v[k]) for k in ("opening_balance", "purchases", "auto_recharges")]
    out += [(f"usage.{k}", _LABELS[k], v["usage"][k]) for k in (*CATEGORIES, "total")]
    out += [(k, _LABELS[k], v[k]) for k in ("corrections", "expired", "closing_balance",
                                             "overage")]
    return out


def paid_how(f: dict[str, Any]) -> str:
    """One funding of the month in words: date, kind, order, card or EA (+ PO)."""
    how = (f"card ending {f['card_last4']}" if f["payment"] == "card"
           else f"Enterprise Agreement {f['agreement_number']}")
    po = f", PO {f['po_number']}" if f.get("po_number") else ""
    return f"{f['at'][:10]} {f['kind'].replace('_', '-')} {f['order_id']}: {how}{po}"
