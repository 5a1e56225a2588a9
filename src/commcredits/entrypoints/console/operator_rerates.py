"""The operator console's re-rates page (``/operator/rerates``): a form (one tenant or
all, the period, a deck) computes a dry run; the page shows its diff per tenant and per call
with a CSV download, and an Apply button posts the corrections. Both go through
``services.rerate``, as the REST API and the CLI do, and the apply is audited per tenant."""

from __future__ import annotations

import csv
import io

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from commcredits.domain.errors import DomainError
from commcredits.entrypoints.console.common import sentence
from commcredits.entrypoints.console.operator import (
    OperatorSession,
    _actor,
    _guard,
    _page,
    _session,
    _to_login,
)
from commcredits.entrypoints.console.pages import NO_STORE, _runtime
from commcredits.services import audit, rerate

router = APIRouter(tags=["operator console"])


def _rerates_page(request: Request, sess: OperatorSession, *, run_id: str = "",
                  form: dict[str, str] | None = None, error: str | None = None,
                  notice: str | None = None, status: int = 200) -> Response:
    with _runtime(request).db.uow(readonly=True) as uow:
        tenants = [(t.id, t.name) for t in uow.tenants.list()]
        runs = [rerate.view(r) for r in uow.rerates.runs(20)]
        run = None
        if run_id:
            try:
                run = rerate.get(uow, run_id)
            except DomainError as e:
                error = sentence(e.message)
    names = dict(tenants)
    return _page(request, sess, "operator_rerates.html", status=status, active="rerates",
                 tenants=tenants, names=names, runs=runs, run=run, error=error, notice=notice,
                 form=form or {"tenant_id": "", "from": "", "to": "", "deck": ""})


@router.get("/operator/rerates", response_class=HTMLResponse)
def rerates(request: Request, run: str = "", applied: str = "") -> Response:
    sess = _session(request)
    if sess is None:
        return _to_login()
    return _rerates_page(request, sess, run_id=run[:60],
                         notice="Corrections posted." if applied else None)


@router.post("/operator/rerates", response_class=HTMLResponse)
def dry_run(request: Request, csrf: str = Form(""), tenant_id: str = Form(""),
            from_: str = Form("", alias="from"), to: str = Form(""),
            deck: str = Form("")) -> Response:
    sess, refused = _guard(request, csrf)
    if refused:
        return refused
    assert sess is not None
    form = {"tenant_id": tenant_id.strip(), "from": from_.strip(), "to": to.strip(),
            "deck": deck.strip()}
    try:
        scope = rerate.parse({"tenant_id": form["tenant_id"] or None, "from": form["from"],
                              "to": form["to"], "deck": form["deck"].upper() or None})
        with _runtime(request).db.uow() as uow:
            _actor(uow, sess)
            run = rerate.compute(uow, scope, sess.email)
            uow.commit()
    except DomainError as e:
        return _rerates_page(request, sess, form=form, error=sentence(e.message), status=422)
    return RedirectResponse(f"/operator/rerates?run={run['id']}", status_code=303)


@router.post("/operator/rerates/{run_id}/apply", response_class=HTMLResponse)
def apply(request: Request, run_id: str, csrf: str = Form("")) -> Response:
    sess, refused = _guard(request, csrf)
    if refused:
        return refused
    assert sess is not None
    try:
        done = rerate.apply(_runtime(request).db, run_id, sess.email,
                            audit.Actor.of(sess.principal, "console", sess.email))
    except DomainError as e:
        return _rerates_page(request, sess, run_id=run_id, error=sentence(e.message),
                             status=404)
    failed = [a for a in done["applied"] if a["result"] not in {"applied", "already_applied"}]
    if failed:
        return _rerates_page(request, sess, run_id=run_id, status=409, error=" ".join(
            f"{a['tenant_id']}: {a['result']}." for a in failed))
    return RedirectResponse(f"/operator/rerates?run={run_id}&applied=1", status_code=303)


@router.get("/operator/rerates/{run_id}.csv")
def download(request: Request, run_id: str) -> Response:
    sess = _session(request)
    if sess is None:
        return _to_login()
    with _runtime(request).db.uow(readonly=True) as uow:
        try:
            run = rerate.get(uow, run_id)
        except DomainError as e:
            return _rerates_page(request, sess, error=sentence(e.message), status=404)
    buf = io.StringIO()
    csv.writer(buf).writerows(rerate.csv_rows(run))
    return Response(buf.getvalue(), media_type="text/csv", headers={
        **NO_STORE, "Content-Disposition": f'attachment; filename="rerate-{run_id}.csv"'})
