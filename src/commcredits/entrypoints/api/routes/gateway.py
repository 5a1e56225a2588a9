"""The card gateway's side: its webhook, card setups (the browser gives the card to the
gateway, never to us), and refunds of money taken that no lot holds."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from commcredits.domain.access import Action, Principal, authorize
from commcredits.domain.errors import not_found
from commcredits.entrypoints.api.deps import caller, runtime
from commcredits.entrypoints.runtime import Runtime
from commcredits.services import audit, card_setup, payment_corrections, payments

router = APIRouter(tags=["payments"])


@router.post("/v1/tenants/{tid}/payment-methods/card-setups", status_code=201)
def begin_card_setup(tid: str, request: Request, who: Principal = Depends(caller)) -> Any:
    """Start saving a card with the Stripe gateway: `{setup_intent_id, client_secret,
    publishable_key}`. The browser confirms the SetupIntent with Stripe.js (the card number
    goes to Stripe only); then `POST .../payment-methods {type: "card", setup_intent_id}`
    stores the card (token, brand, last4, expiry). Other gateways: 409
    `card_setup_not_supported`."""
    authorize(who, Action.BILLING, tid)
    rt = runtime(request)
    setup = card_setup.begin(rt.db, rt.gateway, tid)
    return {"setup_intent_id": setup.id, "client_secret": setup.client_secret,
            "publishable_key": rt.settings.stripe_publishable_key}


@router.post("/v1/webhooks/stripe")
async def stripe_webhook(request: Request) -> Any:
    """Stripe's events, verified with the signing secret (`Stripe-Signature`; 422
    `invalid_signature` otherwise): `payment_intent.succeeded` and
    `payment_intent.payment_failed` settle a payment the service did not hear back about
    (a timeout, a crash); `setup_intent.succeeded` stores a card whose browser closed before
    it said so. Repeated events change nothing. Answers `{received, type, outcome}`."""
    rt = runtime(request)
    if rt.gateway.name != "stripe":
        raise not_found("webhook", "stripe")
    payload = await request.body()
    signature = request.headers.get("stripe-signature", "")
    return await run_in_threadpool(_handle, rt, payload, signature)


def _handle(rt: Runtime, payload: bytes, signature: str) -> dict[str, Any]:
    gateway: Any = rt.gateway
    event = gateway.event(payload, signature)  # 422 invalid_signature unless verified
    kind, obj = str(event.get("type")), (event.get("data") or {}).get("object") or {}
    meta = obj.get("metadata") or {}
    outcome = "ignored"
    if kind in ("payment_intent.succeeded", "payment_intent.payment_failed") \
            and meta.get("attempt_id"):
        reported: payments.Outcome = payments.Paid(str(obj["id"])) \
            if kind == "payment_intent.succeeded" \
            else payments.Refused(gateway.refusal(obj.get("last_payment_error") or {}))
        outcome = payment_corrections.settle_reported(rt.db, str(meta["attempt_id"]), reported)
    elif kind == "setup_intent.succeeded" and meta.get("tenant_id"):
        _, new = card_setup.finish(rt.db, gateway, str(meta["tenant_id"]), str(obj["id"]))
        outcome = "card_saved" if new else "already_saved"
    return {"received": True, "type": kind, "outcome": outcome}


@router.post("/v1/payment-attempts/{attempt_id}/refund")
def refund(attempt_id: str, request: Request, who: Principal = Depends(caller)) -> Any:
    """Operator: refund a card payment the gateway took but that never became credits
    (status `charged`, listed by `commcredits payments reconcile`). Answers the attempt
    (`status: "refunded"`, `refund_reference`); a repeat refunds nothing twice. 409
    `not_refundable` for any other status."""
    authorize(who, Action.OPERATE)
    rt = runtime(request)
    row = payment_corrections.refund_attempt(rt.db, rt.gateway, attempt_id,
                                             audit.Actor.of(who, "api"))
    return attempt_view(row)


def attempt_view(row: Any) -> dict[str, Any]:
    from commcredits.domain.money import fmt
    return {"id": row.id, "tenant_id": row.tenant_id, "status": row.status,
            "amount": fmt(row.amount, row.currency), "currency": row.currency,
            "gateway_reference": row.gateway_reference,
            "refund_reference": row.refund_reference}
