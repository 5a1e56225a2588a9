"""``adapters.xlsx.excel_serial``: a UTC time as Excel's date-time serial, exact to 10 places,
computed here independently from the seconds since Excel's day 0 (1899-12-30)."""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

import pytest

from commcredits.adapters.xlsx import excel_serial


def _expected(text: str) -> str:
    at = datetime.strptime(text.rstrip("Z").replace("T", " "), "%Y-%m-%d %H:%M:%S")
    seconds = int((at - datetime(1899, 12, 30)).total_seconds())
    value = (Decimal(seconds) / 86400).quantize(Decimal("1e-10"), rounding=ROUND_HALF_UP)
    return format(value.normalize(), "f")


@pytest.mark.parametrize("text", [
    "2030-03-10T12:00:00Z", "2030-03-10 00:00:00", "2030-03-10T23:59:59Z",
    "1900-03-01T00:00:01Z", "2024-02-29T06:07:08Z", "9999-12-31T23:59:59Z",
    "2030-03-11T00:00:00Z", "2030-03-10T00:00:00Z",  # the day cache: a day already seen
])
def test_a_time_is_its_exact_serial(text: str) -> None:
    assert excel_serial(text) == _expected(text)


@pytest.mark.parametrize("text", [
    "2030-02-30T12:00:00Z", "2023-02-29T00:00:00Z", "2030-13-01T00:00:00Z",
    "2030-03-10", "2030-03-10T12:00Z", "not a time", "", "2030-03-10T12:00:00+01:00",
])
def test_anything_else_is_not_a_time(text: str) -> None:
    assert excel_serial(text) is None
