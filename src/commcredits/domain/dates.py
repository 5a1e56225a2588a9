"""The span of dates the service works in. Money lives 12 months and reports add a day to
their last date, so a date near year 9999 overflows Python's ``date``; anything outside
these years is refused at the edge instead (the manual clock, report periods)."""

from __future__ import annotations

import re
from datetime import date, datetime

from commcredits.domain.errors import invalid

FIRST_YEAR = 2000
LAST_YEAR = 2199


def check_in_span(value: date, field: str) -> None:
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise invalid("validation_error",
                      f"{field} {value.isoformat()} is outside the years {FIRST_YEAR} to "
                      f"{LAST_YEAR}")


# An RFC 3339 date-time (``T``, ``t`` or a space between date and time, as RFC 3339 § 5.6
# allows); the offset may be left out (taken as UTC) or written without its colon. Numbers
# (Unix times), dates alone and ISO 8601's basic form (``20300310T1200``) are not timestamps.
TIMESTAMP_PATTERN = (r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}"
                     r"(:[0-9]{2}(\.[0-9]+)?)?([Zz]|[+-][0-9]{2}:?[0-9]{2})?")
_TIMESTAMP = re.compile(TIMESTAMP_PATTERN)
TIMESTAMP_EXAMPLE = "2030-03-10T12:00:00Z"


def timestamp_problem(value: object) -> str | None:
    """Why ``value`` (a JSON value or a CSV cell) is not an RFC 3339 date-time (None: it
    is one, as far as its shape goes; the calendar is checked when it is parsed)."""
    if isinstance(value, datetime) or (isinstance(value, str)
                                       and _TIMESTAMP.fullmatch(value.strip())):
        return None  # (a datetime: from Python, e.g. the demo's own calls)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return (f"must be an RFC 3339 date-time string such as {TIMESTAMP_EXAMPLE}, "
                "not a number")
    return f"must be an RFC 3339 date-time such as {TIMESTAMP_EXAMPLE}"


def check_month(value: str, field: str = "month") -> str:
    """``YYYY-MM`` with a month 01 to 12 and a year in the service's span; the value."""
    if not (len(value) == 7 and value[4] == "-" and value.isascii()
            and (value[:4] + value[5:]).isdigit() and 1 <= int(value[5:]) <= 12):
        raise invalid("validation_error",
                      f"{field} {value[:20]!r} must be YYYY-MM with a month 01 to 12")
    if not FIRST_YEAR <= int(value[:4]) <= LAST_YEAR:
        raise invalid("validation_error", f"{field} {value} is outside the years "
                                          f"{FIRST_YEAR} to {LAST_YEAR}")
    return value
