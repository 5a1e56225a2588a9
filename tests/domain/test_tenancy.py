"""Tenants: country → currency, countries, and where and how credits may be bought."""

from __future__ import annotations

from datetime import date

import pytest

from commcredits.domain.errors import DomainError, ErrorKind
from commcredits.domain.tenancy import (
    Commerce,
    Tenant,
    check_can_buy_credits,
    check_commerce_change,
    check_country,
    currency_for_country,
)

TODAY = date(2027, 6, 1)


def _tenant(country: str = "US", commerce: Commerce = Commerce.LEGACY) -> Tenant:
    return Tenant("T1", "Contoso", country, "USD", commerce)


@pytest.mark.parametrize(
    ("country", "currency"),
    [("US", "USD"), ("DE", "EUR"), ("GB", "GBP"), ("JP", "JPY"), ("IN", "INR"), ("FR", "EUR")],
)
def test_currency_for_country(country: str, currency: str) -> None:
    assert currency_for_country(country, TODAY) == currency


def test_currency_follows_the_date() -> None:
    # Croatia adopted the euro on 2023-01-01; CLDR knows both tenders.
    assert currency_for_country("HR", date(2022, 6, 1)) == "HRK"
    assert currency_for_country("HR", TODAY) == "EUR"


@pytest.mark.parametrize("country", ["ZZ", "AQ"])
def test_currency_unknown(country: str) -> None:
    with pytest.raises(DomainError) as e:
        currency_for_country(country, TODAY)
    assert e.value.code == "validation_error"


def test_check_country() -> None:
    assert check_country("us") == "US"
    assert check_country("GB") == "GB"
    for bad in ["ZZ", "EU", "USA", "U", "", "12"]:
        with pytest.raises(DomainError) as e:
            check_country(bad, field="usage_location")
        assert e.value.code == "validation_error"
        assert "usage_location" in e.value.message


def test_legacy_tenant_may_buy_credits() -> None:
    check_can_buy_credits(_tenant("US"))
    check_can_buy_credits(_tenant("DE"))


def test_nce_tenant_may_not_buy_credits() -> None:
    with pytest.raises(DomainError) as e:
        check_can_buy_credits(_tenant("US", Commerce.NCE))
    assert (e.value.code, e.value.kind) == ("not_available_for_commerce_model",
                                            ErrorKind.CONFLICT)


@pytest.mark.parametrize("country", ["RU", "KR", "TW"])
def test_credits_not_sold_in_country(country: str) -> None:
    with pytest.raises(DomainError) as e:
        check_can_buy_credits(_tenant(country))
    assert (e.value.code, e.value.kind) == ("not_available_in_country", ErrorKind.CONFLICT)
    assert country in e.value.message
    with pytest.raises(DomainError) as both:
        check_can_buy_credits(_tenant(country, Commerce.NCE))
    assert both.value.code in {"not_available_in_country", "not_available_for_commerce_model"}


@pytest.mark.parametrize(
    ("current", "new", "auto_recharge", "refused"),
    [
        (Commerce.LEGACY, Commerce.NCE, True, True),
        (Commerce.LEGACY, Commerce.NCE, False, False),
        (Commerce.NCE, Commerce.LEGACY, True, False),
        (Commerce.NCE, Commerce.LEGACY, False, False),
        (Commerce.LEGACY, Commerce.LEGACY, True, False),
        (Commerce.NCE, Commerce.NCE, True, False),
    ],
)
def test_commerce_change(current: Commerce, new: Commerce, auto_recharge: bool,
                         refused: bool) -> None:
    if not refused:
        check_commerce_change(current, new, auto_recharge)
        return
    with pytest.raises(DomainError) as e:
        check_commerce_change(current, new, auto_recharge)
    assert (e.value.code, e.value.kind) == ("auto_recharge_enabled", ErrorKind.CONFLICT)
