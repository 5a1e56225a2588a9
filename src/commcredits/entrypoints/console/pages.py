"""The web console: server-rendered pages for tenant admins (Jinja2, plain HTML forms).

A tenant admin (``POST /v1/tenants/{tid}/admins``) signs in at ``/login`` with email and
password. The session is a signed, timed cookie (itsdangerous, ``settings.secret_key``)
holding the admin's id, email, role, tenant and a CSRF token; it is HttpOnly and
SameSite=Lax, and every form posts the CSRF token back. Pages only translate HTTP to
service calls: reading goes through the same views as the REST API, so money is shown
exactly as the service's decimal strings. Roles are checked with ``domain.access.authorize``:
every role reads; only billing roles (global_admin, billing_admin) see and may post the
"Add funds" and auto-recharge forms.

This module holds the session, sign-in and the helpers every page uses; the pages live
by topic beside it: ``billing`` (credits, checkout, payment methods, orders), ``users``
(users, licenses, bulk), ``reports`` (usage reports, minute pools), ``spend`` (chart,
forecast), ``audit``, ``notices`` and ``operator`` (the operator console).
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import (
    HTMLResponse,
    RedirectResponse,
    Response,
)
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from itsdangerous import BadSignature, URLSafeTimedSerializer

from commcredits.domain.access import TENANT_ROLES, Action, Principal, Role, authorize
from commcredits.domain.errors import DomainError
from commcredits.entrypoints.api.errors import STATUS
from commcredits.entrypoints.runtime import Runtime
from commcredits.services.access import authenticate_admin

HERE = Path(__file__).parent
COOKIE = "cc_session"
SESSION_MAX_AGE_S = 12 * 3600
ROLE_LABELS = {Role.GLOBAL_ADMIN: "Global admin", Role.BILLING_ADMIN: "Billing admin",
               Role.USER_ADMIN: "User admin", Role.REPORTS_READER: "Reports reader"}
NO_STORE = {"Cache-Control": "no-store"}

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


def install(app: FastAPI) -> None:
    from commcredits.entrypoints.console import (
        audit,
        billing,
        checkout,
        operator,
        reports,
        spend,
        users,
    )
    app.state.login_throttle = LoginThrottle()
    app.include_router(router)
    for module in (billing, checkout, users, reports, spend, audit, operator):
        app.include_router(module.router)
    app.mount("/console/static", StaticFiles(directory=HERE / "static"), name="console-static")
