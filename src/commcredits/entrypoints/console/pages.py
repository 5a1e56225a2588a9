"""The web console: server-rendered pages for tenant admins (Jinja2, plain HTML forms).

A tenant admin (``POST /v1/tenants/{tid}/admins``) signs in at ``/login`` with email and
password (argon2id; throttled per client, per client and account, and per account or per
device cookie, counted in the database so that every process and instance sees them; the
form carries a login-CSRF token: ``sign_in``). The
session lives in the database (``console_sessions``: revocable, listed at
``/console/sessions``, "sign out everywhere"); the cookie is a signed random token, HttpOnly
and SameSite=Lax, and every form posts the session's CSRF token back. Pages only translate HTTP to
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

import hashlib
import hmac
import html
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import (
    HTMLResponse,
    RedirectResponse,
    Response,
)
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from itsdangerous import BadSignature, URLSafeTimedSerializer

from commcredits.adapters.db.uow import UnitOfWork
from commcredits.domain.access import TENANT_ROLES, Action, Principal, Role, authorize
from commcredits.domain.errors import DomainError
from commcredits.entrypoints.api.errors import STATUS
from commcredits.entrypoints.console.sign_in import (
    client_of,
    login_form,
    login_token_ok,
    sign_in_failed,
    sign_in_succeeded,
    sign_in_wait_s,
)
from commcredits.entrypoints.runtime import Runtime
from commcredits.services import access

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
    id: str = ""  # sha256 of the cookie's token

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


@dataclass(frozen=True, slots=True)
class Realm:
    """Where a kind of console session lives: its cookie, path and ``console_sessions.realm``
    (tenant admins at ``/``, operator admins at ``/operator``) and the salt its cookies are
    signed with."""

    name: str
    cookie: str
    path: str
    salt: str

    def serializer(self, request: Request) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(_runtime(request).settings.secret_key, salt=self.salt)

    def session_id(self, request: Request) -> str | None:
        """sha256 of the token in a validly signed cookie (what the sessions table holds)."""
        raw = request.cookies.get(self.cookie)
        if not raw:
            return None
        try:
            token = self.serializer(request).loads(raw, max_age=SESSION_MAX_AGE_S)
        except (BadSignature, TypeError, ValueError):
            return None
        if not isinstance(token, str):
            return None
        return hashlib.sha256(token.encode()).hexdigest()

    def live(self, request: Request, uow: UnitOfWork) -> Any:
        """The session row behind the request's cookie, if it is neither revoked nor old."""
        session_id = self.session_id(request)
        if session_id is None:
            return None
        row = uow.access.session(session_id, self.name)
        if row is None or row.revoked_at is not None or row.expires_at <= _wall_now():
            return None
        return row

    def start(self, request: Request, response: Response, uow: UnitOfWork,
              admin_id: str) -> None:
        token = secrets.token_urlsafe(32)
        now = _wall_now()
        uow.access.add_session(id=hashlib.sha256(token.encode()).hexdigest(), admin_id=admin_id,
                               csrf=secrets.token_urlsafe(24), client=_client(request),
                               created_at=now, realm=self.name,
                               expires_at=now + timedelta(seconds=SESSION_MAX_AGE_S))
        response.set_cookie(self.cookie, self.serializer(request).dumps(token),
                            max_age=SESSION_MAX_AGE_S, path=self.path, httponly=True,
                            samesite="lax", secure=request.url.scheme == "https")

    def end(self, request: Request, response: Response, *, admin_id: str | None = None) -> None:
        """Revoke the request's session (``admin_id``: every session of that admin) and
        forget the cookie."""
        session_id = self.session_id(request)
        if session_id is not None or admin_id is not None:
            with _runtime(request).db.uow() as uow:
                uow.access.revoke_sessions(_wall_now(), realm=self.name, admin_id=admin_id,
                                           session_id=None if admin_id else session_id)
                uow.commit()
        response.delete_cookie(self.cookie, path=self.path, httponly=True, samesite="lax")


TENANT = Realm("tenant", COOKIE, "/", "commcredits.console.session")


def _session(request: Request) -> Session | None:
    """The signed-in admin. Sessions live in the database: signing out (here or everywhere)
    ends them at once, on every process and instance; role and tenant are read afresh on
    every request, so an admin whose role changed or who was removed does not keep old
    rights."""
    with _runtime(request).db.uow(readonly=True) as uow:
        row = TENANT.live(request, uow)
        admin = uow.access.admin(row.admin_id) if row is not None else None
    if admin is None or Role(admin.role) not in TENANT_ROLES or not admin.tenant_id:
        return None
    return Session(Principal(admin.id, Role(admin.role), admin.tenant_id), admin.email,
                   row.csrf, row.id)


def _wall_now() -> datetime:
    # sessions expire by the wall clock, whatever the (manual) business clock says
    return datetime.now(UTC)


_client = client_of  # the client's address (sign_in.py: trusted proxies only)


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


def _login_page(request: Request, email: str = "", error: str | None = None,
                status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return login_form(request, lambda token: templates.TemplateResponse(
        request, "login.html", {"email": email, "error": error, "login_token": token},
        status_code=status, headers={**NO_STORE, **(headers or {})}))


FORM_EXPIRED = "The sign-in form expired or came from another site; please sign in again."


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> Response:
    """The console sign-in page (email + password of a tenant admin)."""
    if _session(request):
        return RedirectResponse("/console", status_code=303)
    return _login_page(request)


@router.post("/login", response_class=HTMLResponse)
def login(request: Request, email: str = Form(""), password: str = Form(""),
          login_token: str = Form("")) -> Response:
    """Check the form's token, then the credentials; on success start a session and go to
    ``/console``."""
    email = email.strip()
    if not login_token_ok(request, login_token):  # login CSRF: nobody is signed in
        return _login_page(request, email, FORM_EXPIRED, status=403)
    wait = sign_in_wait_s(request, email.lower())
    if wait:
        return _login_page(request, email, f"Too many failed sign-ins; try again in "
                                           f"{wait // 60 + 1} minutes.",
                           status=429, headers={"Retry-After": str(wait)})
    response = RedirectResponse("/console", status_code=303)
    db = _runtime(request).db
    with db.uow(readonly=True) as uow:  # the slow hash holds no write lock
        # an empty or unknown email costs the same hash work as a wrong password
        who, upgraded = access.authenticate_admin(uow, email, password)
    if who is not None and who.tenant_id is not None:
        with db.uow() as uow:
            if upgraded:
                access.upgrade_password(uow, who.id, upgraded)
            TENANT.start(request, response, uow, who.id)
            sign_in_succeeded(request, response, uow, email.lower())
            uow.commit()
    if who is None or who.tenant_id is None:
        sign_in_failed(request, email.lower())
        return _login_page(request, email, "Wrong email or password.")
    return response


@router.post("/logout")
def logout(request: Request, csrf: str = Form(""),
           everywhere: str = Form("")) -> RedirectResponse:
    """End this session (``everywhere=on``: every session of this admin) and forget the
    cookie; a session ended here stops working at once, wherever its cookie is."""
    response = _to_login()
    sess = _session(request)
    if sess is not None and not _csrf_ok(sess, csrf):
        return response
    TENANT.end(request, response,
               admin_id=sess.principal.id if sess is not None and everywhere == "on" else None)
    return response


@router.get("/console/sessions")
def sessions(request: Request) -> Response:
    """The signed-in admin's open sessions (where and when), with "sign out everywhere"."""
    sess = _session(request)
    if sess is None:
        return _to_login()
    with _runtime(request).db.uow(readonly=True) as uow:
        rows = uow.access.sessions(sess.principal.id)
    now = _wall_now()
    items = "".join(
        f"<li>{html.escape(r.client)}: signed in {r.created_at:%Y-%m-%d %H:%M} UTC"
        f"{' (this one)' if r.id == sess.id else ''}</li>"
        for r in rows if r.expires_at > now)
    page = (f"<!doctype html><title>Sessions</title><h1>Your sessions</h1><ul>{items}</ul>"
            f'<form method="post" action="/logout"><input type="hidden" name="csrf" '
            f'value="{html.escape(sess.csrf)}"><input type="hidden" name="everywhere" '
            f'value="on"><button>Sign out everywhere</button></form>')
    return HTMLResponse(page, headers=NO_STORE)


def install(app: FastAPI) -> None:
    from commcredits.entrypoints.console import (
        audit,
        billing,
        checkout,
        operator,
        operator_rerates,
        reports,
        spend,
        statements,
        users,
    )
    # HTML pages: not part of the API (the browser tests cover them)
    app.include_router(router, include_in_schema=False)
    for module in (billing, checkout, users, reports, spend, statements, audit, operator,
                   operator_rerates):
        app.include_router(module.router, include_in_schema=False)
    app.mount("/console/static", StaticFiles(directory=HERE / "static"), name="console-static")
