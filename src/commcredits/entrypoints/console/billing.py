"""Console credits page (``/console``): balance, lots, auto-recharge, ledger; the "Add funds"
and auto-recharge forms (billing roles only; every form posts the session's CSRF token)."""

from __future__ import annotations

import hashlib
import json
import secrets
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from commcredits.adapters.db.uow import UnitOfWork
from commcredits.domain.access import Action, authorize
from commcredits.domain.errors import DomainError
from commcredits.entrypoints.api.deps import run_recharges
from commcredits.entrypoints.console.pages import (
    NO_STORE,
    ROLE_LABELS,
    Session,
    _csrf_ok,
    _error_page,
    _runtime,
    _session,
    _status,
    _to_login,
    templates,
)
from commcredits.services import credits, notify
from commcredits.services.tenants import get_tenant

router = APIRouter(tags=["console"])
NOTICES = {"auto_recharge": "Auto-recharge settings saved.",
           "duplicate": "That form was already submitted; nothing was charged twice."}

# -- credits ------------------------------------------------------------------------------------
def _console_page(request: Request, sess: Session, *, error: DomainError | None = None,
                  form: dict[str, str] | None = None, notice: str | None = None,
                  added_order: str | None = None, status: int = 200) -> HTMLResponse:
    tid = sess.tenant_id
    authorize(sess.principal, Action.READ, tid)
    with _runtime(request).db.uow() as uow:
        tenant = get_tenant(uow, tid)
        view = credits.credits_view(uow, tid)
        ledger = list(reversed(credits.transactions_view(uow, tid)))
        notes = notify.notifications_view(uow, tid)
        methods = [credits.payment_method_view(r) for r in uow.credits.payment_methods(tid)]
        if added_order:
            row = uow.credits.order(tid, added_order)
            if row is not None:
                order = credits.order_view(row)
                notice = f"Added {order['amount']} {order['currency']} (order {order['id']})."
    return templates.TemplateResponse(request, "console.html", {
        "sess": sess, "tenant": tenant, "role_label": ROLE_LABELS[sess.principal.role],
        "credits": view, "ledger": ledger, "notifications": notes,
        "methods": methods, "methods_by_id": {m["id"]: m for m in methods},
        "can_bill": sess.may(Action.BILLING), "error": error, "notice": notice,
        "form": form or {}, "order_token": secrets.token_urlsafe(16),
    }, status_code=status, headers=NO_STORE)


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


def _guard_billing(request: Request, sess: Session | None, csrf: str) -> Response | None:
    """None when ``sess`` may post a billing form, else the response to send."""
    if sess is None:
        return _to_login()
    if not _csrf_ok(sess, csrf):
        return _error_page(request, sess, 403, "Form expired",
                           "The form was stale or not sent from this console; reload the page "
                           "and try again.")
    if not sess.may(Action.BILLING):
        return _error_page(request, sess, 403, "Not allowed",
                           f"The {ROLE_LABELS[sess.principal.role]} role cannot change billing.")
    return None


def _claim_form(uow: UnitOfWork, sess: Session, token: str, fields: dict[str, str]) -> bool:
    """Claim a one-time form token so a double submit never pays twice. False if reused."""
    if not token:
        return True
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()
    return uow.access.claim_idempotency_key(sess.principal.id, f"console:{token[:100]}",
                                            digest, uow.now)


@router.post("/console/orders", response_class=HTMLResponse)
def add_funds(request: Request, amount: str = Form(""), payment_method_id: str = Form(""),
              po_number: str = Form(""), csrf: str = Form(""),
              token: str = Form("")) -> Response:
    """The "Add funds" form: a one-time order (billing roles only)."""
    sess = _session(request)
    refused = _guard_billing(request, sess, csrf)
    if refused is not None:
        return refused
    assert sess is not None
    rt = _runtime(request)
    form = {"amount": amount.strip(), "payment_method_id": payment_method_id,
            "po_number": po_number.strip()}
    try:
        with rt.db.uow() as uow:
            if not _claim_form(uow, sess, token, form):
                return RedirectResponse("/console?notice=duplicate", status_code=303)
            order = credits.place_order(
                uow, rt.gateway, rt.settings.min_order, sess.tenant_id, form["amount"],
                payment_method_id, form["po_number"] or None,
                payment_key=f"{sess.principal.id}:console:{token}" if token else None)
            if token:
                uow.access.complete_idempotency_key(sess.principal.id, f"console:{token[:100]}",
                                                    303, json.dumps(order))
            uow.commit()
            started = sorted(uow.recharges_requested)
    except DomainError as e:
        try:
            return _console_page(request, sess, error=e, form=form, status=_status(e))
        except DomainError as e2:
            return _error_page(request, sess, _status(e2), "Not available", e2.message)
    run_recharges(request, started)
    return RedirectResponse(f"/console?added={order['id']}", status_code=303)


@router.post("/console/auto-recharge", response_class=HTMLResponse)
def auto_recharge(request: Request, enabled: str = Form(""), recharge_amount: str = Form(""),
                  trigger_amount: str = Form(""), payment_method_id: str = Form(""),
                  csrf: str = Form("")) -> Response:
    """Change or turn off auto-recharge (billing roles only)."""
    sess = _session(request)
    refused = _guard_billing(request, sess, csrf)
    if refused is not None:
        return refused
    assert sess is not None
    rt = _runtime(request)
    body: dict[str, Any] = {
        "enabled": enabled == "on",
        "recharge_amount": recharge_amount.strip() or None,
        "trigger_amount": trigger_amount.strip() or None,
        "payment_method_id": payment_method_id or None,
    }
    try:
        with rt.db.uow() as uow:
            credits.set_auto_recharge(uow, rt.settings.min_order, sess.tenant_id, body)
            uow.commit()
            started = sorted(uow.recharges_requested)
    except DomainError as e:
        form = {f"ar_{k}": ("on" if v is True else v or "") for k, v in body.items()}
        try:
            return _console_page(request, sess, error=e, form=form, status=_status(e))
        except DomainError as e2:
            return _error_page(request, sess, _status(e2), "Not available", e2.message)
    run_recharges(request, started)
    return RedirectResponse("/console?notice=auto_recharge", status_code=303)

