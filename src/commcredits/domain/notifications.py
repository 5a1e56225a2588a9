"""What each notification says. Pure text composition; delivery is an adapter's job."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class NoticeKind(StrEnum):
    LOT_EXPIRING = "lot_expiring"
    LOT_EXPIRED = "lot_expired"
    RECHARGE_SUCCEEDED = "recharge_succeeded"
    RECHARGE_FAILED = "recharge_failed"
    RECHARGE_SUSPENDED = "recharge_suspended"
    BALANCE_ZERO = "balance_zero"


@dataclass(frozen=True, slots=True)
class Notice:
    kind: NoticeKind
    subject: str
    body: str
    dedupe: str  # one notice per (dedupe, recipient): jobs that run twice send once


def lot_expiring(tenant_name: str, lot_id: str, remaining: str, currency: str,
                 expires_at: str) -> Notice:
    return Notice(
        NoticeKind.LOT_EXPIRING,
        f"{tenant_name}: {remaining} {currency} of communications credits expire on "
        f"{expires_at[:10]}",
        f"Credits lot {lot_id} still holds {remaining} {currency}. It expires at {expires_at}; "
        "whatever is left then is forfeited. Credits are spent oldest first.",
        f"lot_expiring:{lot_id}",
    )


def lot_expired(tenant_name: str, lot_id: str, forfeited: str, currency: str,
                balance: str) -> Notice:
    return Notice(
        NoticeKind.LOT_EXPIRED,
        f"{tenant_name}: {forfeited} {currency} of communications credits expired",
        f"Credits lot {lot_id} reached its 12-month expiry; {forfeited} {currency} were "
        f"forfeited. Your balance is now {balance} {currency}.",
        f"lot_expired:{lot_id}",
    )
