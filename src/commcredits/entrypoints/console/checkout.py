"""Buying credits as in the seed article (Billing → Communications Credits): the amount, a
payment method (a saved one, a new card, or an Enterprise Agreement with an optional PO
number), the auto-recharge switch with "Recharge with" and "When the balance falls below",
a review step, **Place order**, and a receipt. Also the payment methods page (add a card or
an agreement, remove, choose the default) and the order history (who ordered, how, the PO
number and the lot it created).

Every check is the service's own (``services.credits``), run again at Place order; the
review step only runs them early so errors show next to their field before anything is
paid. A new card is tokenized by the gateway at review and saved as a payment method
(token + last4): the card number never reaches the database or a later page.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from commcredits.domain import tenancy
from commcredits.domain.access import Action, authorize
from commcredits.domain.errors import DomainError, ErrorKind
from commcredits.domain.money import parse_amount
from commcredits.domain.wallet import AutoRecharge, check_auto_recharge, check_order_amount
from commcredits.entrypoints.console.billing import place_order
from commcredits.entrypoints.console.common import (
    CARD_LABELS,
    card_problems,
    field_of,
    guard,
    labelled,
    read_page,
    render,
)
from commcredits.entrypoints.console.common import sentence as _sentence
from commcredits.entrypoints.console.pages import (
    Session,
    _error_page,
    _runtime,
    _session,
    _status,
    _to_login,
)
from commcredits.services import audit, card_setup, credits, payment_methods
from commcredits.services.tenants import get_tenant

if TYPE_CHECKING:
    from commcredits.adapters.db.uow import UnitOfWork
    from commcredits.domain.tenancy import Tenant

router = APIRouter(tags=["console"])
NEW_CARD = "new_card"
NEW_AGREEMENT = "new_agreement"


def _actor(uow: Any, sess: Session) -> None:
    uow.actor = audit.Actor.of(sess.principal, "console", sess.email)


def _methods(uow: Any, tid: str) -> list[dict[str, Any]]:
    return [{**credits.payment_method_view(r), "is_default": bool(r.is_default)}
            for r in uow.credits.payment_methods(tid)]


def _buy_page(request: Request, sess: Session, form: dict[str, str], errors: dict[str, str],
              status: int = 200) -> Response:
    try:
        authorize(sess.principal, Action.BILLING, sess.tenant_id)
        with _runtime(request).db.uow(readonly=True) as uow:
            tenant = get_tenant(uow, sess.tenant_id)
            methods = _methods(uow, sess.tenant_id)
            ar = credits.credits_view(uow, sess.tenant_id)["auto_recharge"]
            default = payment_methods.default_id(uow, sess.tenant_id)
    except DomainError as e:
        return _error_page(request, sess, _status(e), "Not available", e.message)
    values = {"amount": "", "method": default or NEW_CARD, "po_number": "",
              "ar_on": "on" if ar["enabled"] else "",
              "ar_recharge": ar["recharge_amount"] or "", "ar_trigger": ar["trigger_amount"] or "",
              "card_exp_month": "", "card_exp_year": "", "agreement_number": "", **form}
    return render(request, sess, "buy.html", tenant, form=values, errors=errors,
                  methods=methods, min_order=_runtime(request).settings.min_order,
                  status=status)


@router.get("/console/buy", response_class=HTMLResponse)
def buy(request: Request) -> Response:
    """Step 1: amount, payment method, auto-recharge."""
    sess = _session(request)
    if sess is None:
        return _to_login()
    return _buy_page(request, sess, {}, {})


# the buy form's labels, which its errors name
BUY_LABELS = {"amount": "Amount", "recharge_amount": "Recharge with",
              "trigger_amount": "When the balance falls below", "po_number": "PO number",
              "agreement_number": "Agreement number", **CARD_LABELS}
FIELDS = ("amount", "method", "card_number", "card_exp", "agreement_number", "po_number",
          "ar_recharge", "ar_trigger")


@router.post("/console/buy/review", response_class=HTMLResponse)
def review(request: Request, csrf: str = Form(""), amount: str = Form(""),
           method: str = Form(""), card_number: str = Form(""),
           card_exp_month: str = Form(""), card_exp_year: str = Form(""),
           agreement_number: str = Form(""), po_number: str = Form(""),
           ar_on: str = Form(""), ar_recharge: str = Form(""),
           ar_trigger: str = Form(""), keep_card: str = Form("")) -> Response:
    """Step 2: check everything as Place order will, save a new card or agreement, and show
    the order to confirm. Errors go back to step 1, next to their field."""
    sess, refused = guard(request, csrf, Action.BILLING, "buy credits")
    if sess is None:
        return refused
    rt = _runtime(request)
    form = {"amount": amount.strip(), "method": method, "po_number": po_number.strip(),
            "ar_on": "on" if ar_on else "", "ar_recharge": ar_recharge.strip(),
            "ar_trigger": ar_trigger.strip(), "card_exp_month": card_exp_month.strip(),
            "card_exp_year": card_exp_year.strip(),
            "agreement_number": agreement_number.strip(),
            "keep_card": "on" if keep_card else ""}
    errors: dict[str, str] = {}

    def check(field: str, fn: Any) -> Any:
        try:
            return fn()
        except DomainError as e:
            errors.setdefault(field, labelled(e.message, BUY_LABELS))
            return None
    with rt.db.uow() as uow:
        _actor(uow, sess)
        tenant = get_tenant(uow, sess.tenant_id)
        most = rt.settings.max_order
        value = check("amount", lambda: parse_amount(form["amount"] or "", tenant.currency,
                                                     maximum=most))
        if value is not None:
            check("amount", lambda: check_order_amount(value, rt.settings.min_order,
                                                       maximum=most))
        check("amount", lambda: tenancy.check_can_buy_credits(tenant))
        saved = {m["id"]: m for m in _methods(uow, sess.tenant_id)}
        if method not in saved and method not in (NEW_CARD, NEW_AGREEMENT):
            errors["method"] = "Choose a payment method."
        if form["po_number"] and method in saved and saved[method]["type"] == "card":
            errors["po_number"] = "A PO number goes with an Enterprise Agreement only."
        if len(form["po_number"]) > 100:
            errors["po_number"] = "A PO number has at most 100 characters."
        if form["ar_on"]:
            rech = check("ar_recharge", lambda: parse_amount(
                form["ar_recharge"] or None, tenant.currency, field="recharge_amount",
                maximum=most))
            trig = check("ar_trigger", lambda: parse_amount(
                form["ar_trigger"] or None, tenant.currency, field="trigger_amount"))
            if rech is not None and trig is not None:
                check("ar_recharge", lambda: check_auto_recharge(
                    AutoRecharge(True, rech, trig, method or "pm"), rt.settings.min_order,
                    most))
        if method == NEW_CARD:  # every problem of the card at once, before the gateway
            for field, problem in card_problems(card_number, form["card_exp_month"],
                                                form["card_exp_year"], uow.now).items():
                errors.setdefault(field, problem)
        pm_id = method
        if not errors and method == NEW_CARD:
            pm_id = check("card_number", lambda: credits.add_card(
                uow, rt.gateway, sess.tenant_id, card_number, _int(card_exp_month),
                _int(card_exp_year))["id"])
        elif not errors and method == NEW_AGREEMENT:
            pm_id = check("agreement_number", lambda: credits.add_agreement(
                uow, sess.tenant_id, form["agreement_number"])["id"])
        if errors:
            return _buy_page(request, sess, form, errors, status=422)
        uow.commit()
        chosen = _methods(uow, sess.tenant_id)
    pm = next(m for m in chosen if m["id"] == pm_id)
    return render(request, sess, "review.html", tenant, form=form, pm=pm,
                  token=secrets.token_urlsafe(16), new_card=method == NEW_CARD)


def _int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        return 0


@router.post("/console/buy/place", response_class=HTMLResponse)
def place(request: Request, csrf: str = Form(""), token: str = Form(""),
          amount: str = Form(""), payment_method_id: str = Form(""),
          po_number: str = Form(""), ar_on: str = Form(""), ar_recharge: str = Form(""),
          ar_trigger: str = Form(""), new_card: str = Form(""),
          keep_card: str = Form("")) -> Response:
    """Step 3: Place order. Pays once however often it is posted; then the receipt. A card
    entered in this checkout that the gateway refuses is removed again, unless the admin
    ticked "Keep this card": it is not offered (or preselected) next time."""
    sess, refused = guard(request, csrf, Action.BILLING, "buy credits")
    if sess is None:
        return refused
    fields = {"amount": amount, "payment_method_id": payment_method_id, "po_number": po_number,
              "ar_on": ar_on, "ar_recharge": ar_recharge, "ar_trigger": ar_trigger}
    ar = ({"enabled": True, "recharge_amount": ar_recharge, "trigger_amount": ar_trigger}
          if ar_on else None)
    try:
        # a double submit pays once and lands on the same receipt
        order, _ = place_order(request, sess, fields, token, amount, payment_method_id,
                               po_number or None, ar)
    except DomainError as e:
        form = {"amount": amount, "method": payment_method_id, "po_number": po_number,
                "ar_on": ar_on, "ar_recharge": ar_recharge, "ar_trigger": ar_trigger}
        message = _sentence(e.message)
        if e.kind is ErrorKind.PAYMENT and new_card and not keep_card \
                and _forget_card(request, sess, payment_method_id):
            form["method"] = NEW_CARD
            message += " The card was not saved."
        return _buy_page(request, sess, form, {field_of(e, FIELDS, "method"): message},
                         status=_status(e))
    return RedirectResponse(f"/console/orders/{order['id']}?placed=1", status_code=303)


def _forget_card(request: Request, sess: Session, pm_id: str) -> bool:
    """Remove the card a refused checkout added (whether it went: a card auto-recharge pays
    with stays)."""
    try:
        with _runtime(request).db.uow() as uow:
            _actor(uow, sess)
            payment_methods.remove(uow, sess.tenant_id, pm_id)
            uow.commit()
    except DomainError:
        return False
    return True


# -- orders -------------------------------------------------------------------------------------
def _who_ordered(uow: Any, tid: str, order_ids: list[str]) -> dict[str, str]:
    rows = uow.audit.entries(tid, action="order.place", targets=order_ids) if order_ids else []
    return {r.target: f"{r.actor} ({r.via})" for r in rows}


def _order_rows(uow: Any, tid: str, rows: list[Any]) -> list[dict[str, Any]]:
    who = _who_ordered(uow, tid, [r.id for r in rows])
    out = []
    for r in rows:
        pm = uow.credits.any_payment_method(tid, r.payment_method_id)
        out.append({**credits.order_view(r),
                    "pm": credits.payment_method_view(pm) if pm is not None else None,
                    "who": "Auto-recharge" if r.source == "auto_recharge"
                    else who.get(r.id, "API or import"),
                    "reference": r.gateway_reference})
    return out


@router.get("/console/orders", response_class=HTMLResponse)
def orders(request: Request) -> Response:
    """Order history: when, amount, who ordered, how it was paid, PO number, lot."""
    def build(uow: UnitOfWork, sess: Session, tenant: Tenant) -> Response:
        rows = _order_rows(uow, tenant.id, uow.credits.orders(tenant.id)[:500])
        return render(request, sess, "orders.html", tenant, orders=rows)
    return read_page(request, Action.READ, build)


@router.get("/console/orders/{order_id}", response_class=HTMLResponse)
def receipt(request: Request, order_id: str, placed: str = "") -> Response:
    """One order: the receipt."""
    def build(uow: UnitOfWork, sess: Session, tenant: Tenant) -> Response:
        row = uow.credits.order(tenant.id, order_id)
        if row is None:
            return _error_page(request, sess, 404, "No such order",
                               f"There is no order {order_id[:60]} in this organization.")
        view = credits.credits_view(uow, tenant.id)
        return render(request, sess, "receipt.html", tenant,
                      order=_order_rows(uow, tenant.id, [row])[0],
                      lot=next((x for x in view["lots"] if x["id"] == row.lot_id), None),
                      ar=view["auto_recharge"], placed=bool(placed))
    return read_page(request, Action.READ, build)


# -- payment methods ----------------------------------------------------------------------------
def _methods_page(request: Request, sess: Session, *, form: dict[str, str] | None = None,
                  errors: dict[str, str] | None = None, notice: str | None = None,
                  status: int = 200) -> Response:
    rt = _runtime(request)
    try:
        authorize(sess.principal, Action.READ, sess.tenant_id)
        with rt.db.uow(readonly=True) as uow:
            tenant = get_tenant(uow, sess.tenant_id)
            methods = _methods(uow, sess.tenant_id)
            ar_pm = uow.tenants.wallet(sess.tenant_id).auto_recharge.payment_method_id
    except DomainError as e:
        return _error_page(request, sess, _status(e), "Not available", e.message)
    errors = dict(errors or {})
    stripe = None
    if rt.gateway.name == "stripe" and sess.may(Action.BILLING):
        try:  # a SetupIntent for the card the admin may add: Stripe.js completes it
            setup = card_setup.begin(rt.db, rt.gateway, sess.tenant_id)
            stripe = {"js_url": rt.settings.stripe_js_url, "client_secret": setup.client_secret,
                      "publishable_key": rt.settings.stripe_publishable_key or ""}
        except DomainError as e:
            errors.setdefault("card_number", _sentence(e.message))
    return render(request, sess, "payment_methods.html", tenant, methods=methods,
                  form=form or {}, errors=errors, notice=notice, ar_pm=ar_pm,
                  stripe=stripe, status=status)


NOTICES = {"card": "Card added.", "agreement": "Enterprise Agreement added.",
           "removed": "Payment method removed.", "default": "Default payment method changed."}


@router.get("/console/payment-methods", response_class=HTMLResponse)
def methods_page(request: Request, done: str = "") -> Response:
    sess = _session(request)
    if sess is None:
        return _to_login()
    return _methods_page(request, sess, notice=NOTICES.get(done))


@router.post("/console/payment-methods", response_class=HTMLResponse)
def add_method(request: Request, csrf: str = Form(""), kind: str = Form(""),
               card_number: str = Form(""), card_exp_month: str = Form(""),
               card_exp_year: str = Form(""), agreement_number: str = Form("")) -> Response:
    """Add a card (stored as the gateway's token + last4) or an Enterprise Agreement."""
    sess, refused = guard(request, csrf, Action.BILLING, "change payment methods")
    if sess is None:
        return refused
    rt = _runtime(request)
    form = {"kind": kind, "card_exp_month": card_exp_month.strip(),
            "card_exp_year": card_exp_year.strip(), "agreement_number": agreement_number.strip()}
    try:
        with rt.db.uow() as uow:
            _actor(uow, sess)
            if kind == "card":
                problems = card_problems(card_number, form["card_exp_month"],
                                         form["card_exp_year"], uow.now)
                if problems:
                    return _methods_page(request, sess, form=form, errors=problems,
                                         status=422)
                credits.add_card(uow, rt.gateway, sess.tenant_id, card_number,
                                 _int(card_exp_month), _int(card_exp_year))
            else:
                credits.add_agreement(uow, sess.tenant_id, form["agreement_number"])
            uow.commit()
    except DomainError as e:
        field = "agreement_number" if kind != "card" else field_of(
            e, ("card_number", "card_exp"), "card_exp" if "exp" in e.message else "card_number")
        return _methods_page(request, sess, form=form, errors={field: _sentence(e.message)},
                             status=_status(e))
    done = "card" if kind == "card" else "agreement"
    return RedirectResponse(f"/console/payment-methods?done={done}", status_code=303)


@router.post("/console/payment-methods/stripe", response_class=HTMLResponse)
def add_stripe_card(request: Request, csrf: str = Form(""),
                    setup_intent_id: str = Form("")) -> Response:
    """The card Stripe.js saved (a confirmed SetupIntent): read back from Stripe and stored
    as token + last4. The card number went from the browser to Stripe, never here."""
    sess, refused = guard(request, csrf, Action.BILLING, "change payment methods")
    if sess is None:
        return refused
    rt = _runtime(request)
    try:
        card_setup.finish(rt.db, rt.gateway, sess.tenant_id, setup_intent_id.strip())
    except DomainError as e:
        return _methods_page(request, sess, errors={"card_number": _sentence(e.message)},
                             status=_status(e))
    return RedirectResponse("/console/payment-methods?done=card", status_code=303)


@router.post("/console/payment-methods/{pm_id}/{what}", response_class=HTMLResponse)
def change_method(request: Request, pm_id: str, what: str, csrf: str = Form("")) -> Response:
    """``remove`` a payment method or make it the ``default``."""
    sess, refused = guard(request, csrf, Action.BILLING, "change payment methods")
    if sess is None:
        return refused
    if what not in ("remove", "default"):
        return _error_page(request, sess, 404, "Not found", "No such page.")
    try:
        with _runtime(request).db.uow() as uow:
            _actor(uow, sess)
            if what == "remove":
                payment_methods.remove(uow, sess.tenant_id, pm_id)
            else:
                payment_methods.set_default(uow, sess.tenant_id, pm_id)
            uow.commit()
    except DomainError as e:
        return _methods_page(request, sess, errors={f"pm-{pm_id}": _sentence(e.message)},
                             status=_status(e))
    done = "removed" if what == "remove" else "default"
    return RedirectResponse(f"/console/payment-methods?done={done}", status_code=303)

