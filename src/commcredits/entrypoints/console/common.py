"""Helpers every console page uses: rendering with the tenant, the role's rights and money
formatted for the tenant's currency and locale (Babel), guarding forms (session, CSRF,
role), and errors placed next to the field they concern."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from babel.core import Locale, UnknownLocaleError
from babel.numbers import format_currency
from fastapi import Request
from fastapi.responses import HTMLResponse, Response

from commcredits.domain.access import Action, authorize
from commcredits.domain.errors import DomainError
from commcredits.domain.tenancy import Tenant
from commcredits.entrypoints.console.pages import (
    NO_STORE,
    ROLE_LABELS,
    Session,
    _csrf_ok,
    _error_page,
    _runtime,
    _session,
    _status,
    _to_login,
    templates,
)
from commcredits.services.tenants import get_tenant

if TYPE_CHECKING:
    from commcredits.adapters.db.uow import UnitOfWork


@lru_cache(maxsize=512)
def locale_for(country: str) -> str:
    """The usual locale of a country (CLDR likely subtags): US → en_US, DE → de_DE."""
    try:
        return str(Locale.parse(f"und_{country}"))
    except (UnknownLocaleError, ValueError):
        return "en_US"


def money(value: object, currency: str, locale: str = "en_US") -> str:
    """``"1234.5"`` in USD for en_US → ``$1,234.50``; anything not a number as it is."""
    if value is None or value == "":
        return "—"
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return str(value)
    return format_currency(amount, currency, locale=locale)


templates.env.filters["money"] = money


def read_page(request: Request, action: Action,
              build: Callable[[UnitOfWork, Session, Tenant], Response]) -> Response:
    """A page that reads: signed in (else the sign-in page), allowed ``action`` in its
    tenant, ``build`` run in a read-only unit of work; a refusal is the error page."""
    sess = _session(request)
    if sess is None:
        return _to_login()
    try:
        authorize(sess.principal, action, sess.tenant_id)
        with _runtime(request).db.uow(readonly=True) as uow:
            return build(uow, sess, get_tenant(uow, sess.tenant_id))
    except DomainError as e:
        return _error_page(request, sess, _status(e), "Not available", e.message)


def render(request: Request, sess: Session, template: str, tenant: Tenant | None,
           status: int = 200, **ctx: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, template, {
        "sess": sess, "tenant": tenant, "role_label": ROLE_LABELS.get(sess.principal.role),
        "cur": tenant.currency if tenant else "USD",
        "loc": locale_for(tenant.country) if tenant else "en_US",
        "can_bill": sess.may(Action.BILLING), "can_users": sess.may(Action.USERS),
        "can_admin": sess.may(Action.ADMINS),
        # the Stripe gateway: cards are entered in Stripe's own element, never in our forms
        "stripe_on": request.app.state.runtime.gateway.name == "stripe", **ctx,
    }, status_code=status, headers=NO_STORE)


def guard(request: Request, csrf: str, action: Action,
          what: str) -> tuple[Session, None] | tuple[None, Response]:
    """(the session, None) when the signed-in admin may post a form doing ``action`` with
    this CSRF token; else (None, the response to send: sign-in or 403)."""
    sess = _session(request)
    if sess is None:
        return None, _to_login()
    if not _csrf_ok(sess, csrf):
        return None, _error_page(request, sess, 403, "Form expired",
                                 "The form was stale or not sent from this console; reload "
                                 "the page and try again.")
    if not sess.may(action):
        return None, _error_page(request, sess, 403, "Not allowed",
                                 f"The {ROLE_LABELS[sess.principal.role]} role cannot {what}.")
    return sess, None


def field_of(e: DomainError, fields: tuple[str, ...], default: str) -> str:
    """The form field an error concerns: the first field its message names, else
    ``default`` (services name the field first: "amount must be ...")."""
    message = e.message.lower()
    for f in fields:
        if message.startswith(f) or f" {f} " in f" {message} " or f"{f}:" in message:
            return f
    return default


def sentence(message: str) -> str:
    """A service message as a sentence: "user_daily_cap 'x' is ..." → "User daily cap 'x'
    is ...", ending with a full stop."""
    text = message.replace("_", " ")
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def labelled(message: str, labels: dict[str, str]) -> str:
    """A service message about a field, told with the field's label as the form shows it:
    ``recharge_amount 'ten' is not ...`` → ``Recharge with: 'ten' is not ....``; a message
    naming no field of the form becomes a plain sentence."""
    head, _, rest = message.partition(" ")
    label = labels.get(head.rstrip(":"))
    if label is None or not rest:
        return sentence(message)
    text = f"{label}: {rest}"
    return text + ("" if text.endswith(".") else ".")


def card_problems(card_number: str, exp_month: str, exp_year: str,
                  now: Any) -> dict[str, str]:
    """Every problem of a card form at once, keyed ``card_number`` / ``card_exp`` (the
    month and year share one line), in the form's words."""
    from commcredits.domain import cards
    problems: dict[str, str] = {}
    try:
        cards.digits(card_number)
    except DomainError as e:
        problems["card_number"] = labelled(e.message, CARD_LABELS)
    wrong = []
    month = int(exp_month) if exp_month.isascii() and exp_month.isdigit() else None
    year = int(exp_year) if exp_year.isascii() and exp_year.isdigit() else None
    if month is None or not 1 <= month <= 12:
        wrong.append(f"Expiry month {exp_month[:10]!r} must be 1 to 12" if exp_month
                     else "Expiry month is missing")
    if year is None or len(exp_year) != 4 or not 2000 <= year <= 2100:
        wrong.append(f"Expiry year {exp_year[:10]!r} must be a four-digit year such as "
                     f"{now.year + 3}" if exp_year else "Expiry year is missing")
    if not wrong and month is not None and year is not None \
            and cards.is_expired(month, year, now):
        wrong.append(f"The card expired at the end of {month:02d}/{year}")
    if wrong:
        problems["card_exp"] = ". ".join(wrong) + "."
    return problems


CARD_LABELS = {"card_number": "Card number", "exp_month": "Expiry month",
               "exp_year": "Expiry year"}
