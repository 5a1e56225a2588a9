"""The audit log in the console (``/console/audit``, global admins): who did what, when, in
which role and from where, with before → after; paged, and downloadable as CSV."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from commcredits.domain.access import Action, authorize
from commcredits.domain.errors import DomainError
from commcredits.entrypoints.console.common import render
from commcredits.entrypoints.console.pages import (
    NO_STORE,
    _error_page,
    _runtime,
    _session,
    _status,
    _to_login,
)
from commcredits.services import audit
from commcredits.services.tenants import get_tenant

router = APIRouter(tags=["console"])
PAGE = 100
ACTIONS = {
    "order.place": "Placed an order", "auto_recharge.set": "Changed auto-recharge",
    "license.assign": "Assigned a license", "license.remove": "Removed a license",
    "billing_contacts.set": "Changed billing contacts", "payment_method.add":
    "Added a payment method", "payment_method.remove": "Removed a payment method",
    "payment_method.default": "Chose the default payment method", "seats.add": "Added seats",
    "user.create": "Created a user", "admin.add": "Added a console admin",
    "api_key.create": "Created an API key", "tenant.create": "Created the organization",
    "tenant.commerce": "Changed the commerce model", "call_policy.set": "Changed call guardrails",
}


def _show(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "none"
    if isinstance(value, dict):
        return "; ".join(f"{k.replace('_', ' ')}: {v}" for k, v in sorted(value.items())
                         if v is not None) or "—"
    return str(value)


@router.get("/console/audit", response_class=HTMLResponse)
def audit_page(request: Request, before: str = "") -> Response:
    sess = _session(request)
    if sess is None:
        return _to_login()
    try:
        authorize(sess.principal, Action.ADMINS, sess.tenant_id)
        with _runtime(request).db.uow(readonly=True) as uow:
            tenant = get_tenant(uow, sess.tenant_id)
            rows = audit.entries(uow, sess.tenant_id, PAGE + 1, before or None)
    except DomainError as e:
        return _error_page(request, sess, _status(e), "Not available", e.message)
    more = len(rows) > PAGE
    rows = rows[:PAGE]
    shown = [{**r, "what": ACTIONS.get(r["action"], r["action"]),
              "before_text": _show(r["before"]), "after_text": _show(r["after"])} for r in rows]
    return render(request, sess, "audit.html", tenant, entries=shown,
                  older=f"/console/audit?before={rows[-1]['id']}" if more else None)


@router.get("/console/audit.csv")
def audit_csv(request: Request) -> Response:
    sess = _session(request)
    if sess is None:
        return _to_login()
    try:
        authorize(sess.principal, Action.ADMINS, sess.tenant_id)
        with _runtime(request).db.uow(readonly=True) as uow:
            lines = list(audit.csv_lines(uow, sess.tenant_id))
    except DomainError as e:
        return _error_page(request, sess, _status(e), "Not available", e.message)
    return StreamingResponse(iter(lines), media_type="text/csv", headers={
        **NO_STORE, "Content-Disposition": 'attachment; filename="audit-log.csv"'})


