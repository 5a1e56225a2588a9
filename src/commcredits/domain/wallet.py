"""The wallet: one balance per tenant, the sum of its lots' remainders, in one currency.

``reserved`` is money held for calls in progress (the charging issue fills it); ``available``
is what may still be promised. The funding rules live here: the minimum order, and the
auto-recharge settings ("recharge with X when the balance falls below T").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from commcredits.domain import lots as lotrules
from commcredits.domain.errors import invalid
from commcredits.domain.lots import Draw, Lot
from commcredits.domain.money import ZERO


class RechargeStatus(StrEnum):
    OFF = "off"
    ACTIVE = "active"
    SUSPENDED = "suspended"


@dataclass(frozen=True, slots=True)
class AutoRecharge:
    enabled: bool = False
    recharge_amount: Decimal | None = None
    trigger_amount: Decimal | None = None
    payment_method_id: str | None = None
    status: RechargeStatus = RechargeStatus.OFF


@dataclass(frozen=True, slots=True)
class Wallet:
    tenant_id: str
    currency: str
    lots: tuple[Lot, ...]
    reserved: Decimal = ZERO

    @property
    def balance(self) -> Decimal:
        return sum((lot.remaining for lot in self.lots), ZERO)

    def spendable(self, now: datetime) -> Decimal:
        return sum((lot.remaining for lot in self.lots if lot.is_live(now)), ZERO)

    def available(self, now: datetime) -> Decimal:
        return max(self.spendable(now) - self.reserved, ZERO)

    def draws_for(self, amount: Decimal, now: datetime) -> list[Draw]:
        return lotrules.allocate(self.lots, amount, now)


DEFAULT_MAX_ORDER = Decimal(100_000)  # COMMCREDITS_MAX_ORDER
MAX_BALANCE = Decimal(10) ** 12 - 1  # what a wallet may hold: storage cannot overflow


def check_order_amount(amount: Decimal, minimum: Decimal, *, field: str = "amount",
                       maximum: Decimal = DEFAULT_MAX_ORDER) -> None:
    if amount < minimum:
        raise invalid("amount_below_minimum", f"{field} {amount} is below the minimum of {minimum}")
    if amount > maximum:
        raise invalid("amount_above_maximum", f"{field} {amount} is above the maximum of "
                                              f"{maximum} for one order")


def check_balance_room(balance: Decimal, amount: Decimal) -> None:
    """A funding may not take the balance past what can be stored (checked before paying)."""
    if balance + amount > MAX_BALANCE:
        raise invalid("balance_limit", f"the balance may not exceed {MAX_BALANCE}")


def check_auto_recharge(settings: AutoRecharge, minimum: Decimal,
                        maximum: Decimal = DEFAULT_MAX_ORDER) -> AutoRecharge:
    """Validate new settings; returns them with the status they imply."""
    if not settings.enabled:
        return AutoRecharge(False, settings.recharge_amount, settings.trigger_amount,
                            settings.payment_method_id, RechargeStatus.OFF)
    if settings.recharge_amount is None:
        raise invalid("validation_error", "recharge_amount is required to enable auto-recharge")
    if settings.trigger_amount is None:
        raise invalid("validation_error", "trigger_amount is required to enable auto-recharge")
    if settings.payment_method_id is None:
        raise invalid("payment_method_required",
                      "a payment method is required to enable auto-recharge")
    check_order_amount(settings.recharge_amount, minimum, field="recharge_amount",
                       maximum=maximum)
    if settings.trigger_amount < ZERO:
        raise invalid("validation_error", "trigger_amount must be zero or more")
    return AutoRecharge(True, settings.recharge_amount, settings.trigger_amount,
                        settings.payment_method_id, RechargeStatus.ACTIVE)
