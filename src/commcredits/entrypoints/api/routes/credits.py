"""Credits: payment methods, orders, balance and lots, auto-recharge, ledger, notifications."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse

from commcredits.adapters.db.uow import UnitOfWork
from commcredits.domain.access import Action, Principal, authorize
from commcredits.domain.errors import invalid
from commcredits.entrypoints.api.deps import (
    caller,
    idempotency_key,
    read,
    request_fingerprint,
    runtime,
    write,
)
from commcredits.entrypoints.api.schemas import AutoRechargeIn, OrderIn, PaymentMethodIn
from commcredits.entrypoints.runtime import Runtime
from commcredits.services import audit, card_setup, credits, notify, payments
from commcredits.services.tenants import get_tenant

router = APIRouter(prefix="/v1/tenants/{tid}", tags=["credits"])


@router.post("/payment-methods", status_code=201)
def add_payment_method(tid: str, body: PaymentMethodIn, request: Request,
                       who: Principal = Depends(caller)) -> JSONResponse:
    """A card (tokenized by the gateway; only token, brand, last4 and expiry are kept) or an
    Enterprise Agreement number. A card is checked before it is saved: a number that fails
    the Luhn check or an expiry month that has passed is 422 `validation_error`. The same
    card again (test gateway: brand, last4 and expiry; Stripe: the card's fingerprint and
    expiry, through any SetupIntent) answers the entry the tenant already has (201, same
    `id`). With the Stripe gateway a card comes as `setup_intent_id`
    (see `POST .../payment-methods/card-setups`); a `card_number` is refused there
    (`card_number_not_accepted`)."""
    authorize(who, Action.BILLING, tid)
    rt = runtime(request)
    gateway = rt.gateway
    if body.type == "card" and body.setup_intent_id:  # saved by the gateway, read back once
        view, _ = card_setup.finish(rt.db, gateway, tid, body.setup_intent_id)
        return JSONResponse(view, 201)

    def work(uow: UnitOfWork, _: str | None) -> dict[str, Any]:
        if body.type == "card":
            if not body.card_number or body.exp_month is None or body.exp_year is None:
                raise invalid("validation_error",
                              "a card needs card_number, exp_month and exp_year")
            return credits.add_card(uow, gateway, tid, body.card_number, body.exp_month,
                                    body.exp_year)
        if not body.agreement_number:
            raise invalid("validation_error", "an enterprise agreement needs agreement_number")
        return credits.add_agreement(uow, tid, body.agreement_number)
    return write(request, who, work, body, 201)


@router.get("/payment-methods")
def list_payment_methods(tid: str, request: Request, who: Principal = Depends(caller)) -> Any:
    authorize(who, Action.READ, tid)

    def work(uow: UnitOfWork) -> list[dict[str, Any]]:
        get_tenant(uow, tid)
        return [credits.payment_method_view(r) for r in uow.credits.payment_methods(tid)]
    return read(request, work)


@router.post("/credits/orders", status_code=201)
def place_order(tid: str, body: OrderIn, request: Request,
                who: Principal = Depends(caller)) -> JSONResponse:
    """Buy credits: one lot per order, expiring 12 months later. Optionally sets auto-recharge
    in the same step. Errors: payment_declined, card_expired (402),
    not_available_for_commerce_model, not_available_in_country (409),
    amount_below_minimum (422)."""
    authorize(who, Action.BILLING, tid)
    rt = runtime(request)
    ar = body.auto_recharge.model_dump() if body.auto_recharge else None
    # the payment attempt carries the Idempotency-Key (per tenant): a retry after a crash
    # resumes the same attempt, and the card is charged at most once
    view, replayed = payments.place_order(
        rt.db, rt.gateway, order_limits(rt), tid, body.amount, body.payment_method_id,
        body.po_number, ar, client_key=idempotency_key(request),
        request_hash=request_fingerprint(request, body), actor=audit.Actor.of(who, "api"))
    return JSONResponse(view, 201,
                        headers={"Idempotent-Replayed": "true"} if replayed else None)


def order_limits(rt: Runtime) -> payments.Limits:
    return payments.Limits(rt.settings.min_order, rt.settings.max_order)


@router.get("/credits/orders")
def list_orders(tid: str, request: Request, who: Principal = Depends(caller)) -> Any:
    authorize(who, Action.READ, tid)

    def work(uow: UnitOfWork) -> list[dict[str, Any]]:
        get_tenant(uow, tid)
        return [credits.order_view(r) for r in uow.credits.orders(tid)]
    return read(request, work)


@router.get("/credits")
def get_credits(tid: str, request: Request, who: Principal = Depends(caller)) -> Any:
    """Balance, reserved, available, lots (FIFO order) and auto-recharge settings."""
    authorize(who, Action.READ, tid)
    return read(request, lambda uow: credits.credits_view(uow, tid))


@router.get("/credits/forecast")
def forecast(tid: str, request: Request,
             days: int = Query(28, ge=1, le=366, description="days of history to use"),
             who: Principal = Depends(caller)) -> Any:
    """Spend per day, burn rate, runout forecast and a recommended auto-recharge."""
    authorize(who, Action.READ, tid)
    min_order = runtime(request).settings.min_order
    return read(request, lambda uow: credits.forecast_view(uow, tid, min_order, days))


@router.put("/credits/auto-recharge")
def set_auto_recharge(tid: str, body: AutoRechargeIn, request: Request,
                      who: Principal = Depends(caller)) -> JSONResponse:
    """Recharge with ``recharge_amount`` when the balance falls below ``trigger_amount``."""
    authorize(who, Action.BILLING, tid)
    rt = runtime(request)
    return write(request, who, lambda uow, _: credits.set_auto_recharge(
        uow, rt.settings.min_order, tid, body.model_dump(), rt.settings.max_order, rt.gateway),
        body)


@router.get("/credits/transactions")
def transactions(tid: str, request: Request, who: Principal = Depends(caller)) -> Any:
    """The ledger, oldest first: every movement with its signed amount and balance after."""
    authorize(who, Action.READ, tid)
    return read(request, lambda uow: credits.transactions_view(uow, tid))


@router.get("/notifications")
def notifications(tid: str, request: Request, who: Principal = Depends(caller)) -> Any:
    authorize(who, Action.READ, tid)
    return read(request, lambda uow: notify.notifications_view(uow, tid))
