"""Console credits page (``/console``): balance, lots, auto-recharge, ledger; the "Add funds"
and auto-recharge forms (billing roles only; every form posts the session's CSRF token)."""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from commcredits.domain.access import Action, authorize
from commcredits.domain.errors import DomainError
from commcredits.domain.money import parse_amount
from commcredits.entrypoints.api.deps import run_recharges
from commcredits.entrypoints.api.errors import validation_error
from commcredits.entrypoints.api.schemas import OrderIn
from commcredits.entrypoints.console.common import (
    field_of,
    guard,
    labelled,
    locale_for,
    money,
    render,
)
from commcredits.entrypoints.console.pages import (
    ROLE_LABELS,
    Session,
    _error_page,
    _runtime,
    _session,
    _status,
    _to_login,
)
from commcredits.services import audit, credits, notify, payments
from commcredits.services.tenants import get_tenant

router = APIRouter(tags=["console"])
LEDGER_ROWS = 200  # newest transactions shown
# the auto-recharge form's labels, which its errors name (not recharge_amount)
AUTO_RECHARGE_LABELS = {"recharge_amount": "Recharge with",
                        "trigger_amount": "When balance falls below",
                        "payment_method_id": "Pay with", "enabled": "Auto-recharge"}
NOTICES = {"auto_recharge": "Auto-recharge settings saved.",
           "duplicate": "That form was already submitted; nothing was charged twice."}

# -- credits ------------------------------------------------------------------------------------
def _console_page(request: Request, sess: Session, *, error: DomainError | None = None,
                  form: dict[str, str] | None = None, notice: str | None = None,
                  added_order: str | None = None, status: int = 200,
                  errors: dict[str, str] | None = None) -> HTMLResponse:
    tid = sess.tenant_id
    authorize(sess.principal, Action.READ, tid)
    with _runtime(request).db.uow() as uow:
        tenant = get_tenant(uow, tid)
        view = credits.credits_view(uow, tid)
        ledger = list(reversed(credits.transactions_view(uow, tid)))[:LEDGER_ROWS]
        methods = [credits.payment_method_view(r) for r in uow.credits.payment_methods(tid)]
        if added_order:
            row = uow.credits.order(tid, added_order)
            if row is not None:
                order = credits.order_view(row)
                amount = money(order["amount"], order["currency"], locale_for(tenant.country))
                notice = f"Added {amount} (order {order['id']})."
    where = None
    if error is not None:  # the field the error goes next to
        where = ("ar" if any(k.startswith("ar_") for k in (form or {}))
                 else "amount" if "amount" in error.message or error.code.startswith("amount")
                 else "po_number" if "po_number" in error.message else "payment_method_id")
    return render(request, sess, "console.html", tenant, status=status, error_at=where,
                  credits=view, ledger=ledger, methods=methods,
                  methods_by_id={m["id"]: m for m in methods}, error=error, notice=notice,
                  errors=errors or {},
                  form=form or {}, order_token=secrets.token_urlsafe(16))


@router.get("/console", response_class=HTMLResponse)
def console(request: Request, added: str = "", notice: str = "") -> Response:
    """The tenant's credits: balance, lots (FIFO), auto-recharge, ledger, notifications."""
    sess = _session(request)
    if sess is None:
        return _to_login()
    try:
        return _console_page(request, sess, added_order=added or None,
                             notice=NOTICES.get(notice))
    except DomainError as e:
        return _error_page(request, sess, _status(e), "Not available", e.message)


def place_order(request: Request, sess: Session, fields: dict[str, str], token: str,
                amount: str, payment_method_id: str, po_number: str | None,
                auto_recharge: dict[str, Any] | None = None) -> tuple[dict[str, Any], bool]:
    """Pay for an order placed in the console. The one-time form token is the payment's
    idempotency key: a double submit pays once (and answers the first order)."""
    rt = _runtime(request)
    return payments.place_order(
        rt.db, rt.gateway, payments.Limits(rt.settings.min_order, rt.settings.max_order),
        sess.tenant_id, amount, payment_method_id, po_number, auto_recharge,
        client_key=f"console:{token[:100]}" if token else None,
        request_hash=hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest(),
        actor=audit.Actor.of(sess.principal, "console", sess.email))


@router.post("/console/orders", response_class=HTMLResponse)
def add_funds(request: Request, amount: str = Form(""), payment_method_id: str = Form(""),
              po_number: str = Form(""), csrf: str = Form(""),
              token: str = Form("")) -> Response:
    """The "Add funds" form: a one-time order (billing roles only)."""
    sess, refused = guard(request, csrf, Action.BILLING, "change billing")
    if sess is None:
        return refused
    form = {"amount": amount.strip(), "payment_method_id": payment_method_id,
            "po_number": po_number.strip()}
    try:
        try:  # exactly the API's validation of an order
            OrderIn.model_validate({**form, "po_number": form["po_number"] or None})
        except ValidationError as invalid_form:
            raise validation_error(invalid_form.errors()) from None
        order, replayed = place_order(request, sess, form, token, form["amount"],
                                      payment_method_id, form["po_number"] or None)
    except DomainError as e:
        try:
            return _console_page(request, sess, error=e, form=form, status=_status(e))
        except DomainError as e2:
            return _error_page(request, sess, _status(e2), "Not available", e2.message)
    if replayed:
        return RedirectResponse("/console?notice=duplicate", status_code=303)
    return RedirectResponse(f"/console?added={order['id']}", status_code=303)


@router.post("/console/auto-recharge", response_class=HTMLResponse)
def auto_recharge(request: Request, enabled: str = Form(""), recharge_amount: str = Form(""),
                  trigger_amount: str = Form(""), payment_method_id: str = Form(""),
                  csrf: str = Form(""), back: str = Form("")) -> Response:
    """Change or turn off auto-recharge (billing roles only)."""
    sess, refused = guard(request, csrf, Action.BILLING, "change billing")
    if sess is None:
        return refused
    rt = _runtime(request)
    body: dict[str, Any] = {
        "enabled": enabled == "on",
        "recharge_amount": recharge_amount.strip() or None,
        "trigger_amount": trigger_amount.strip() or None,
        "payment_method_id": payment_method_id or None,
    }
    errors: dict[str, str] = {}
    status = 422
    try:
        with rt.db.uow() as uow:
            uow.actor = audit.Actor.of(sess.principal, "console", sess.email)
            currency = get_tenant(uow, sess.tenant_id).currency
            for field in ("recharge_amount", "trigger_amount"):  # each amount on its own
                try:
                    if body[field] is not None:
                        parse_amount(body[field], currency, field=field,
                                     maximum=rt.settings.max_order)
                except DomainError as e:
                    errors[field] = labelled(e.message, AUTO_RECHARGE_LABELS)
            if not errors:
                credits.set_auto_recharge(uow, rt.settings.min_order, sess.tenant_id, body,
                                          rt.settings.max_order, rt.gateway)
                uow.commit()
            started = sorted(uow.recharges_requested)
    except DomainError as e:
        errors[field_of(e, tuple(AUTO_RECHARGE_LABELS), "ar")] = labelled(
            e.message, AUTO_RECHARGE_LABELS)
        status = _status(e)
    if errors:
        form = {f"ar_{k}": ("on" if v is True else v or "") for k, v in body.items()}
        try:
            return _console_page(request, sess, errors=errors, form=form, status=status)
        except DomainError as e2:
            return _error_page(request, sess, _status(e2), "Not available", e2.message)
    run_recharges(_runtime(request), started)
    if back == "spend":  # the spend page's "Apply recommendation"
        return RedirectResponse("/console/spend?applied=1", status_code=303)
    return RedirectResponse("/console?notice=auto_recharge", status_code=303)



# -- notifications ------------------------------------------------------------------------------
@router.get("/console/notifications", response_class=HTMLResponse)
def notifications(request: Request) -> Response:
    """Who gets the billing emails (billing contacts, and admins by role), what was sent and
    what failed."""
    sess = _session(request)
    if sess is None:
        return _to_login()
    try:
        authorize(sess.principal, Action.READ, sess.tenant_id)
        with _runtime(request).db.uow(readonly=True) as uow:
            tenant = get_tenant(uow, sess.tenant_id)
            notes = notify.notifications_view(uow, sess.tenant_id)[:500]
            contacts = uow.directory.billing_contacts(sess.tenant_id)
            admins = uow.access.admins_of(sess.tenant_id)
    except DomainError as e:
        return _error_page(request, sess, _status(e), "Not available", e.message)
    by_role: dict[str, list[str]] = {}
    for email, role in admins:
        by_role.setdefault(ROLE_LABELS.get(role, role), []).append(email)
    failed = [n for n in notes if n["status"] not in ("sent", "pending")]
    return render(request, sess, "notifications.html", tenant, notifications=notes,
                  contacts=contacts, admins=sorted(by_role.items()), failed=len(failed),
                  no_mailer=_runtime(request).mailer is None)
