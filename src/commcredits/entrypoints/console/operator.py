"""The operator console (``/operator``): operator admins (``POST /v1/operator-admins`` or
``commcredits admins create --operator``) sign in at ``/operator/login``. Its sessions live
in the database like the tenant console's (``console_sessions`` with realm ``operator``:
sign-out ends them at once on every instance) behind their own cookie, path ``/operator``;
the admin is checked against ``operator_admins`` on every request. Pages: tenants with
balances and recharge failures across tenants, creating a tenant (commerce model) and
setting its guardrails, rate decks (upload with line-numbered errors, current versions, look
a number up), and API keys (create, shown once; revoke; last used). Every write goes through
the same services as the REST API and is audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import UploadFile

from commcredits.domain.access import Principal, Role
from commcredits.domain.errors import DomainError
from commcredits.entrypoints.console.common import locale_for, money
from commcredits.entrypoints.console.common import sentence as _sentence
from commcredits.entrypoints.console.pages import (
    FORM_EXPIRED,
    NO_STORE,
    Realm,
    _csrf_ok,
    _runtime,
    templates,
)
from commcredits.entrypoints.console.sign_in import (
    login_form,
    login_token_ok,
    sign_in_failed,
    sign_in_succeeded,
    sign_in_wait_s,
)
from commcredits.services import access, audit, credits, operator_admins, rating, tenants

router = APIRouter(tags=["operator console"])
COOKIE = "cc_operator"
MAX_DECK_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class OperatorSession:
    principal: Principal
    email: str
    csrf: str

    def may(self, action: str) -> bool:
        return True  # the operator role does everything


OPERATOR = Realm("operator", COOKIE, "/operator", "commcredits.operator.session")


def _session(request: Request) -> OperatorSession | None:
    with _runtime(request).db.uow(readonly=True) as uow:
        sess = OPERATOR.live(request, uow)
        row = uow.operator_admins.get(sess.admin_id) if sess is not None else None
    if row is None:
        return None
    return OperatorSession(Principal(row.id, Role.OPERATOR), row.email, sess.csrf)


def _page(request: Request, sess: OperatorSession | None, template: str, status: int = 200,
          **ctx: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, template, {
        "sess": sess, "op": True, "role_label": "Operator", "tenant": None, **ctx},
        status_code=status, headers=NO_STORE)


def _to_login() -> RedirectResponse:
    return RedirectResponse("/operator/login", status_code=303)


def _actor(uow: Any, sess: OperatorSession) -> None:
    uow.actor = audit.Actor.of(sess.principal, "console", sess.email)


# -- sign in ------------------------------------------------------------------------------------
def _login_page(request: Request, email: str = "", error: str | None = None,
                status: int = 200) -> Response:
    return login_form(request, lambda token: _page(
        request, None, "operator_login.html", status=status, email=email, error=error,
        login_token=token))


@router.get("/operator/login", response_class=HTMLResponse)
def login_page(request: Request) -> Response:
    if _session(request):
        return RedirectResponse("/operator", status_code=303)
    return _login_page(request)


@router.post("/operator/login", response_class=HTMLResponse)
def login(request: Request, email: str = Form(""), password: str = Form(""),
          login_token: str = Form("")) -> Response:
    email = email.strip()
    if not login_token_ok(request, login_token):  # login CSRF: nobody is signed in
        return _login_page(request, email, FORM_EXPIRED, status=403)
    key = f"operator:{email.lower()}"
    wait = sign_in_wait_s(request, key)
    if wait:
        return _login_page(request, email, f"Too many failed sign-ins; try again in "
                                           f"{wait // 60 + 1} minutes.", status=429)
    who = None
    if email and password:
        with _runtime(request).db.uow(readonly=True) as uow:
            who = operator_admins.authenticate(uow, email, password)
    if who is None:
        sign_in_failed(request, key)
        return _login_page(request, email, "Wrong email or password.")
    response = RedirectResponse("/operator", status_code=303)
    with _runtime(request).db.uow() as uow:
        OPERATOR.start(request, response, uow, who.id)
        sign_in_succeeded(request, response, uow, key)
        uow.commit()
    return response


@router.post("/operator/logout")
def logout(request: Request, csrf: str = Form("")) -> RedirectResponse:
    response = _to_login()
    sess = _session(request)
    if sess is None or _csrf_ok(sess, csrf):  # type: ignore[arg-type]
        OPERATOR.end(request, response)
    return response


def _guard(request: Request, csrf: str) -> tuple[OperatorSession | None, Response | None]:
    sess = _session(request)
    if sess is None:
        return None, _to_login()
    if not _csrf_ok(sess, csrf):  # type: ignore[arg-type]
        return None, _page(request, sess, "error.html", status=403, title="Form expired",
                           message="The form was stale or not sent from this console; "
                                   "reload the page and try again.")
    return sess, None


# -- tenants ------------------------------------------------------------------------------------
def _tenants_page(request: Request, sess: OperatorSession, *, form: dict[str, str] | None = None,
                  errors: dict[str, str] | None = None, notice: str | None = None,
                  status: int = 200) -> Response:
    rows = []
    with _runtime(request).db.uow(readonly=True) as uow:
        for t in uow.tenants.list():
            view = credits.credits_view(uow, t.id)
            loc = locale_for(t.country)
            rows.append({"id": t.id, "name": t.name, "country": t.country,
                         "currency": t.currency, "commerce": t.commerce.value,
                         "balance": money(view["balance"], t.currency, loc),
                         "available": money(view["available"], t.currency, loc),
                         "auto_recharge": view["auto_recharge"]["status"]
                         if view["auto_recharge"]["enabled"] else "off"})
        names = {r["id"]: r["name"] for r in rows}
        failures = [{"tenant": names.get(f.tenant_id, f.tenant_id), "status": f.status,
                     "amount": f.amount, "error": f.last_error or "",
                     "at": f.updated_at.isoformat(), "attempts": f.attempts}
                    for f in uow.operator_admins.failed_recharges()]
    return _page(request, sess, "operator.html", status=status, tenants=rows,
                 failures=failures, form=form or {"commerce": "legacy"}, errors=errors or {},
                 notice=notice, active="tenants")


@router.get("/operator", response_class=HTMLResponse)
def home(request: Request, created: str = "") -> Response:
    """Every tenant with its balance and auto-recharge; recharge failures across tenants."""
    sess = _session(request)
    if sess is None:
        return _to_login()
    return _tenants_page(request, sess,
                         notice=f"Tenant {created[:60]} created." if created else None)


@router.post("/operator/tenants", response_class=HTMLResponse)
def create_tenant(request: Request, csrf: str = Form(""), name: str = Form(""),
                  country: str = Form(""), commerce: str = Form("legacy")) -> Response:
    sess, refused = _guard(request, csrf)
    if refused is not None:
        return refused
    assert sess is not None
    form = {"name": name.strip(), "country": country.strip().upper(), "commerce": commerce}
    errors: dict[str, str] = {}
    if not form["name"]:
        errors["name"] = "Give the organization a name."
    elif len(form["name"]) > 200:
        errors["name"] = "A name has at most 200 characters."
    if not errors:
        try:
            with _runtime(request).db.uow() as uow:
                _actor(uow, sess)
                tenant = tenants.create_tenant(uow, form["name"], form["country"], commerce)
                uow.commit()
        except DomainError as e:
            field = "country" if "country" in e.message else "commerce" \
                if "commerce" in e.message else "name"
            errors[field] = _sentence(e.message)
    if errors:
        return _tenants_page(request, sess, form=form, errors=errors, status=422)
    return RedirectResponse(f"/operator?created={tenant.id}", status_code=303)


@router.post("/operator/tenants/{tid}/guardrails", response_class=HTMLResponse)
def guardrails(request: Request, tid: str, csrf: str = Form(""),
               commerce: str = Form(""), allow_premium: str = Form(""),
               blocked_prefixes: str = Form(""), user_daily_cap: str = Form("")) -> Response:
    """The commerce model and the toll-fraud guardrails of one tenant."""
    sess, refused = _guard(request, csrf)
    if refused is not None:
        return refused
    assert sess is not None
    try:
        with _runtime(request).db.uow() as uow:
            _actor(uow, sess)
            current = tenants.get_tenant(uow, tid)
            if commerce and commerce != current.commerce.value:
                tenants.change_commerce(uow, tid, commerce)
            tenants.set_call_policy(uow, tid, allow_premium == "on",
                                    [p for p in blocked_prefixes.replace(",", " ").split()],
                                    user_daily_cap.strip() or None)
            uow.commit()
    except DomainError as e:
        return _tenant_page(request, sess, tid, error=_sentence(e.message), status=422)
    return RedirectResponse(f"/operator/tenants/{tid}?saved=1", status_code=303)


def _tenant_page(request: Request, sess: OperatorSession, tid: str, *, error: str | None = None,
                 notice: str | None = None, status: int = 200) -> Response:
    try:
        with _runtime(request).db.uow(readonly=True) as uow:
            t = tenants.get_tenant(uow, tid)
            view = credits.credits_view(uow, tid)
    except DomainError as e:
        return _page(request, sess, "error.html", status=404, title="No such tenant",
                     message=e.message)
    return _page(request, sess, "operator_tenant.html", status=status, t=t, credits=view,
                 loc=locale_for(t.country), error=error, notice=notice, active="tenants")


@router.get("/operator/tenants/{tid}", response_class=HTMLResponse)
def tenant_page(request: Request, tid: str, saved: str = "") -> Response:
    sess = _session(request)
    if sess is None:
        return _to_login()
    return _tenant_page(request, sess, tid, notice="Saved." if saved else None)


# -- rate decks ---------------------------------------------------------------------------------
def _decks_page(request: Request, sess: OperatorSession, status: int = 200,
                **ctx: Any) -> Response:
    with _runtime(request).db.uow(readonly=True) as uow:
        decks = uow.operator_admins.decks()
    return _page(request, sess, "operator_decks.html", status=status, decks=decks,
                 active="decks", **{"problems": [], "error": None, "notice": None,
                                    "rate": None, "lookup": {}, **ctx})


@router.get("/operator/decks", response_class=HTMLResponse)
def decks(request: Request, currency: str = "", number: str = "") -> Response:
    """Current decks; look a number up (``?currency=USD&number=+44...``)."""
    sess = _session(request)
    if sess is None:
        return _to_login()
    if not (currency or number):
        return _decks_page(request, sess)
    try:
        with _runtime(request).db.uow(readonly=True) as uow:
            rate = rating.lookup(uow, currency.strip(), number.strip())
    except DomainError as e:
        return _decks_page(request, sess, status=422 if e.code != "no_rate" else 404,
                           lookup={"currency": currency, "number": number,
                                   "error": _sentence(e.message)})
    return _decks_page(request, sess, rate=rate,
                       lookup={"currency": currency, "number": number})


@router.post("/operator/decks", response_class=HTMLResponse)
async def upload_deck(request: Request) -> Response:
    """Replace a currency's deck with a CSV file: all of it, or nothing and every bad line."""
    form = await request.form()
    sess, refused = _guard(request, str(form.get("csrf", "")))
    if refused is not None:
        return refused
    assert sess is not None
    currency = str(form.get("currency", "")).strip()
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return _decks_page(request, sess, status=422, error="Choose a CSV file.")
    raw = await upload.read(MAX_DECK_BYTES + 1)
    if len(raw) > MAX_DECK_BYTES:
        return _decks_page(request, sess, status=422, error="The deck is larger than 64 MiB.")
    try:
        text = raw.decode("utf-8-sig")
        with _runtime(request).db.uow() as uow:
            _actor(uow, sess)
            result = rating.import_deck(uow, currency, text)
            audit.record(uow, None, "rate_deck.import", result["currency"], None, result)
            uow.commit()
    except UnicodeDecodeError:
        return _decks_page(request, sess, status=422, error="The deck must be UTF-8 text.")
    except DomainError as e:
        problems = [(d.get("line"), d.get("message")) for d in (e.details or [])]
        return _decks_page(request, sess, status=422, error=_sentence(e.message),
                           problems=problems)
    return _decks_page(request, sess, notice=f"{result['currency']} deck version "
                                             f"{result['version']}: {result['rows']} rates.")


# -- API keys -----------------------------------------------------------------------------------
def _keys_page(request: Request, sess: OperatorSession, *, status: int = 200,
               new_key: str | None = None, error: str | None = None,
               notice: str | None = None) -> Response:
    """Every API key (newest first) with its last use, who made it, and a Revoke button."""
    with _runtime(request).db.uow(readonly=True) as uow:
        made_by = {r.target: r.actor for r in uow.audit.entries(None, action="api_key.create",
                                                                 limit=10_000)}
        rows = [{**k, "by": made_by.get(k["id"], "")} for k in access.list_api_keys(uow)]
        names = {t.id: t.name for t in uow.tenants.list()}
    return _page(request, sess, "operator_keys.html", status=status, keys=rows, names=names,
                 tenants=sorted(names.items(), key=lambda kv: kv[1]),
                 roles=[r.value for r in Role], new_key=new_key, error=error, notice=notice,
                 active="keys")


@router.get("/operator/keys", response_class=HTMLResponse)
def keys(request: Request) -> Response:
    sess = _session(request)
    if sess is None:
        return _to_login()
    return _keys_page(request, sess)


@router.post("/operator/keys", response_class=HTMLResponse)
def create_key(request: Request, csrf: str = Form(""), role: str = Form(""),
               tenant_id: str = Form("")) -> Response:
    """A new API key, shown once."""
    sess, refused = _guard(request, csrf)
    if refused is not None:
        return refused
    assert sess is not None
    new_key, error = None, None
    try:
        with _runtime(request).db.uow() as uow:
            _actor(uow, sess)
            _, new_key, _ = access.create_api_key(uow, role, tenant_id or None)
            uow.commit()
    except DomainError as e:
        error = _sentence(e.message)
    return _keys_page(request, sess, status=422 if error else 201, new_key=new_key,
                      error=error)


@router.post("/operator/keys/{key_id}/revoke", response_class=HTMLResponse)
def revoke_key(key_id: str, request: Request, csrf: str = Form("")) -> Response:
    """Revoke a key: its next request answers 401, on every instance."""
    sess, refused = _guard(request, csrf)
    if refused is not None:
        return refused
    assert sess is not None
    try:
        with _runtime(request).db.uow() as uow:
            _actor(uow, sess)
            access.revoke_api_key(uow, key_id)
            uow.commit()
    except DomainError as e:
        return _keys_page(request, sess, status=404, error=_sentence(e.message))
    return _keys_page(request, sess, notice=f"Key {key_id[:60]} revoked.")
