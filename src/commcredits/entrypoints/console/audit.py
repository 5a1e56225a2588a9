"""The audit log in the console (``/console/audit``, global admins): who did what, when, in
which role and from where, with before → after; paged, and downloadable as CSV."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from commcredits.domain.access import Action
from commcredits.entrypoints.console.common import read_page, render
from commcredits.entrypoints.console.pages import NO_STORE, Session
from commcredits.services import audit

if TYPE_CHECKING:
    from commcredits.adapters.db.uow import UnitOfWork
    from commcredits.domain.tenancy import Tenant

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
    def build(uow: UnitOfWork, sess: Session, tenant: Tenant) -> Response:
        rows = audit.entries(uow, tenant.id, PAGE + 1, before or None)
        shown = [{**r, "what": ACTIONS.get(r["action"], r["action"]),
                  "before_text": _show(r["before"]), "after_text": _show(r["after"])}
                 for r in rows[:PAGE]]
        return render(request, sess, "audit.html", tenant, entries=shown,
                      older=f"/console/audit?before={rows[PAGE - 1]['id']}"
                      if len(rows) > PAGE else None)
    return read_page(request, Action.ADMINS, build)


@router.get("/console/audit.csv")
def audit_csv(request: Request) -> Response:
    def build(uow: UnitOfWork, sess: Session, tenant: Tenant) -> Response:
        return StreamingResponse(iter(list(audit.csv_lines(uow, tenant.id))),
                                 media_type="text/csv", headers={
            **NO_STORE, "Content-Disposition": 'attachment; filename="audit-log.csv"'})
    return read_page(request, Action.ADMINS, build)
