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
    RECHARGE_CAPPED = "recharge_capped"
    POOL_80 = "pool_80"
    POOL_100 = "pool_100"
    MONTHLY_STATEMENT = "monthly_statement"


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


def balance_zero(tenant_name: str, currency: str, dedupe: str) -> Notice:
    return Notice(
        NoticeKind.BALANCE_ZERO,
        f"{tenant_name}: your communications credits balance is 0.00 {currency}",
        "Your balance has reached zero. Calls that need credits (beyond included minutes, "
        "international, pay-as-you-go, toll-free numbers) are refused until you add funds "
        "or auto-recharge succeeds.",
        dedupe,
    )


def recharge_succeeded(tenant_name: str, amount: str, currency: str, balance: str,
                       recharge_id: str) -> Notice:
    return Notice(
        NoticeKind.RECHARGE_SUCCEEDED,
        f"{tenant_name}: auto-recharge added {amount} {currency}",
        f"Your balance fell below the trigger, so {amount} {currency} of communications credits "
        f"were bought with your saved payment method. The balance is now {balance} {currency}.",
        f"recharge_succeeded:{recharge_id}",
    )


def recharge_failed(tenant_name: str, amount: str, currency: str, reason: str,
                    retry_at: str, recharge_id: str, attempt: int) -> Notice:
    return Notice(
        NoticeKind.RECHARGE_FAILED,
        f"{tenant_name}: auto-recharge of {amount} {currency} failed",
        f"The payment was refused ({reason}). We will try again at {retry_at}. Check the "
        "payment method of your auto-recharge settings.",
        f"recharge_failed:{recharge_id}:{attempt}",
    )


def recharge_suspended(tenant_name: str, amount: str, currency: str, reason: str,
                       recharge_id: str) -> Notice:
    return Notice(
        NoticeKind.RECHARGE_SUSPENDED,
        f"{tenant_name}: auto-recharge is suspended",
        f"Auto-recharge of {amount} {currency} failed four times ({reason}), so it is "
        "suspended. Update the payment method and turn auto-recharge on again.",
        f"recharge_suspended:{recharge_id}",
    )


def recharge_capped(tenant_name: str, limit: int, recharge_id: str) -> Notice:
    return Notice(
        NoticeKind.RECHARGE_CAPPED,
        f"{tenant_name}: auto-recharge daily limit reached",
        f"Auto-recharge ran {limit} times today, the daily limit, so it did not run again. "
        "Unusual usage can mean toll fraud: review recent calls.",
        f"recharge_capped:{recharge_id}",
    )


def pool_alert(tenant_name: str, pool_label: str, percent: int, month: str,
               pool_code: str) -> Notice:
    return Notice(
        NoticeKind.POOL_100 if percent >= 100 else NoticeKind.POOL_80,
        f"{tenant_name}: {percent}% of the {pool_label} minutes used in {month}",
        f"The {pool_label} minute pool is {percent}% used this month. Further minutes are "
        "charged from credits (or refused without them).",
        f"pool:{pool_code}:{month}:{percent}",
    )


def monthly_statement(tenant_name: str, tenant_id: str, month: str,
                      lines: list[tuple[str, str]], currency: str) -> Notice:
    """A month closed: its statement's lines (label, amount), and where to download it."""
    text = "\n".join(f"  {label}: {amount} {currency}" for label, amount in lines)
    return Notice(
        NoticeKind.MONTHLY_STATEMENT,
        f"{tenant_name}: your communications credits statement for {month}",
        f"The statement of {month} (UTC) reconciles to the ledger to the cent:\n{text}\n"
        f"Download it as PDF, CSV or JSON from the console's Statements page, or "
        f"GET /v1/tenants/{tenant_id}/statements/{month}?format=pdf",
        f"monthly_statement:{month}",
    )
