"""Console users and their licenses (``/console/users``)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from commcredits.domain.access import Action, authorize
from commcredits.domain.errors import DomainError
from commcredits.domain.licensing import CATALOG
from commcredits.entrypoints.console.pages import (
    NO_STORE,
    ROLE_LABELS,
    _error_page,
    _runtime,
    _session,
    _status,
    _to_login,
    templates,
)
from commcredits.services.tenants import get_tenant

router = APIRouter(tags=["console"])

# -- users --------------------------------------------------------------------------------------
@router.get("/console/users", response_class=HTMLResponse)
def users(request: Request) -> Response:
    """The tenant's users with their licenses."""
    sess = _session(request)
    if sess is None:
        return _to_login()
    try:
        authorize(sess.principal, Action.READ, sess.tenant_id)
        with _runtime(request).db.uow() as uow:
            tenant = get_tenant(uow, sess.tenant_id)
            people = uow.directory.users(sess.tenant_id)
    except DomainError as e:
        return _error_page(request, sess, _status(e), "Not available", e.message)
    rows = [{"upn": u.upn, "display_name": u.display_name, "usage_location": u.usage_location,
             "phone_number": u.phone_number,
             "licenses": [(sku, CATALOG[sku].name if sku in CATALOG else sku)
                          for sku in sorted(u.licenses)]} for u in people]
    return templates.TemplateResponse(request, "users.html", {
        "sess": sess, "tenant": tenant, "role_label": ROLE_LABELS[sess.principal.role],
        "users": rows}, headers=NO_STORE)

