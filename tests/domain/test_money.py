"""Exact money: parsing, currency places, wire format."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from commcredits.domain.errors import DomainError, ErrorKind
from commcredits.domain.money import (
    fmt,
    is_currency,
    parse_amount,
    places,
    quantum,
    round_half_up,
    to_currency,
)


@pytest.mark.parametrize(
    ("value", "currency", "expected"),
    [
        ("50", "USD", "50.00"),
        ("50.00", "USD", "50.00"),
        (" 50.5 ", "USD", "50.50"),
        (50, "USD", "50.00"),
        (Decimal("12.5"), "USD", "12.50"),
        ("12.340", "USD", "12.34"),  # a trailing zero is not an extra place
        ("1250", "JPY", "1250"),
        (Decimal("1250.0"), "JPY", "1250"),
        ("1.234", "BHD", "1.234"),
    ],
)
def test_parse_amount_accepts(value: object, currency: str, expected: str) -> None:
    got = parse_amount(value, currency)
    assert got == Decimal(expected)
    assert str(got) == expected  # quantized to the currency's places


@pytest.mark.parametrize(
    ("value", "currency"),
    [
        (50.0, "USD"),
        (0.1, "USD"),
        (True, "USD"),
        (None, "USD"),
        (["50"], "USD"),
        ("abc", "USD"),
        ("", "USD"),
        ("NaN", "USD"),
        ("sNaN", "USD"),
        ("Infinity", "USD"),
        ("-Infinity", "USD"),
        (Decimal("NaN"), "USD"),
        ("12.345", "USD"),
        ("1.5", "JPY"),
        ("1.2345", "BHD"),
        ("1e30", "USD"),  # more digits than the decimal context holds
    ],
)
def test_parse_amount_refuses(value: object, currency: str) -> None:
    with pytest.raises(DomainError) as e:
        parse_amount(value, currency)
    assert e.value.code == "validation_error"
    assert e.value.kind is ErrorKind.INVALID


def test_a_number_with_too_many_digits_is_above_the_maximum() -> None:
    with pytest.raises(DomainError) as e:
        parse_amount("9" * 40, "USD")
    assert "above the maximum" in e.value.message
    with pytest.raises(DomainError) as e:
        parse_amount("1234567890123456", "USD")
    assert (e.value.code, e.value.kind) == ("amount_above_maximum", ErrorKind.INVALID)
    assert "above the maximum of 999999999999" in e.value.message


def test_parse_amount_names_the_field_in_its_message() -> None:
    with pytest.raises(DomainError, match="recharge_amount"):
        parse_amount("1.001", "USD", field="recharge_amount")


@pytest.mark.parametrize(("currency", "n"), [("USD", 2), ("EUR", 2), ("JPY", 0), ("BHD", 3)])
def test_places(currency: str, n: int) -> None:
    assert places(currency) == n
    assert quantum(currency) == Decimal(1).scaleb(-n)


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [
        ("12.5", "USD", "12.50"),
        ("0", "USD", "0.00"),
        ("1250", "JPY", "1250"),
        ("1E+3", "JPY", "1000"),  # never scientific notation on the wire
        ("0.1", "BHD", "0.100"),
    ],
)
def test_fmt(amount: str, currency: str, text: str) -> None:
    assert fmt(Decimal(amount), currency) == text


def test_is_currency() -> None:
    assert is_currency("USD")
    assert is_currency("JPY")
    assert not is_currency("usd")
    assert not is_currency("XYZ")
    assert not is_currency("US")


def test_to_currency_refuses_loss() -> None:
    assert to_currency(Decimal("3.10"), "USD") == Decimal("3.10")
    with pytest.raises(ValueError):
        to_currency(Decimal("3.105"), "USD")


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [("2.345", "USD", "2.35"), ("2.344", "USD", "2.34"), ("-2.345", "USD", "-2.35"),
     ("0.5", "JPY", "1"), ("1.0005", "BHD", "1.001")],
)
def test_round_half_up(amount: str, currency: str, expected: str) -> None:
    assert round_half_up(Decimal(amount), currency) == Decimal(expected)


@given(st.integers(0, 10**12))
def test_wire_round_trip_usd(n: int) -> None:
    text = f"{n // 100}.{n % 100:02d}"
    assert fmt(parse_amount(text, "USD"), "USD") == text


@given(st.integers(0, 10**12), st.integers(1, 9))
def test_third_place_refused_for_usd(n: int, extra: int) -> None:
    text = f"{n // 100}.{n % 100:02d}{extra}"
    with pytest.raises(DomainError):
        parse_amount(text, "USD")


@pytest.mark.parametrize("text", ["1_000", "1e3", "1E+2", "\u0663", "\uff11\uff12", "+", ".5",
                                  "5.", "1,000"])
def test_only_plain_decimal_strings_are_money(text: str) -> None:
    with pytest.raises(DomainError) as caught:
        parse_amount(text, "USD")
    assert caught.value.code == "validation_error"


def test_surrounding_spaces_are_tolerated() -> None:
    assert parse_amount(" 50.5 ", "USD") == Decimal("50.50")
