"""What guards the two sign-in forms (``/login``, ``/operator/login``) before a password is
looked at: where the request comes from, the browser's device cookie, and the form's token.

* **The client's address** is the connection's peer; ``X-Forwarded-For`` counts only when
  that peer is one of ``COMMCREDITS_TRUSTED_PROXIES`` (``api.app`` rewrites the address then,
  none by default), so a client cannot pose as many addresses to escape its limits.
* **Device cookies** (OWASP, "Slow down online guessing attacks with device cookies"): a
  successful sign-in leaves ``cc_device`` in the browser, signed with the secret key, binding
  a hash of the account to a random nonce (a few accounts per browser, newest first).
  A sign-in that presents a valid one for its account is not held by the account-wide limit
  (a distributed guess cannot lock the owner out) but by a limit of its own device
  (``services.access.SignInLimits``); the per-address limits apply to everyone.
* **Login CSRF**: the sign-in page sets ``cc_login``, a random pre-session token, and puts
  its HMAC (keyed by the secret key) in the form; ``POST`` must send both, so another site
  cannot sign a browser into an account of its choosing (signed double-submit cookie).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable
from datetime import UTC, datetime

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from commcredits.adapters.db.uow import UnitOfWork
from commcredits.entrypoints.runtime import Runtime
from commcredits.services import access

DEVICE_COOKIE = "cc_device"
DEVICE_MAX_AGE_S = 180 * 24 * 3600
DEVICES_PER_BROWSER = 5  # accounts remembered by one browser
LOGIN_COOKIE = "cc_login"
LOGIN_MAX_AGE_S = 2 * 3600


def _runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


def _now() -> datetime:
    return datetime.now(UTC)  # by the wall clock, whatever the (manual) business clock says


def client_of(request: Request) -> str:
    """The client's address (a trusted proxy's ``X-Forwarded-For`` already applied)."""
    return (request.client.host if request.client else "unknown")[:100]


# -- device cookies -----------------------------------------------------------------------------
def _devices_serializer(request: Request) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(_runtime(request).settings.secret_key,
                                  salt="commcredits.console.device")


def _account_tag(request: Request, account: str) -> str:
    """The account as the cookie names it: keyed hash, so the cookie does not carry the email."""
    key = _runtime(request).settings.secret_key.encode()
    return hmac.new(key, f"device|{account}".encode(), hashlib.sha256).hexdigest()[:32]


def _devices(request: Request) -> list[list[str]]:
    """The browser's ``[account tag, nonce]`` pairs (none if the cookie is absent or forged)."""
    raw = request.cookies.get(DEVICE_COOKIE)
    if not raw:
        return []
    try:
        pairs = _devices_serializer(request).loads(raw, max_age=DEVICE_MAX_AGE_S)
    except (BadSignature, TypeError, ValueError):
        return []
    if not isinstance(pairs, list):
        return []
    return [p for p in pairs if isinstance(p, list) and len(p) == 2
            and all(isinstance(x, str) for x in p)][:DEVICES_PER_BROWSER]


def device_of(request: Request, account: str) -> str | None:
    """The nonce of this browser's device cookie for ``account``, if it has a valid one."""
    tag = _account_tag(request, account)
    return next((nonce for t, nonce in _devices(request) if t == tag), None)


def remember_device(request: Request, response: Response, account: str) -> None:
    """After a successful sign-in: a fresh nonce for ``account``, first in the cookie."""
    tag = _account_tag(request, account)
    pairs = [[tag, secrets.token_urlsafe(16)]] + [p for p in _devices(request) if p[0] != tag]
    response.set_cookie(DEVICE_COOKIE, _devices_serializer(request).dumps(
        pairs[:DEVICES_PER_BROWSER]), max_age=DEVICE_MAX_AGE_S, path="/", httponly=True,
        samesite="lax", secure=request.url.scheme == "https")


# -- the throttle (counted in the database: services.access.SignInLimits) ------------------------
def sign_in_wait_s(request: Request, account: str) -> int:
    with _runtime(request).db.uow(readonly=True) as uow:
        return access.sign_in_wait_s(uow, client_of(request), account, _now(),
                                     device=device_of(request, account))


def sign_in_failed(request: Request, account: str) -> None:
    with _runtime(request).db.uow() as uow:
        access.sign_in_failed(uow, client_of(request), account, _now(),
                              device=device_of(request, account))
        uow.commit()


def sign_in_succeeded(request: Request, response: Response, uow: UnitOfWork,
                      account: str) -> None:
    """Forget this client's failures for ``account`` and remember the browser (in the
    caller's unit of work, which the caller commits)."""
    access.sign_in_succeeded(uow, client_of(request), account,
                             device=device_of(request, account))
    remember_device(request, response, account)


# -- login CSRF ---------------------------------------------------------------------------------
def _login_mac(request: Request, token: str) -> str:
    key = _runtime(request).settings.secret_key.encode()
    return hmac.new(key, f"login|{token}".encode(), hashlib.sha256).hexdigest()


def login_form(request: Request, render: Callable[[str], Response]) -> Response:
    """A sign-in page: ``render`` gets the form's token; the page keeps (or sets) the
    pre-session cookie it belongs to."""
    token = request.cookies.get(LOGIN_COOKIE) or ""
    if not (20 <= len(token) <= 100 and token.replace("-", "").replace("_", "").isalnum()):
        token = secrets.token_urlsafe(24)
    response = render(_login_mac(request, token))
    response.set_cookie(LOGIN_COOKIE, token, max_age=LOGIN_MAX_AGE_S, path="/", httponly=True,
                        samesite="lax", secure=request.url.scheme == "https")
    return response


def login_token_ok(request: Request, field: str) -> bool:
    """The form's token matches the browser's pre-session cookie (a form from this site)."""
    token = request.cookies.get(LOGIN_COOKIE)
    if not token or not field:
        return False
    return hmac.compare_digest(_login_mac(request, token).encode(), field.encode())
