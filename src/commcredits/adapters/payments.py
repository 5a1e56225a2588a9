"""Payment gateways. ``test`` is built in; a Stripe adapter implements the same two calls
(``tokenize`` → a PaymentMethod id, ``charge`` → a PaymentIntent with the idempotency key).

Test gateway magic cards (API.md): ``4242424242424242`` pays, ``4000000000000002`` is
declined, ``4000000000000069`` is expired. Any other Luhn-valid number pays. The behaviour is
carried in the token, so nothing about the card but token, brand, last4 and expiry is stored.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from decimal import Decimal

from commcredits.domain import cards
from commcredits.domain.errors import invalid, payment
from commcredits.services.ports import CardToken, PaymentGateway

DECLINED = "4000000000000002"
EXPIRED = "4000000000000069"


def _brand(number: str) -> str:
    if number.startswith("4"):
        return "visa"
    if number[:2] in {"51", "52", "53", "54", "55"} or "2221" <= number[:4] <= "2720":
        return "mastercard"
    if number[:2] in {"34", "37"}:
        return "amex"
    return "card"


class TestGateway:
    name = "test"
    __test__ = False  # not a pytest class

    def tokenize(self, card_number: str, exp_month: int, exp_year: int) -> CardToken:
        number = cards.digits(card_number)
        cards.check_expiry_fields(exp_month, exp_year)
        behaviour = {DECLINED: "declined", EXPIRED: "expired"}.get(number, "ok")
        return CardToken(f"tok_test_{behaviour}_{secrets.token_hex(8)}", _brand(number),
                         number[-4:], exp_month, exp_year)

    def charge(self, card: CardToken, amount: Decimal, currency: str, *, idempotency_key: str,
               description: str, now: datetime) -> str:
        self.verify(card, now=now)
        digest = hashlib.sha256(f"{card.token}|{idempotency_key}".encode()).hexdigest()[:24]
        return f"ch_test_{digest}"


    def verify(self, card: CardToken, *, now: datetime) -> None:
        if not card.token.startswith("tok_test_"):
            raise invalid("validation_error", "this payment method belongs to another gateway")
        cards.check_not_expired(card.exp_month, card.exp_year, now)
        if card.token.startswith("tok_test_expired_"):
            raise payment("card_expired", "the card has expired")
        if card.token.startswith("tok_test_declined_"):
            raise payment("payment_declined", "the card was declined by the issuer")


def gateway_named(name: str) -> PaymentGateway:
    if name == "test":
        return TestGateway()
    raise ValueError(f"unknown payment gateway {name!r} (available: test)")
