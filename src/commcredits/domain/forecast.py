"""Spend over time, the runout forecast and a recommended auto-recharge (SPEC §2 Credits,
§3 "at the current burn your balance lasts N days").

Burn rate = usage over the window / days in the window. The recommendation keeps a week of
spend as the trigger and buys a month of spend per recharge (never below the minimum order),
both rounded up to whole currency units so they read like what a person would type.

A large balance and a tiny burn can put the runout date past any calendar (10,100 left at
0.08 in 28 days is 3.5 million days): beyond :data:`RUNOUT_HORIZON_DAYS` the date is None
(``runout_days`` still says how far).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_CEILING, Decimal

from commcredits.domain.money import ZERO, round_half_up

TRIGGER_DAYS = 7
RECHARGE_DAYS = 30
RUNOUT_HORIZON_DAYS = 36_500  # a hundred years: no date is given beyond it


@dataclass(frozen=True, slots=True)
class Forecast:
    daily: list[tuple[date, Decimal]]  # every day of the window, oldest first
    spent: Decimal
    burn_per_day: Decimal
    runout_days: int | None  # None: no spend, the balance does not run out
    runout_date: date | None  # None: no spend, or beyond the horizon
    recommended_trigger: Decimal
    recommended_recharge: Decimal


def whole_units_up(amount: Decimal) -> Decimal:
    return amount.to_integral_value(rounding=ROUND_CEILING)


def forecast(spend_by_day: dict[date, Decimal], today: date, days: int, available: Decimal,
             minimum_order: Decimal, currency: str) -> Forecast:
    start = today - timedelta(days=days - 1)
    daily = [(start + timedelta(days=i), spend_by_day.get(start + timedelta(days=i), ZERO))
             for i in range(days)]
    spent = sum((amount for _, amount in daily), ZERO)
    burn = round_half_up(spent / days, currency) if days else ZERO
    exact_burn = spent / days if days else ZERO
    runout = None if exact_burn <= ZERO else math.floor(available / exact_burn)
    runout_date = None
    if runout is not None and runout <= RUNOUT_HORIZON_DAYS:
        runout_date = today + timedelta(days=runout)
    trigger = whole_units_up(exact_burn * TRIGGER_DAYS)
    recharge = max(minimum_order, whole_units_up(exact_burn * RECHARGE_DAYS))
    return Forecast(daily, spent, burn, runout, runout_date, trigger, recharge)
