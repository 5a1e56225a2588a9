"""What a balance change sets off: an auto-recharge (once per fall below the trigger) and a
``balance_zero`` notice (once per time zero is reached)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from commcredits.domain.money import ZERO
from commcredits.domain.wallet import AutoRecharge, RechargeStatus


@dataclass(frozen=True, slots=True)
class Events:
    start_recharge: bool
    notify_zero: bool
    armed: bool  # a later fall below the trigger may start another recharge
    zero_notified: bool


def after_change(balance: Decimal, settings: AutoRecharge, armed: bool,
                 zero_notified: bool) -> Events:
    active = settings.enabled and settings.status is RechargeStatus.ACTIVE
    trigger = settings.trigger_amount
    start = False
    if trigger is not None and balance >= trigger:
        armed = True
    elif active and trigger is not None and balance < trigger and armed:
        start, armed = True, False
    notify = False
    if balance > ZERO:
        zero_notified = False
    elif not zero_notified:
        notify, zero_notified = True, True
    return Events(start, notify, armed, zero_notified)
