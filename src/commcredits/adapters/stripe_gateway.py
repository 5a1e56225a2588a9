"""The Stripe gateway (``COMMCREDITS_PAYMENT_GATEWAY=stripe``), on the official ``stripe``
library.

* **Saving a card** never shows the service the card number: the console asks for a
  SetupIntent (:meth:`StripeGateway.begin_setup`, ``usage=off_session`` on the tenant's
  Stripe Customer), the browser confirms it with Stripe.js and Stripe's own card element,
  and the service reads back the PaymentMethod (:meth:`finish_setup`): brand, last4, expiry
  and the card's ``fingerprint`` (the same for the same number within the Stripe account:
  the same card saved twice is one entry). The stored token is ``<customer>/<payment
  method>``. :meth:`tokenize` (a raw card number) is refused.
* **Charging** is a PaymentIntent confirmed at once, ``off_session`` (auto-recharges run with
  nobody at the keyboard; orders reuse the same saved card), with the idempotency key
  ``commcredits-<attempt id>``: a retry of the same attempt, after a timeout or a crash, gets
  Stripe's first answer and never charges twice. A card that needs 3-D Secure cannot be
  authenticated off-session: that is the refusal ``authentication_required`` (402), shown to
  the admin like a decline.
* **Not hearing back** (a timeout, a connection reset) is ``payment_gateway_unavailable``:
  the attempt stays ``pending``; the webhook (``payment_intent.succeeded`` / ``…failed``,
  :func:`commcredits.services.payments.settle_reported`), a retry with the same key, or the
  ``payments`` job settles it later.
* **Refunds** (``refund``) for money taken that no lot holds, keyed by the attempt too.
* **Webhooks** are verified with the signing secret (``stripe.Webhook.construct_event``).

``api_base`` points the library at another server (tests: a local fake of the endpoints
used here, ``tests/payments/stripe_fake.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import stripe

from commcredits.domain import cards
from commcredits.domain.errors import DomainError, ErrorKind, invalid, payment
from commcredits.domain.money import places
from commcredits.services.ports import CardToken, gateway_unavailable

DECLINES = {"expired_card": ("card_expired", "the card has expired"),
            "authentication_required": (
                "authentication_required",
                "the bank asks for 3-D Secure authentication, which a charge made without "
                "the cardholder cannot give: use another card or ask the bank to allow it")}


@dataclass(frozen=True, slots=True)
class Setup:
    """A SetupIntent the browser confirms with Stripe.js."""
    id: str
    client_secret: str
    customer: str


class StripeGateway:
    name = "stripe"

    def __init__(self, secret_key: str, *, webhook_secret: str | None = None,
                 api_base: str | None = None, timeout_s: float = 20.0,
                 max_retries: int = 2) -> None:
        if not secret_key:
            raise ValueError("the stripe gateway needs COMMCREDITS_STRIPE_SECRET_KEY")
        self.webhook_secret = webhook_secret
        self.client = stripe.StripeClient(
            secret_key, base_addresses={"api": api_base} if api_base else None,
            http_client=stripe.RequestsClient(timeout=timeout_s),
            max_network_retries=max_retries)

    # -- cards ------------------------------------------------------------------------------
    def tokenize(self, card_number: str, exp_month: int, exp_year: int) -> CardToken:
        raise invalid("card_number_not_accepted",
                      "with the Stripe gateway a card is added through Stripe's own card form "
                      "(a SetupIntent), never as a card number sent to this service")

    def begin_setup(self, tenant_id: str, customer: str | None) -> Setup:
        """A SetupIntent for one more card of ``tenant_id`` (on its Stripe Customer, made
        now when it has none)."""
        with _answers():
            if customer is None:
                customer = self.client.v1.customers.create(params={
                    "metadata": {"tenant_id": tenant_id}},
                    options={"idempotency_key": f"commcredits-customer-{tenant_id}"}).id
            intent = self.client.v1.setup_intents.create(params={
                "customer": customer, "usage": "off_session", "payment_method_types": ["card"],
                "metadata": {"tenant_id": tenant_id}})
        assert intent.client_secret is not None
        return Setup(intent.id, intent.client_secret, customer)

    def finish_setup(self, setup_intent_id: str, tenant_id: str) -> CardToken:
        """The card a confirmed SetupIntent saved (refused unless it succeeded for this
        tenant)."""
        with _answers():
            intent = self.client.v1.setup_intents.retrieve(
                setup_intent_id, params={"expand": ["payment_method"]})
        metadata = intent.metadata.to_dict() if intent.metadata else {}
        if metadata.get("tenant_id") != tenant_id:
            raise invalid("validation_error", "this card setup belongs to another tenant")
        if intent.status != "succeeded" or intent.payment_method is None:
            raise payment("card_not_saved", f"the card was not saved (Stripe: {intent.status})")
        pm: Any = intent.payment_method
        card = pm.card
        fingerprint = getattr(card, "fingerprint", None)
        return CardToken(f"{intent.customer}/{pm.id}", str(card.brand), str(card.last4),
                         int(card.exp_month), int(card.exp_year),
                         str(fingerprint) if fingerprint else None)

    def verify(self, card: CardToken, *, now: datetime) -> None:
        """Saved through a SetupIntent, the card was checked then; what can change is its
        expiry (and which gateway it belongs to)."""
        _parts(card)
        cards.check_not_expired(card.exp_month, card.exp_year, now)

    # -- money ------------------------------------------------------------------------------
    def charge(self, card: CardToken, amount: Decimal, currency: str, *, idempotency_key: str,
               description: str, now: datetime) -> str:
        customer, pm = _parts(card)
        cards.check_not_expired(card.exp_month, card.exp_year, now)
        with _answers():
            intent = self.client.v1.payment_intents.create(params={
                "amount": minor_units(amount, currency), "currency": currency.lower(),
                "customer": customer, "payment_method": pm, "off_session": True,
                "confirm": True, "description": description,
                "metadata": {"attempt_id": idempotency_key}},
                options={"idempotency_key": f"commcredits-{idempotency_key}"})
        if intent.status == "succeeded":
            return str(intent.id)
        if intent.status == "requires_action":
            raise payment(*DECLINES["authentication_required"])
        if intent.status == "processing":  # the webhook tells the outcome
            raise gateway_unavailable(f"payment {intent.id} is still processing")
        raise payment("payment_declined", f"the card was declined (Stripe: {intent.status})")

    def refund(self, reference: str, amount: Decimal, currency: str, *,
               idempotency_key: str) -> str:
        """Give back ``amount`` of the payment ``reference``; returns the refund's id."""
        with _answers():
            refund = self.client.v1.refunds.create(params={
                "payment_intent": reference, "amount": minor_units(amount, currency),
                "metadata": {"attempt_id": idempotency_key}},
                options={"idempotency_key": f"commcredits-refund-{idempotency_key}"})
        return str(refund.id)

    # -- webhooks ---------------------------------------------------------------------------
    @staticmethod
    def refusal(error: dict[str, Any]) -> DomainError:
        return refusal(error)

    def event(self, payload: bytes, signature: str) -> dict[str, Any]:
        """The verified event (raises ``invalid_signature`` otherwise)."""
        if not self.webhook_secret:
            raise DomainError("webhook_not_configured",
                              "COMMCREDITS_STRIPE_WEBHOOK_SECRET is not set", ErrorKind.CONFLICT)
        try:
            event = stripe.Webhook.construct_event(payload, signature, self.webhook_secret)
        except (ValueError, stripe.SignatureVerificationError):
            raise invalid("invalid_signature", "the Stripe-Signature header does not verify "
                          "this body with the webhook signing secret") from None
        return event.to_dict()


def refusal(error: dict[str, Any]) -> DomainError:
    """A PaymentIntent's ``last_payment_error`` as the service's refusal."""
    mapped = DECLINES.get(str(error.get("code") or "")) or \
        DECLINES.get(str(error.get("decline_code") or ""))
    return payment(*mapped) if mapped else payment("payment_declined",
                                                   "the card was declined by the issuer")


def minor_units(amount: Decimal, currency: str) -> int:
    """``12.50`` USD → 1250 (exact: an amount with more places than the currency has is a
    bug upstream, never rounded here)."""
    scaled = amount.scaleb(places(currency))
    if scaled != scaled.to_integral_value():
        raise invalid("validation_error", f"{amount} has more decimals than {currency} allows")
    return int(scaled)


def _parts(card: CardToken) -> tuple[str, str]:
    customer, _, pm = card.token.partition("/")
    if not customer.startswith("cus_") or not pm.startswith("pm_"):
        raise invalid("validation_error", "this payment method belongs to another gateway")
    return customer, pm


class _answers:
    """Stripe's errors as the service's: a refusal of the card is a ``DomainError`` (402),
    no answer at all is ``payment_gateway_unavailable`` (503: the attempt stays pending)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: Any) -> bool:
        if exc is None:
            return False
        if isinstance(exc, stripe.CardError):
            code = exc.code or ""
            decline = exc.error.decline_code if exc.error else None
            mapped = DECLINES.get(code) or DECLINES.get(decline or "")
            if mapped:
                raise payment(*mapped) from None
            raise payment("payment_declined", "the card was declined by the issuer") from None
        if isinstance(exc, stripe.InvalidRequestError):
            raise invalid("validation_error", f"Stripe refused the request: "
                          f"{exc.user_message or exc.code or 'invalid request'}") from None
        if isinstance(exc, stripe.StripeError):  # no answer, its failure, our keys refused
            raise gateway_unavailable(f"Stripe did not answer ({type(exc).__name__}); "
                                      "retry shortly") from exc
        return False
