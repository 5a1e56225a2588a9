"""Console monthly statements (``/console/statements``): the month's lines as the API gives
them (``services.statements``), month by month, with PDF, CSV and JSON downloads
(``/console/statements/download``). Every tenant role may read them. A bad month answers
**422** with the page and its error next to the month form."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from commcredits.domain import statements as rules
from commcredits.domain.access import Action, authorize
from commcredits.domain.errors import DomainError, invalid
from commcredits.domain.pools import month_of
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
from commcredits.entrypoints.console.reports import _shift_month
from commcredits.services import statements
from commcredits.services.tenants import get_tenant

router = APIRouter(tags=["console"])
_MEDIA = {"pdf": "application/pdf", "csv": "text/csv; charset=utf-8",
          "json": "application/json"}


@router.get("/console/statements", response_class=HTMLResponse)
def statement_page(request: Request, month: str = "") -> Response:
    """One month's statement (default: the last month that ended)."""
    sess = _session(request)
    if sess is None:
        return _to_login()
    error: DomainError | None = None
    view: dict[str, Any] | None = None
    try:
        authorize(sess.principal, Action.READ, sess.tenant_id)
        with _runtime(request).db.uow(readonly=True) as uow:
            tenant = get_tenant(uow, sess.tenant_id)
            this_month = month_of(uow.now)
            shown = month.strip() or _shift_month(this_month, -1)
            try:
                view = statements.statement(uow, sess.tenant_id, shown)
            except DomainError as e:
                if e.code != "validation_error":
                    raise
                error = e
    except DomainError as e:
        return _error_page(request, sess, _status(e), "Not available", e.message)
    nav = {} if error else {"previous": _shift_month(shown, -1), "next": _shift_month(shown, 1)}
    return templates.TemplateResponse(request, "statements.html", {
        "sess": sess, "tenant": tenant, "role_label": ROLE_LABELS[sess.principal.role],
        "month": shown, "this_month": this_month, "nav": nav, "error": error, "s": view,
        "lines": rules.lines(view) if view else [],
        "downloads": [(f, f"/console/statements/download?month={shown}&format={f}")
                      for f in statements.FORMATS[::-1]] if view else [],
    }, status_code=_status(error) if error else 200, headers=NO_STORE)


@router.get("/console/statements/download")
def statement_download(request: Request, month: str = "", format: str = "pdf") -> Response:
    sess = _session(request)
    if sess is None:
        return _to_login()
    try:
        authorize(sess.principal, Action.READ, sess.tenant_id)
        fmt_ = format.strip().lower()
        if fmt_ not in statements.FORMATS:
            raise invalid("validation_error", f"format must be pdf, csv or json (got "
                                              f"{format[:20]!r})")
        with _runtime(request).db.uow(readonly=True) as uow:
            view = statements.statement(uow, sess.tenant_id, month.strip())
    except DomainError as e:
        return _error_page(request, sess, _status(e), "Cannot download", e.message)
    if fmt_ == "pdf":
        body = statements.to_pdf(view)
    elif fmt_ == "csv":
        body = statements.to_csv(view).encode()
    else:
        body = (json.dumps(view, ensure_ascii=False, indent=2) + "\n").encode()
    name = statements.file_name(view, fmt_)
    return Response(body, media_type=_MEDIA[fmt_], headers={
        **NO_STORE, "Content-Disposition": f'attachment; filename="{name}"'})
