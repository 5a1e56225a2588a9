"""The interfaces services need from the outside world; adapters implement them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from commcredits.domain.errors import DomainError, ErrorKind


@dataclass(frozen=True, slots=True)
class CardToken:
    """What the gateway gives back for a card. The only card data we ever store.
    ``fingerprint`` is the same for the same card number at the gateway (Stripe: within the
    account), never the number itself; ``None`` where the gateway gives none."""

    token: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    fingerprint: str | None = None  # the gateway's mark of the card number (Stripe's)


def gateway_unavailable(message: str) -> DomainError:
    """The gateway did not answer (a timeout, a connection error, its own failure): whether
    the money was taken is not known, so the payment attempt must stay pending (the webhook,
    a retry with the same idempotency key or the ``payments`` job settles it). 503."""
    return DomainError("payment_gateway_unavailable", message, ErrorKind.UNAVAILABLE)


class PaymentGateway(Protocol):
    """A card processor. ``charge`` must be idempotent per ``idempotency_key`` (Stripe is)."""

    name: str

    def tokenize(self, card_number: str, exp_month: int, exp_year: int) -> CardToken: ...

    def charge(self, card: CardToken, amount: Decimal, currency: str, *, idempotency_key: str,
               description: str, now: datetime) -> str:
        """Take the money; return the gateway's charge reference. Raises ``DomainError``
        ``payment_declined`` or ``card_expired`` (kind PAYMENT) when refused."""
        ...

    def verify(self, card: CardToken, *, now: datetime) -> None:
        """Check the card can pay without taking money (Stripe: a SetupIntent). Raises what
        ``charge`` would."""
        ...

    def refund(self, reference: str, amount: Decimal, currency: str, *,
               idempotency_key: str) -> str:
        """Give back ``amount`` of the charge ``reference`` (once per ``idempotency_key``);
        returns the refund's reference."""
        ...


class Mailer(Protocol):
    def send(self, to: str, subject: str, body: str) -> None: ...


class SwitchNotifier(Protocol):
    """Tells the switches to end a call now (a webhook, or whatever a switch listens on)."""

    def cut(self, call_id: str, tenant_id: str, reason: str) -> None:
        """Deliver one cut; raises ``OSError`` (or any exception) when it could not."""
        ...


@dataclass(frozen=True, slots=True)
class BusMessage:
    """A message for the event bus: its subject, body and dedupe id (``Nats-Msg-Id``)."""

    subject: str
    payload: bytes
    msg_id: str


class EventBus(Protocol):
    """Where domain events are published (NATS JetStream: ``adapters.nats_bus``)."""

    def publish(self, messages: Sequence[BusMessage]) -> int:
        """Store every message (raising if any could not be); returns how many were new,
        the others being duplicates of an id already stored."""
        ...
