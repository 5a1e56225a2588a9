"""The web console: server-rendered pages for tenant admins (Jinja2, plain HTML forms).

A tenant admin (``POST /v1/tenants/{tid}/admins``) signs in at ``/login`` with email and
password. The session is a signed, timed cookie (itsdangerous, ``settings.secret_key``)
holding the admin's id, email, role, tenant and a CSRF token; it is HttpOnly and
SameSite=Lax, and every form posts the CSRF token back. Pages only translate HTTP to
service calls: reading goes through the same views as the REST API, so money is shown
exactly as the service's decimal strings. Roles are checked with ``domain.access.authorize``:
every role reads; only billing roles (global_admin, billing_admin) see and may post the
"Add funds" and auto-recharge forms.

Reports (``/console/reports``, ``/console/reports/export``, ``/console/pools``) reuse
``services.reports`` and ``services.pools`` as the REST API does. The page shows the first
:data:`REPORT_PAGE_ROWS` rows; the CSV and Excel downloads have them all. A bad period or
month (from after to, more than a year, a malformed date) answers **422** with the page
itself, its error box holding the service's message, so the form can be fixed in place; a
bad download link answers the 422 error page.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Form, Query, Request
from fastapi.responses import (
    HTMLResponse,
    RedirectResponse,
    Response,
)
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from itsdangerous import BadSignature, URLSafeTimedSerializer
from pydantic import ValidationError

from commcredits.domain.access import TENANT_ROLES, Action, Principal, Role, authorize
from commcredits.domain.errors import DomainError, ErrorKind, invalid
from commcredits.domain.licensing import CATALOG
from commcredits.domain.pools import month_of
from commcredits.entrypoints.api.deps import run_recharges
from commcredits.entrypoints.api.errors import STATUS, validation_error
from commcredits.entrypoints.api.schemas import OrderIn
from commcredits.entrypoints.downloads import report_file
from commcredits.entrypoints.runtime import Runtime
from commcredits.services import credits, notify, payments, pools
from commcredits.services import reports as rep
from commcredits.services.access import authenticate_admin
from commcredits.services.tenants import get_tenant

HERE = Path(__file__).parent
COOKIE = "cc_session"
SESSION_MAX_AGE_S = 12 * 3600
ROLE_LABELS = {Role.GLOBAL_ADMIN: "Global admin", Role.BILLING_ADMIN: "Billing admin",
               Role.USER_ADMIN: "User admin", Role.REPORTS_READER: "Reports reader"}
NOTICES = {"auto_recharge": "Auto-recharge settings saved.",
           "duplicate": "That form was already submitted; nothing was charged twice."}
NO_STORE = {"Cache-Control": "no-store"}
REPORT_KINDS = {"pstn": rep.PSTN, "sms": rep.SMS}
REPORT_LABELS = {"pstn": "PSTN usage", "sms": "SMS usage"}
REPORT_PAGE_ROWS = 500  # rows shown on the page; the downloads have them all
# The columns the page shows unless asked for all (``cols=all``); the downloads have them all.
KEY_COLUMNS = {
    "pstn": ("Start Time", "Call ID", "UPN", "Call Type", "Destination Dialed",
             "Destination Number", "Domestic/International", "Duration Seconds",
             "Connection Fee", "Charge", "Currency"),
    "sms": ("Sent Time", "Message ID", "UPN", "Message Type", "Destination",
            "Destination Number", "Domestic/International", "Segments", "Charge", "Currency"),
}
EXPORT_FORMATS = ("csv", "xlsx")

templates = Jinja2Templates(directory=HERE / "templates")


def _when(value: str | None) -> str:
    """``2025-01-31T12:00:00+00:00`` → ``2025-01-31 12:00 UTC``."""
    if not value:
        return ""
    try:
        return datetime.fromisoformat(value).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return value


templates.env.filters["when"] = _when

router = APIRouter(tags=["console"], include_in_schema=True)


# -- session ------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Session:
    principal: Principal
    email: str
    csrf: str

    @property
    def tenant_id(self) -> str:
        assert self.principal.tenant_id is not None
        return self.principal.tenant_id

    def may(self, action: Action) -> bool:
        try:
            authorize(self.principal, action, self.tenant_id)
        except DomainError:
            return False
        return True


def _runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def _serializer(request: Request) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(_runtime(request).settings.secret_key,
                                  salt="commcredits.console.session")


def _session(request: Request) -> Session | None:
    raw = request.cookies.get(COOKIE)
    if not raw:
        return None
    try:
        data = _serializer(request).loads(raw, max_age=SESSION_MAX_AGE_S)
        role = Role(data["role"])
        if role not in TENANT_ROLES or not data["tid"]:
            return None
    except (BadSignature, KeyError, TypeError, ValueError):
        return None
    # the cookie proves who signed in; the role and tenant come from the database on every
    # request, so an admin whose role changed or who was removed does not keep old rights
    with _runtime(request).db.uow(readonly=True) as uow:
        admin = uow.access.admin(str(data["id"]))
    if admin is None:
        return None
    return Session(Principal(admin.id, Role(admin.role), admin.tenant_id), admin.email,
                   str(data["csrf"]))


def _start_session(request: Request, response: Response, who: Principal, email: str) -> None:
    value = _serializer(request).dumps({"id": who.id, "role": who.role.value,
                                        "tid": who.tenant_id, "email": email,
                                        "csrf": secrets.token_urlsafe(24)})
    response.set_cookie(COOKIE, value, max_age=SESSION_MAX_AGE_S, path="/", httponly=True,
                        samesite="lax", secure=request.url.scheme == "https")


def _csrf_ok(sess: Session, token: str) -> bool:
    return hmac.compare_digest(sess.csrf.encode(), token.encode())


def _status(err: DomainError) -> int:
    """The same HTTP status the REST API gives this error."""
    return STATUS.get(err.kind, 400)


def _to_login() -> RedirectResponse:
    return RedirectResponse("/login", status_code=303)


def _error_page(request: Request, sess: Session | None, status: int, title: str,
                message: str) -> HTMLResponse:
    return templates.TemplateResponse(request, "error.html", {
        "sess": sess, "title": title, "message": message,
        "role_label": ROLE_LABELS.get(sess.principal.role) if sess else None,
    }, status_code=status, headers=NO_STORE)


# -- sign in / out ------------------------------------------------------------------------------
@router.get("/", include_in_schema=False)
def home(request: Request) -> RedirectResponse:
    return RedirectResponse("/console" if _session(request) else "/login", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> Response:
    """The console sign-in page (email + password of a tenant admin)."""
    if _session(request):
        return RedirectResponse("/console", status_code=303)
    return templates.TemplateResponse(request, "login.html", {"email": "", "error": None},
                                      headers=NO_STORE)


class LoginThrottle:
    """At most ``limit`` failed sign-ins per email within ``window_s``; then a pause until
    the oldest failure leaves the window. In-process: each instance counts its own."""

    def __init__(self, limit: int = 5, window_s: float = 900.0) -> None:
        self.limit = limit
        self.window_s = window_s
        self._failures: dict[str, list[float]] = {}

    def _recent(self, key: str) -> list[float]:
        now = time.monotonic()
        recent = [t for t in self._failures.get(key, []) if now - t < self.window_s]
        self._failures[key] = recent
        return recent

    def wait_s(self, key: str) -> int:
        recent = self._recent(key)
        if len(recent) < self.limit:
            return 0
        return int(self.window_s - (time.monotonic() - recent[0])) + 1

    def failed(self, key: str) -> None:
        if len(self._failures) > 100_000:
            self._failures.clear()
        self._recent(key).append(time.monotonic())

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)


def _throttle(request: Request) -> LoginThrottle:
    throttle: LoginThrottle = request.app.state.login_throttle
    return throttle


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, email: str = Form(""), password: str = Form("")) -> Response:
    """Check the credentials; on success set the session cookie and go to ``/console``."""
    email = email.strip()
    throttle = _throttle(request)
    wait = throttle.wait_s(email.lower())
    if wait:
        return templates.TemplateResponse(request, "login.html", {
            "email": email, "error": f"Too many failed sign-ins for this email; try again in "
                                     f"{wait // 60 + 1} minutes."},
            status_code=429, headers=NO_STORE)
    who = None
    if email and password:
        with _runtime(request).db.uow(readonly=True) as uow:
            who = authenticate_admin(uow, email, password)
    if who is None or who.tenant_id is None:
        throttle.failed(email.lower())
        return templates.TemplateResponse(request, "login.html", {
            "email": email, "error": "Wrong email or password."}, headers=NO_STORE)
    throttle.succeeded(email.lower())
    response = RedirectResponse("/console", status_code=303)
    _start_session(request, response, who, email)
    return response


@router.post("/logout")
def logout(request: Request, csrf: str = Form("")) -> RedirectResponse:
    """End the session (forget the cookie) and go back to ``/login``."""
    response = _to_login()
    sess = _session(request)
    if sess is None or _csrf_ok(sess, csrf):
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax")
    return response


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
        try:  # exactly the API's validation of an order
            OrderIn.model_validate({**form, "po_number": form["po_number"] or None})
        except ValidationError as invalid_form:
            raise validation_error(invalid_form.errors()) from None
        # the one-time form token is the payment's idempotency key: a double submit pays once
        order, replayed = payments.place_order(
            rt.db, rt.gateway, payments.Limits(rt.settings.min_order, rt.settings.max_order),
            sess.tenant_id, form["amount"], payment_method_id, form["po_number"] or None,
            client_key=f"console:{token[:100]}" if token else None,
            request_hash=hashlib.sha256(json.dumps(form, sort_keys=True).encode()).hexdigest())
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
            credits.set_auto_recharge(uow, rt.settings.min_order, sess.tenant_id, body,
                                      rt.settings.max_order, rt.gateway)
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


# -- reports ------------------------------------------------------------------------------------
_FROM = Query("", alias="from")


def _qs(**params: object) -> str:
    """``kind=pstn&days=7``: the non-empty parameters, URL-encoded (``from_`` → ``from``)."""
    return urlencode({k.rstrip("_"): str(v) for k, v in params.items()
                      if v is not None and v != ""})


def _report_kind(kind: str) -> rep.Report:
    report = REPORT_KINDS.get(kind.strip().lower() or "pstn")
    if report is None:
        raise invalid("validation_error", f"kind must be pstn or sms (got {kind[:20]!r})")
    return report


def _period_query(days: str, from_: str, to: str, period: rep.Period | None) -> dict[str, str]:
    """The period part of the page's links: ``days`` for the last 7/28 days, else the range."""
    if period is None:  # a bad period: keep what was asked
        return {"days": days, "from_": from_, "to": to}
    if from_.strip() or to.strip():
        return {"from_": period.first.isoformat(), "to": period.last.isoformat()}
    return {"days": str(period.days)}


@router.get("/console/reports", response_class=HTMLResponse)
def reports(request: Request, kind: str = "pstn", days: str = "", from_: str = _FROM,
            to: str = "", cols: str = "") -> Response:
    """PSTN or SMS usage for the last 7 or 28 days or a custom range, with CSV/Excel links.
    The table has the key columns, or every column of the export with ``cols=all``."""
    sess = _session(request)
    if sess is None:
        return _to_login()
    kind_key = kind.strip().lower() or "pstn"
    error: DomainError | None = None
    period: rep.Period | None = None
    shown: list[rep.Row] = []
    total = 0
    try:
        authorize(sess.principal, Action.READ, sess.tenant_id)
        with _runtime(request).db.uow() as uow:
            tenant = get_tenant(uow, sess.tenant_id)
            try:
                report = _report_kind(kind_key)
                period = rep.parse_period(uow.now.date(), days=days, from_=from_, to=to)
            except DomainError as e:
                if kind_key not in REPORT_KINDS:
                    kind_key, report = "pstn", rep.PSTN
                error = e
            if period is not None:
                total = rep.count(uow, report, sess.tenant_id, period)
                rows = rep.rows(uow, report, sess.tenant_id, period)
                try:
                    shown = list(islice(rows, REPORT_PAGE_ROWS))
                finally:
                    rows.close()
    except DomainError as e:
        return _error_page(request, sess, _status(e), "Not available", e.message)
    pq = _period_query(days, from_, to, period)
    all_cols = cols.strip().lower() == "all"
    keep = {"cols": "all"} if all_cols else {}
    names = report.columns if all_cols else KEY_COLUMNS[kind_key]
    where = [report.columns.index(n) for n in names]
    numeric = report.money | report.integers
    return templates.TemplateResponse(request, "reports.html", {
        "sess": sess, "tenant": tenant, "role_label": ROLE_LABELS[sess.principal.role],
        "kind": kind_key, "kinds": [(k, REPORT_LABELS[k], "?" + _qs(kind=k, **pq, **keep))
                                    for k in REPORT_KINDS],
        "columns": names, "numeric": [n in numeric for n in names],
        "rows": [[row[i] for i in where] for row in shown],
        "all_cols": all_cols, "n_columns": len(report.columns),
        "cols_toggle": "?" + _qs(kind=kind_key, **pq, cols="" if all_cols else "all"),
        "period": period, "error": error, "total": total,
        "mode": "custom" if from_.strip() or to.strip() else (days.strip()
                                                              or str(rep.DEFAULT_DAYS)),
        "last_days": [(n, "?" + _qs(kind=kind_key, days=n, **keep)) for n in rep.DAYS_CHOICES],
        "form": {"from": period.first.isoformat() if period else from_.strip(),
                 "to": period.last.isoformat() if period else to.strip()},
        "downloads": [(f, f"/console/reports/export?{_qs(kind=kind_key, format=f, **pq)}")
                      for f in EXPORT_FORMATS] if period else [],
    }, status_code=_status(error) if error else 200, headers=NO_STORE)


@router.get("/console/reports/export")
def reports_export(request: Request, kind: str = "pstn", format: str = "csv",
                   days: str = "", from_: str = _FROM, to: str = "") -> Response:
    """The whole report as a CSV (streamed) or Excel (.xlsx) attachment."""
    sess = _session(request)
    if sess is None:
        return _to_login()
    tid = sess.tenant_id
    try:  # everything is checked before streaming starts: no error can follow the headers
        authorize(sess.principal, Action.READ, tid)
        report = _report_kind(kind)
        fmt_ = format.strip().lower()
        if fmt_ not in EXPORT_FORMATS:
            raise invalid("validation_error", f"format must be csv or xlsx (got {format[:20]!r})")
        db = _runtime(request).db
        with db.uow() as uow:
            rep.check(uow, tid)
            period = rep.parse_period(uow.now.date(), days=days, from_=from_, to=to)
    except DomainError as e:
        return _error_page(request, sess, _status(e), "Cannot export", e.message)
    rows = rep.stream(db, report, tid, period)
    name = rep.file_name(report, tid, period, fmt_)
    return report_file(report, rows, fmt_, name, headers=NO_STORE)


def _shift_month(month: str, delta: int) -> str:
    n = int(month[:4]) * 12 + int(month[5:]) - 1 + delta
    return f"{n // 12:04d}-{n % 12 + 1:02d}"


def _percent(used: int, total: int) -> str:
    """Share of the pool used, ``"0.1"``, ``"25"``, ``"100"`` (one decimal place at most)."""
    if total <= 0:
        return "100" if used > 0 else "0"
    share = min(100.0, round(used * 100 / total, 1))
    return f"{share:g}"


@router.get("/console/pools", response_class=HTMLResponse)
def minute_pools(request: Request, month: str = "") -> Response:
    """The minute pools the tenant's licenses give it: minutes total, used and left."""
    sess = _session(request)
    if sess is None:
        return _to_login()
    error: DomainError | None = None
    rows: list[dict[str, Any]] = []
    try:
        authorize(sess.principal, Action.READ, sess.tenant_id)
        with _runtime(request).db.uow() as uow:
            tenant = get_tenant(uow, sess.tenant_id)
            this_month = month_of(uow.now)
            try:
                rows = pools.report(uow, sess.tenant_id, month.strip() or None)
            except DomainError as e:
                if e.kind is not ErrorKind.INVALID:
                    raise
                error = e
    except DomainError as e:
        return _error_page(request, sess, _status(e), "Not available", e.message)
    shown = month.strip() or this_month
    for r in rows:
        r["percent"] = _percent(r["minutes_used"], r["minutes_total"])
    nav = {} if error else {"previous": _shift_month(shown, -1), "next": _shift_month(shown, 1)}
    return templates.TemplateResponse(request, "pools.html", {
        "sess": sess, "tenant": tenant, "role_label": ROLE_LABELS[sess.principal.role],
        "pools": rows, "month": shown, "this_month": this_month, "nav": nav, "error": error,
    }, status_code=_status(error) if error else 200, headers=NO_STORE)


def install(app: FastAPI) -> None:
    app.state.login_throttle = LoginThrottle()
    app.include_router(router, include_in_schema=False)  # HTML pages: not part of the API
    app.mount("/console/static", StaticFiles(directory=HERE / "static"), name="console-static")
