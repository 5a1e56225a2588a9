"""The span of dates the service works in. Money lives 12 months and reports add a day to
their last date, so a date near year 9999 overflows Python's ``date``; anything outside
these years is refused at the edge instead (the manual clock, report periods)."""

from __future__ import annotations

from datetime import date

from commcredits.domain.errors import invalid

FIRST_YEAR = 2000
LAST_YEAR = 2199


def check_in_span(value: date, field: str) -> None:
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise invalid("validation_error",
                      f"{field} {value.isoformat()} is outside the years {FIRST_YEAR} to "
                      f"{LAST_YEAR}")
