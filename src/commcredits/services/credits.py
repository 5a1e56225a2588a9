"""Buying credits: payment methods, orders, lots, auto-recharge settings, and reading them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from commcredits.domain import cards, lots, tenancy
from commcredits.domain import forecast as forecasting
from commcredits.domain import ledger as ledger_rules
from commcredits.domain.errors import invalid, not_found
from commcredits.domain.lots import Lot, LotSource
from commcredits.domain.money import ZERO, fmt, parse_amount
from commcredits.domain.tenancy import Tenant
from commcredits.domain.wallet import (
    DEFAULT_MAX_ORDER,
    AutoRecharge,
    RechargeStatus,
    Wallet,
    check_auto_recharge,
)
from commcredits.services import audit, ledger
from commcredits.services.ids import new_id
from commcredits.services.ports import CardToken, PaymentGateway
from commcredits.services.tenants import get_tenant

if TYPE_CHECKING:
    import sqlalchemy as sa

    from commcredits.adapters.db.repositories.tenants import WalletRow
    from commcredits.adapters.db.uow import UnitOfWork


# -- payment methods ----------------------------------------------------------------------------
def add_card(uow: UnitOfWork, gateway: PaymentGateway, tenant_id: str, card_number: str,
             exp_month: int, exp_year: int) -> dict[str, Any]:
    """Check the card (digits, Luhn, an expiry month that has not passed) before the gateway
    sees it, then store what the gateway gives back (``add_token``)."""
    get_tenant(uow, tenant_id)
    cards.check_card(card_number, exp_month, exp_year, uow.now)
    return add_token(uow, gateway.name, tenant_id,
                     gateway.tokenize(card_number, exp_month, exp_year))


def add_token(uow: UnitOfWork, gateway_name: str, tenant_id: str,
              token: CardToken) -> dict[str, Any]:
    """Store a card the gateway holds (``save_token``) and answer its view."""
    return save_token(uow, gateway_name, tenant_id, token)[0]


def save_token(uow: UnitOfWork, gateway_name: str, tenant_id: str,
               token: CardToken) -> tuple[dict[str, Any], bool]:
    """Store a card the gateway holds: its token, brand, last4, expiry and the gateway's
    fingerprint, nothing more. The same card again (``_same_card``) is the entry the tenant
    already has, not a second one. Returns the view and whether the entry is new."""
    uow.tenants.wallet(tenant_id, lock=True)  # two adds of one card take turns
    same = _same_card(uow, gateway_name, tenant_id, token)
    if same is not None:
        return payment_method_view(same), False
    pm_id = new_id("pm")
    uow.credits.add_payment_method(
        id=pm_id, tenant_id=tenant_id, type="card", gateway=gateway_name, token=token.token,
        brand=token.brand, last4=token.last4, exp_month=token.exp_month,
        exp_year=token.exp_year, fingerprint=token.fingerprint, created_at=uow.now)
    view = payment_method_view(uow.credits.payment_method(tenant_id, pm_id))
    audit.record(uow, tenant_id, "payment_method.add", pm_id, None, view)
    return view, True


def _same_card(uow: UnitOfWork, gateway_name: str, tenant_id: str,
               token: CardToken) -> sa.Row | None:
    """The tenant's saved card that ``token`` is again, if any: the same token, or
    * the test gateway (its tokens are new each time): the same brand, last4 and expiry;
    * a gateway that gives a fingerprint (Stripe: a new PaymentMethod, so a new token, for
      every SetupIntent, but the same fingerprint for the same card number in the account):
      the same fingerprint and expiry (a reissued card with a new expiry is another entry,
      as on the test gateway)."""
    expiry = (token.exp_month, token.exp_year)
    for row in uow.credits.payment_methods(tenant_id):
        if row.type != "card" or row.gateway != gateway_name:
            continue
        if row.token == token.token:
            return row
        if gateway_name == "test" and (row.brand, row.last4, row.exp_month, row.exp_year) == (
                token.brand, token.last4, *expiry):
            return row
        if token.fingerprint is not None and row.fingerprint == token.fingerprint and (
                row.exp_month, row.exp_year) == expiry:
            return row
    return None


def add_agreement(uow: UnitOfWork, tenant_id: str, agreement_number: str) -> dict[str, Any]:
    get_tenant(uow, tenant_id)
    number = agreement_number.strip()
    if not number or len(number) > 100:
        raise invalid("validation_error", "agreement_number must be 1 to 100 characters")
    pm_id = new_id("pm")
    uow.credits.add_payment_method(id=pm_id, tenant_id=tenant_id, type="enterprise_agreement",
                                   agreement_number=number, created_at=uow.now)
    view = payment_method_view(uow.credits.payment_method(tenant_id, pm_id))
    audit.record(uow, tenant_id, "payment_method.add", pm_id, None, view)
    return view


def payment_method_view(row: sa.Row | None) -> dict[str, Any]:
    assert row is not None
    if row.type == "card":
        return {"id": row.id, "type": "card", "brand": row.brand, "last4": row.last4,
                "exp_month": row.exp_month, "exp_year": row.exp_year}
    return {"id": row.id, "type": row.type, "agreement_number": row.agreement_number}


def _payment_method(uow: UnitOfWork, tenant_id: str, pm_id: str) -> sa.Row:
    row = uow.credits.payment_method(tenant_id, pm_id)
    if row is None:
        raise not_found("payment method", pm_id)
    return row


# -- funding -------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Funding:
    order_id: str
    lot: Lot


def fund(uow: UnitOfWork, wallet: WalletRow, tenant: Tenant, pm_id: str, amount: Decimal,
         source: LotSource, reference: str, *, po_number: str | None = None) -> Funding:
    """Money already taken (``reference`` says where): create the lot, post it, record the
    order. ``wallet`` must be locked. Payments (``services.payments``) call this once the
    gateway has answered, never while it is being asked."""
    order_id = new_id("ord")
    wallet.lot_seq += 1
    lot = Lot(new_id("lot"), wallet.lot_seq, amount, ZERO, uow.now, lots.expiry_for(uow.now),
              source)
    uow.credits.add_lot(tenant.id, lot, order_id)
    kind = (ledger_rules.TxnKind.ORDER if source is LotSource.ORDER
            else ledger_rules.TxnKind.AUTO_RECHARGE)
    txn = ledger_rules.funding(tenant.id, lot.id, amount, kind, reference=order_id)
    ledger.post(uow, wallet, txn)
    uow.credits.add_order(
        id=order_id, tenant_id=tenant.id, source=source.value, amount=amount,
        currency=tenant.currency, payment_method_id=pm_id, po_number=po_number,
        status="completed", lot_id=lot.id, gateway_reference=reference, created_at=uow.now)
    return Funding(order_id, lot)


def order_view(row: sa.Row | None) -> dict[str, Any]:
    assert row is not None
    return {"id": row.id, "status": row.status, "amount": fmt(row.amount, row.currency),
            "currency": row.currency, "lot_id": row.lot_id, "source": row.source,
            "payment_method_id": row.payment_method_id, "po_number": row.po_number,
            "created_at": row.created_at.isoformat()}


# -- auto-recharge ----------------------------------------------------------------------------
def _check_can_pay(uow: UnitOfWork, pm: sa.Row, gateway: PaymentGateway | None) -> None:
    """A payment method chosen for auto-recharge must be able to pay now: an expired card is
    refused (``card_expired``), and the gateway is asked whether the card would be declined
    (``payment_declined``), so the first recharge does not fail in the night."""
    if pm.type != "card":
        return
    cards.check_not_expired(pm.exp_month, pm.exp_year, uow.now)
    if gateway is not None:
        gateway.verify(CardToken(pm.token, pm.brand, pm.last4, pm.exp_month, pm.exp_year),
                       now=uow.now)


def _auto_recharge_settings(uow: UnitOfWork, tenant: Tenant, min_order: Decimal,
                            body: dict[str, Any], max_order: Decimal = DEFAULT_MAX_ORDER,
                            gateway: PaymentGateway | None = None) -> AutoRecharge:
    enabled = body.get("enabled")
    if not isinstance(enabled, bool):
        raise invalid("validation_error", "enabled must be true or false")
    current = uow.tenants.wallet(tenant.id).auto_recharge
    def amount(field: str, old: Decimal | None) -> Decimal | None:
        raw = body.get(field)
        return old if raw is None else parse_amount(raw, tenant.currency, field=field,
                                                    maximum=max_order)
    pm_id = body.get("payment_method_id") or current.payment_method_id
    if enabled:
        tenancy.check_can_buy_credits(tenant)
        if pm_id is not None:
            _check_can_pay(uow, _payment_method(uow, tenant.id, pm_id), gateway)
    return check_auto_recharge(AutoRecharge(
        enabled, amount("recharge_amount", current.recharge_amount),
        amount("trigger_amount", current.trigger_amount), pm_id), min_order, max_order)


def auto_recharge_body(uow: UnitOfWork, tenant: Tenant, min_order: Decimal,
                       body: dict[str, Any], max_order: Decimal,
                       gateway: PaymentGateway | None = None) -> dict[str, Any]:
    """Checked settings in a form that can wait (as JSON) until an order is paid."""
    s = _auto_recharge_settings(uow, tenant, min_order, body, max_order, gateway)
    return {"enabled": s.enabled, "payment_method_id": s.payment_method_id,
            "recharge_amount": None if s.recharge_amount is None else str(s.recharge_amount),
            "trigger_amount": None if s.trigger_amount is None else str(s.trigger_amount)}


def apply_auto_recharge(uow: UnitOfWork, wallet: WalletRow, body: dict[str, Any]) -> None:
    """Settings from ``auto_recharge_body``, applied by a paid order. ``wallet`` is locked."""
    def amount(raw: str | None) -> Decimal | None:
        return None if raw is None else Decimal(raw)
    wallet.auto_recharge = AutoRecharge(
        body["enabled"], amount(body["recharge_amount"]), amount(body["trigger_amount"]),
        body["payment_method_id"],
        RechargeStatus.ACTIVE if body["enabled"] else RechargeStatus.OFF)
    uow.tenants.save_wallet(wallet)


def set_auto_recharge(uow: UnitOfWork, min_order: Decimal, tenant_id: str,
                      body: dict[str, Any],
                      max_order: Decimal = DEFAULT_MAX_ORDER,
                      gateway: PaymentGateway | None = None) -> dict[str, Any]:
    """Save the settings. A card that cannot pay is refused when chosen (expired always;
    declined when ``gateway`` is given to ask)."""
    tenant = get_tenant(uow, tenant_id)
    settings = _auto_recharge_settings(uow, tenant, min_order, body, max_order, gateway)
    wallet = uow.tenants.wallet(tenant_id, lock=True)
    audit.record(uow, tenant_id, "auto_recharge.set", "auto-recharge",
                 auto_recharge_view(wallet.auto_recharge, tenant.currency),
                 auto_recharge_view(settings, tenant.currency))
    wallet.auto_recharge = settings
    wallet.ar_armed = True
    if settings.enabled and settings.trigger_amount is not None \
            and wallet.balance < settings.trigger_amount:
        from commcredits.services import recharge
        recharge.request(uow, wallet)  # already below the trigger: top up now
        wallet.ar_armed = False
    uow.tenants.save_wallet(wallet)
    return auto_recharge_view(settings, tenant.currency)


def auto_recharge_view(ar: AutoRecharge, currency: str) -> dict[str, Any]:
    def money(v: Decimal | None) -> str | None:
        return None if v is None else fmt(v, currency)
    return {"enabled": ar.enabled, "recharge_amount": money(ar.recharge_amount),
            "trigger_amount": money(ar.trigger_amount),
            "payment_method_id": ar.payment_method_id, "status": ar.status.value}


# -- reading ----------------------------------------------------------------------------------
def credits_view(uow: UnitOfWork, tenant_id: str) -> dict[str, Any]:
    tenant = get_tenant(uow, tenant_id)
    wallet = uow.tenants.wallet(tenant_id)
    cur = tenant.currency
    lot_list = uow.credits.lots(tenant_id)
    available = Wallet(tenant_id, cur, tuple(lot_list), wallet.reserved).available(uow.now)
    return {
        "currency": cur,
        "balance": fmt(wallet.balance, cur),
        "reserved": fmt(wallet.reserved, cur),
        "available": fmt(available, cur),
        "lots": [{"id": lot.id, "amount": fmt(lot.amount, cur),
                  "remaining": fmt(lot.remaining, cur),
                  "purchased_at": lot.purchased_at.isoformat(),
                  "expires_at": lot.expires_at.isoformat(), "source": lot.source.value}
                 for lot in lot_list],
        "auto_recharge": auto_recharge_view(wallet.auto_recharge, cur),
    }


def transactions_view(uow: UnitOfWork, tenant_id: str) -> list[dict[str, Any]]:
    tenant = get_tenant(uow, tenant_id)
    cur = tenant.currency
    return [{"id": line.id, "at": line.at.isoformat(), "kind": line.kind,
             "amount": fmt(line.amount, cur), "balance_after": fmt(line.balance_after, cur),
             "lot_id": line.lot_id, "reference": line.reference}
            for line in uow.credits.ledger(tenant_id)]



def forecast_view(uow: UnitOfWork, tenant_id: str, min_order: Decimal,
                  days: int = 28) -> dict[str, Any]:
    """Spend per day over the last ``days``, the burn rate, when the balance runs out at that
    rate, and a recommended auto-recharge trigger and amount."""
    if not 1 <= days <= 366:
        raise invalid("validation_error", "days must be 1 to 366")
    tenant = get_tenant(uow, tenant_id)
    cur = tenant.currency
    today = uow.now.date()
    since = datetime.combine(today - timedelta(days=days - 1), time.min, tzinfo=UTC)
    by_day = {date.fromisoformat(d): v for d, v in uow.credits.usage_by_day(tenant_id,
                                                                            since).items()}
    view = credits_view(uow, tenant_id)
    available = Decimal(view["available"])
    f = forecasting.forecast(by_day, today, days, available, min_order, cur)
    return {
        "currency": cur, "days": days, "balance": view["balance"],
        "available": view["available"], "spent": fmt(f.spent, cur),
        "burn_per_day": fmt(f.burn_per_day, cur), "runout_days": f.runout_days,
        "runout_date": None if f.runout_date is None else f.runout_date.isoformat(),
        "daily": [{"date": d.isoformat(), "amount": fmt(a, cur)} for d, a in f.daily],
        "recommended": {"trigger_amount": fmt(f.recommended_trigger, cur),
                        "recharge_amount": fmt(f.recommended_recharge, cur)},
    }
