"""Console users and their licenses, as in the Microsoft 365 admin center: a searchable,
paged user list (``/console/users``), a user's page with a switch per product, its seats and
prerequisite errors next to the switch (``/console/users/{upn}``), and bulk assign/remove
for selected users or a CSV of UPNs with a result per user (``/console/users/bulk``).

License changes go through ``services.directory`` like the REST API, so the console accepts
exactly what the API accepts. A user's Save is one transaction: all the switches change, or
none (each refusal is shown next to its switch). Bulk changes commit per user.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import UploadFile

from commcredits.domain import licensing
from commcredits.domain.access import Action, authorize
from commcredits.domain.errors import DomainError
from commcredits.entrypoints.console.common import guard, render
from commcredits.entrypoints.console.pages import (
    Session,
    _error_page,
    _runtime,
    _session,
    _status,
    _to_login,
)
from commcredits.services import audit, directory
from commcredits.services.tenants import get_tenant

router = APIRouter(tags=["console"])
PAGE_SIZE = 50
MAX_BULK = 5000
# The names an admin knows from the Microsoft 365 admin center.
PRODUCT_NAMES = {
    licensing.PHONE_SYSTEM: "Teams Phone Standard",
    licensing.DOMESTIC_PLAN: "Domestic Calling Plan",
    licensing.INTERNATIONAL_PLAN: "Domestic and International Calling Plan",
    licensing.PAYG_PLAN: "Pay-As-You-Go Calling Plan",
    licensing.AUDIO_CONFERENCING: "Audio Conferencing",
    licensing.CREDITS: "Communications Credits",
    licensing.E5: "Microsoft 365 E5",
}
PRODUCTS = [licensing.PHONE_SYSTEM, licensing.DOMESTIC_PLAN, licensing.INTERNATIONAL_PLAN,
            licensing.PAYG_PLAN, licensing.AUDIO_CONFERENCING, licensing.CREDITS, licensing.E5]


def product_name(sku: str) -> str:
    return PRODUCT_NAMES.get(sku) or (licensing.CATALOG[sku].name
                                      if sku in licensing.CATALOG else sku)


def license_error(e: DomainError, sku: str, seats: dict[str, tuple[int, int]]) -> str:
    """A license refusal in the words of the admin center."""
    name = product_name(sku)
    if e.code == "prerequisite_missing":
        return ("Communications Credits needs Audio Conferencing, or Teams Phone Standard with "
                "a Calling Plan (Microsoft 365 E5 counts as both).")
    if e.code == "no_seats_available":
        qty = seats.get(sku, (0, 0))[0]
        return (f"All {qty} {name} licenses are assigned; buy more before assigning one."
                if qty else f"No {name} licenses bought yet; buy some first.")
    if e.code == "license_required_by":
        return (f"Communications Credits needs {name}: turn Communications Credits off "
                "as well, or keep this one.")
    return e.message


def _as_actor(uow: Any, sess: Session) -> None:
    uow.actor = audit.Actor.of(sess.principal, "console", sess.email)


# -- list ---------------------------------------------------------------------------------------
@router.get("/console/users", response_class=HTMLResponse)
def users(request: Request, q: str = "", page: str = "1") -> Response:
    """The tenant's users, searchable by UPN or name, :data:`PAGE_SIZE` a page."""
    sess = _session(request)
    if sess is None:
        return _to_login()
    try:
        n = max(1, int(page))
    except ValueError:
        n = 1
    text = q.strip()[:100]
    try:
        authorize(sess.principal, Action.READ, sess.tenant_id)
        with _runtime(request).db.uow(readonly=True) as uow:
            tenant = get_tenant(uow, sess.tenant_id)
            people, total = uow.directory.search(sess.tenant_id, text, (n - 1) * PAGE_SIZE,
                                                 PAGE_SIZE)
            seats = uow.directory.subscriptions(sess.tenant_id)
    except DomainError as e:
        return _error_page(request, sess, _status(e), "Not available", e.message)
    pages = max(1, -(-total // PAGE_SIZE))
    rows = [{"upn": u.upn, "display_name": u.display_name, "usage_location": u.usage_location,
             "phone_number": u.phone_number, "href": f"/console/users/{quote(u.upn)}",
             "licenses": [(sku, product_name(sku)) for sku in PRODUCTS + sorted(u.licenses)
                          if sku in u.licenses]} for u in people]
    rows = [{**r, "licenses": list(dict.fromkeys(r["licenses"]))} for r in rows]
    link = lambda k: f"/console/users?q={quote(text)}&page={k}"  # noqa: E731
    return render(request, sess, "users.html", tenant, users=rows, q=text, total=total,
                  page=n, pages=pages, prev=link(n - 1) if n > 1 else None,
                  next=link(n + 1) if n < pages else None,
                  products=[(s, product_name(s)) for s in PRODUCTS],
                  seats=[(product_name(s), qty, used) for s, qty, used in seats])


# -- one user -----------------------------------------------------------------------------------
def _seat_map(uow: Any, tid: str) -> dict[str, tuple[int, int]]:
    return {s: (qty, used) for s, qty, used in uow.directory.subscriptions(tid)}


def _user_page(request: Request, sess: Session, upn: str, *, checked: set[str] | None = None,
               errors: dict[str, str] | None = None, notice: str | None = None,
               status: int = 200) -> Response:
    try:
        authorize(sess.principal, Action.READ, sess.tenant_id)
        with _runtime(request).db.uow(readonly=True) as uow:
            tenant = get_tenant(uow, sess.tenant_id)
            user = directory.get_user(uow, sess.tenant_id, upn)
            seats = _seat_map(uow, sess.tenant_id)
    except DomainError as e:
        return _error_page(request, sess, _status(e), "Not available", e.message)
    on = checked if checked is not None else set(user.licenses)
    switches = []
    for sku in PRODUCTS:
        item = licensing.CATALOG[sku]
        qty, used = seats.get(sku, (0, 0))
        switches.append({"sku": sku, "name": product_name(sku), "on": sku in on,
                         "held": sku in user.licenses, "free": item.free_unlimited,
                         "qty": qty, "used": used, "error": (errors or {}).get(sku)})
    return render(request, sess, "user.html", tenant, user=user, switches=switches,
                  href=f"/console/users/{quote(user.upn)}", notice=notice,
                  errors=errors or {}, status=status)


@router.get("/console/users/{upn}", response_class=HTMLResponse)
def user_page(request: Request, upn: str, saved: str = "") -> Response:
    """A user: details and a switch per product (Licenses)."""
    sess = _session(request)
    if sess is None:
        return _to_login()
    return _user_page(request, sess, upn, notice="Licenses saved." if saved else None)


@router.post("/console/users/{upn}/licenses", response_class=HTMLResponse)
def save_licenses(request: Request, upn: str, csrf: str = Form(""),
                  licenses: list[str] = Form(default=[])) -> Response:
    """Turn the switches into assignments: all of them, or none with an error per switch."""
    sess, refused = guard(request, csrf, Action.USERS, "change licenses")
    if sess is None:
        return refused
    wanted = {s for s in licenses if s in licensing.CATALOG}
    errors: dict[str, str] = {}
    tid = sess.tenant_id
    try:
        with _runtime(request).db.uow() as uow:
            _as_actor(uow, sess)
            user = directory.get_user(uow, tid, upn)
            seats = _seat_map(uow, tid)
            # the credits license goes first when removing and last when adding, so its
            # prerequisites are checked against what the user will hold
            for sku in sorted(user.licenses - wanted, key=lambda s: s != licensing.CREDITS):
                try:
                    directory.remove_license(uow, tid, user.upn, sku)
                except DomainError as e:
                    errors[sku] = license_error(e, sku, seats)
            for sku in sorted(wanted - user.licenses, key=lambda s: s == licensing.CREDITS):
                try:
                    directory.assign_license(uow, tid, user.upn, sku)
                except DomainError as e:
                    errors[sku] = license_error(e, sku, seats)
            if not errors:
                uow.commit()
    except DomainError as e:
        return _error_page(request, sess, _status(e), "Not available", e.message)
    if errors:
        return _user_page(request, sess, upn, checked=wanted, errors=errors, status=409)
    return RedirectResponse(f"/console/users/{quote(upn)}?saved=1", status_code=303)


# -- bulk ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class BulkResult:
    upn: str
    outcome: str  # Assigned, Already assigned, Removed, Not assigned, Failed
    detail: str = ""


def upns_from_csv(data: bytes) -> list[str]:
    """The ``UserPrincipalName`` column of an admin center export (any case, BOM or not);
    a file with no such column is read as one UPN per line."""
    text = data.decode("utf-8-sig", errors="replace")
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        return []
    header = [h.strip().lower() for h in rows[0]]
    for name in ("userprincipalname", "upn", "user principal name"):
        if name in header:
            i = header.index(name)
            return [r[i].strip() for r in rows[1:] if len(r) > i and r[i].strip()]
    return [r[0].strip() for r in rows if r and "@" in r[0]]


def _bulk_one(request: Request, sess: Session, action: str, sku: str, upn: str,
              seats: dict[str, tuple[int, int]]) -> BulkResult:
    with _runtime(request).db.uow() as uow:
        _as_actor(uow, sess)
        try:
            if action == "assign":
                _, added = directory.assign_license(uow, sess.tenant_id, upn, sku)
                outcome = "Assigned" if added else "Already assigned"
            else:
                before = directory.get_user(uow, sess.tenant_id, upn).licenses
                directory.remove_license(uow, sess.tenant_id, upn, sku)
                outcome = "Removed" if sku in before else "Not assigned"
        except DomainError as e:
            detail = (f"No user {upn} in this organization." if e.code == "not_found"
                      else license_error(e, sku, seats))
            return BulkResult(upn, "Failed", detail)
        uow.commit()
    return BulkResult(upn, outcome)


@router.post("/console/users/bulk", response_class=HTMLResponse)
async def bulk(request: Request) -> Response:
    """Assign or remove one license for the selected users or the UPNs of a CSV file."""
    form = await request.form()
    sess, refused = guard(request, str(form.get("csrf", "")), Action.USERS, "change licenses")
    if sess is None:
        return refused
    action = str(form.get("action", ""))
    sku = str(form.get("sku", ""))
    upns = [str(u) for u in form.getlist("upn") if str(u).strip()]
    upload = form.get("file")
    if isinstance(upload, UploadFile) and upload.filename:
        upns += upns_from_csv(await upload.read())
    upns = list(dict.fromkeys(u.strip() for u in upns))
    errors: dict[str, str] = {}
    if action not in ("assign", "remove"):
        errors["action"] = "Choose Assign or Remove."
    if sku not in licensing.CATALOG:
        errors["sku"] = "Choose a license."
    if not upns:
        errors["users"] = ("Select users in the list, or upload a CSV file with a "
                           "UserPrincipalName column.")
    elif len(upns) > MAX_BULK:
        errors["users"] = f"At most {MAX_BULK} users at a time ({len(upns)} given)."
    with _runtime(request).db.uow(readonly=True) as uow:
        tenant = get_tenant(uow, sess.tenant_id)
        seats = _seat_map(uow, sess.tenant_id)
    if errors:
        return render(request, sess, "bulk.html", tenant, errors=errors, results=[],
                      action=action, sku=sku, status=422,
                      products=[(s, product_name(s)) for s in PRODUCTS])
    results = [_bulk_one(request, sess, action, sku, upn, seats) for upn in upns]
    failed = sum(r.outcome == "Failed" for r in results)
    return render(request, sess, "bulk.html", tenant, errors={}, results=results,
                  action=action, sku=sku, name=product_name(sku), failed=failed,
                  done=len(results) - failed,
                  products=[(s, product_name(s)) for s in PRODUCTS])
