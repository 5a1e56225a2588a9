"""Card rules that need no gateway: Luhn, normalised digits, expiry month."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from commcredits.domain.cards import (
    check_expiry_fields,
    check_not_expired,
    digits,
    is_expired,
    luhn_ok,
)
from commcredits.domain.errors import DomainError, ErrorKind
from tests.domain.helpers import utc

VALID = ["4242424242424242", "4111111111111111", "5555555555554444", "378282246310005",
         "6011111111111117", "3056930009020004", "79927398713"]


@pytest.mark.parametrize("number", VALID)
def test_luhn_valid(number: str) -> None:
    assert luhn_ok(number)


@pytest.mark.parametrize("number", ["4242424242424241", "4111111111111112", "79927398710",
                                    "2424242424242424"])
def test_luhn_invalid(number: str) -> None:
    assert not luhn_ok(number)


@given(st.text("0123456789", min_size=11, max_size=18))
def test_exactly_one_check_digit_fits(payload: str) -> None:
    assert sum(luhn_ok(payload + str(d)) for d in range(10)) == 1


@given(st.text("0123456789", min_size=11, max_size=18), st.data())
def test_luhn_catches_any_single_digit_change(payload: str, data: st.DataObject) -> None:
    number = next(payload + str(d) for d in range(10) if luhn_ok(payload + str(d)))
    i = data.draw(st.integers(0, len(number) - 1))
    new = data.draw(st.sampled_from([c for c in "0123456789" if c != number[i]]))
    assert not luhn_ok(number[:i] + new + number[i + 1:])


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("4242 4242 4242 4242", "4242424242424242"),
        ("4242-4242-4242-4242", "4242424242424242"),
        ("3782 822463 10005", "378282246310005"),
        ("000000000000", "000000000000"),  # 12 digits, the shortest accepted
        ("4" + "0" * 17 + "6", "4" + "0" * 17 + "6"),  # 19 digits, the longest accepted
    ],
)
def test_digits_normalises(raw: str, expected: str) -> None:
    assert luhn_ok(expected)
    assert digits(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "00000000000",  # 11 digits
        "0" * 20,
        "4242424242424241",  # Luhn fails
        "4242x42424242424",
        "",
        "4242.4242.4242.4242",
        "\uff14" * 2 + "42424242424242",  # full-width digits are not card digits
        "42424242424242\u00b242",  # a superscript two passes str.isdigit but is no digit
    ],
)
def test_digits_refuses(raw: str) -> None:
    with pytest.raises(DomainError) as e:
        digits(raw)
    assert (e.value.code, e.value.kind) == ("validation_error", ErrorKind.INVALID)


@pytest.mark.parametrize(
    ("month", "year", "now", "expired"),
    [
        (12, 2027, utc(2027, 1, 1), False),
        (12, 2027, utc(2027, 12, 31, 23, 59, 59, 999999), False),  # valid through month end
        (12, 2027, utc(2028, 1, 1), True),
        (1, 2028, utc(2027, 12, 31), False),
        (2, 2028, utc(2028, 2, 29, 12), False),
        (2, 2028, utc(2028, 3, 1), True),
        (6, 2026, utc(2027, 5, 1), True),  # earlier year, later month
    ],
)
def test_is_expired(month: int, year: int, now: datetime, expired: bool) -> None:
    assert is_expired(month, year, now) is expired


def test_check_not_expired() -> None:
    check_not_expired(12, 2027, utc(2027, 12, 31))
    with pytest.raises(DomainError) as e:
        check_not_expired(12, 2027, utc(2028, 1, 1))
    assert (e.value.code, e.value.kind) == ("card_expired", ErrorKind.PAYMENT)
    assert "12/2027" in e.value.message


@pytest.mark.parametrize(("month", "year"), [(1, 2000), (12, 2100), (6, 2030)])
def test_expiry_fields_accepted(month: int, year: int) -> None:
    check_expiry_fields(month, year)


@pytest.mark.parametrize(("month", "year"), [(0, 2030), (13, 2030), (6, 1999), (6, 2101),
                                             (6, 30)])
def test_expiry_fields_refused(month: int, year: int) -> None:
    with pytest.raises(DomainError) as e:
        check_expiry_fields(month, year)
    assert e.value.code == "validation_error"
