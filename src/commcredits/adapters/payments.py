"""Payment gateways. ``test`` is built in; a Stripe adapter implements the same two calls
(``tokenize`` → a PaymentMethod id, ``charge`` → a PaymentIntent with the idempotency key).

Test gateway magic cards (API.md): ``4242424242424242`` pays, ``4000000000000002`` is
declined, ``4000000000000069`` is expired. Any other Luhn-valid number pays. The behaviour is
carried in the token, so nothing about the card but token, brand, last4 and expiry is stored.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import threading
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

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

    def refund(self, reference: str, amount: Decimal, currency: str, *,
               idempotency_key: str) -> str:
        if not reference.startswith("ch_test_"):
            raise invalid("validation_error", "this payment belongs to another gateway")
        digest = hashlib.sha256(f"{reference}|{idempotency_key}".encode()).hexdigest()[:24]
        return f"re_test_{digest}"


    def verify(self, card: CardToken, *, now: datetime) -> None:
        if not card.token.startswith("tok_test_"):
            raise invalid("validation_error", "this payment method belongs to another gateway")
        cards.check_not_expired(card.exp_month, card.exp_year, now)
        if card.token.startswith("tok_test_expired_"):
            raise payment("card_expired", "the card has expired")
        if card.token.startswith("tok_test_declined_"):
            raise payment("payment_declined", "the card was declined by the issuer")


class RecordingGateway(TestGateway):
    """The test gateway, writing every charge it makes to a JSON-lines file (synced before
    it answers) for the crash tests: like a real gateway it charges once per idempotency key,
    across restarts, and the file is its statement. ``delay_s`` after each new charge is a
    real gateway's latency (and a window for a crash between charge and answer)."""

    name = "test"  # tokens are the test gateway's

    def __init__(self, path: str, delay_s: float = 0.0) -> None:
        self.path = Path(path)
        self.delay_s = delay_s
        self._lock = threading.Lock()

    def charge(self, card: CardToken, amount: Decimal, currency: str, *, idempotency_key: str,
               description: str, now: datetime) -> str:
        reference = super().charge(card, amount, currency, idempotency_key=idempotency_key,
                                   description=description, now=now)
        with self._lock:
            if idempotency_key not in {c["key"] for c in read_statement(self.path)}:
                with self.path.open("a", encoding="utf-8") as f:
                    f.write(json.dumps({"key": idempotency_key, "amount": str(amount),
                                        "currency": currency, "reference": reference}) + "\n")
                    f.flush()
                    os.fsync(f.fileno())
                time.sleep(self.delay_s)
        return reference


def read_statement(path: Path) -> list[dict[str, str]]:
    """The charges a ``RecordingGateway`` made (a line cut by a crash is ignored)."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        with contextlib.suppress(ValueError):
            out.append(json.loads(line))
    return out


def gateway_named(name: str, delay_s: float = 0.0, **stripe: Any) -> PaymentGateway:
    """``test``, ``recording:<file>`` (the test gateway keeping a statement) or ``stripe``
    (``stripe``: the keyword arguments of ``StripeGateway``)."""
    if name == "test":
        return TestGateway()
    if name.startswith("recording:"):
        return RecordingGateway(name.partition(":")[2], delay_s)
    if name == "stripe":
        from commcredits.adapters.stripe_gateway import StripeGateway
        return StripeGateway(**stripe)
    raise ValueError(f"unknown payment gateway {name!r} "
                     "(available: test, stripe, recording:<file>)")
