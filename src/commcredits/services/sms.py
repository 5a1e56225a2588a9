"""SMS: outbound messages are charged per segment from credits (the deck's ``sms`` rows);
inbound ones are free. Each message is decided once (idempotent by ``message_id``)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from commcredits.domain import ledger as ledger_rules
from commcredits.domain import licensing
from commcredits.domain import lots as lotrules
from commcredits.domain.calls import OVERAGE_DISABLED
from commcredits.domain.errors import DomainError, conflict
from commcredits.domain.money import ZERO, fmt, round_half_up
from commcredits.domain.numbers import classify
from commcredits.domain.tenancy import Commerce
from commcredits.domain.wallet import Wallet
from commcredits.services import ledger
from commcredits.services.call_records import usage_detail
from commcredits.services.ids import new_id
from commcredits.services.tenants import get_tenant

if TYPE_CHECKING:
    from commcredits.adapters.db.uow import UnitOfWork


def handle(uow: UnitOfWork, body: dict[str, Any]) -> dict[str, Any]:
    if uow.charging.message(body["message_id"]) is not None:
        result = stored_result(uow, body["message_id"], body["tenant_id"])
        if result is None:
            raise conflict("message_id_in_use", "this message_id belongs to another tenant")
        return result
    tenant = get_tenant(uow, body["tenant_id"])
    cur = tenant.currency
    user = uow.directory.user(tenant.id, body["upn"]) if body.get("upn") else None
    segments = int(body["segments"])
    outbound = body["direction"] == "out"
    peer = body["to"] if outbound else body.get("from") or ""
    try:
        number = classify(peer)
    except DomainError:
        number = None
    decision, reason, charge, funding, capability = "allowed", None, ZERO, "free", "FREECALL"
    draws: list[lotrules.Draw] = []
    overage = ZERO
    rate = version = txn_id = None
    held: list[lotrules.Lot] = []
    if outbound:
        version = uow.rates.version(cur)
        deck = uow.rates.deck_at(cur, version)
        rate = deck.lookup(number.digits, "sms") if deck and number else None
        if number is None:
            decision, reason = "blocked", "invalid_number"
        elif any(number.digits.startswith(p) for p in tenant.blocked_prefixes):
            decision, reason = "blocked", "destination_blocked"
        elif user is None:
            decision, reason = "blocked", "unknown_user"
        elif rate is not None:
            price = round_half_up(rate.per_minute * segments, cur)
            capability = licensing.CREDITS
            wallet, lots = uow.tenants.wallet_and_lots(tenant.id)  # locked
            available = Wallet(tenant.id, cur, tuple(lots), wallet.reserved).available(uow.now)
            if licensing.CREDITS in user.licenses and price <= available:
                draws = lotrules.allocate(lots, price, uow.now) if price > ZERO else []
                held = lots
                if draws:
                    txn_id = ledger.post(uow, wallet, ledger_rules.spend(
                        tenant.id, draws, ledger_rules.TxnKind.USAGE, "usage",
                        reference=f"sms {body['message_id']}"))
                charge, funding = price, "credits"
            elif tenant.commerce is Commerce.NCE and tenant.overage_enabled:
                overage, charge, funding = price, price, "overage"
            elif tenant.commerce is Commerce.NCE:  # pay-as-you-go overage is off
                decision, reason = "blocked", OVERAGE_DISABLED
            elif licensing.CREDITS not in user.licenses:
                decision, reason = "blocked", "no_credits_license"
            else:
                decision, reason = "blocked", "insufficient_credits"
    result = {"message_id": body["message_id"], "decision": decision}
    if reason:
        result["reason"] = reason
    else:
        result.update(charge=fmt(charge, cur), currency=cur, funding=funding)
        destination = rate.destination if rate else (number.country if number else None)
        detail = usage_detail(deck_version=version, rate=rate,
                              draws=[(d.lot_id, d.amount) for d in draws], lots=held,
                              txn_ids=[txn_id] if txn_id else [])
        _record(uow, tenant.id, cur, body, user, number, destination, segments, charge,
                overage, funding, capability, draws, detail)
    uow.charging.add_message(body["message_id"], tenant.id, json.dumps(result), uow.now)
    return result


def stored_result(uow: UnitOfWork, message_id: str, tenant_id: str) -> dict[str, Any] | None:
    """The decision already recorded for ``message_id`` (None if there is none)."""
    seen = uow.charging.message(message_id)
    if seen is None or seen.tenant_id != tenant_id:
        return None
    result: dict[str, Any] = json.loads(seen.result)
    return result


def _record(uow: UnitOfWork, tenant_id: str, cur: str, body: dict[str, Any], user: Any,
            number: Any, destination: str | None, segments: int, charge: Decimal,
            overage: Decimal, funding: str, capability: str,
            draws: list[lotrules.Draw], detail: str) -> None:
    scope = None
    if number is not None and user is not None:
        scope = "Domestic" if number.country == user.usage_location else "International"
    uow.charging.add_usage(
        id=new_id("use"), tenant_id=tenant_id, kind="sms", ref=body["message_id"],
        conference_id=None, user_location=user.usage_location if user else None,
        user_id=user.id if user else None, upn=user.upn if user else None,
        display_name=user.display_name if user else None, caller_id=body.get("from"),
        call_type="sms_out" if body["direction"] == "out" else "sms_in",
        number_type=number.number_type if number else None, scope=scope,
        destination=destination, destination_number=body["to"],
        start_time=uow.now, end_time=uow.now, duration_s=0, segments=segments,
        connection_fee=ZERO, charge=charge, currency=cur, capability=capability,
        funding=funding, included_minutes=0, credits_charge=charge - overage,
        overage_charge=overage, uncollected=ZERO,
        lots=json.dumps([[d.lot_id, str(d.amount)] for d in draws]), detail=detail)
