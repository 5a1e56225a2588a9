"""Saving a card without the card number passing through the service (the Stripe gateway).

``begin`` asks the gateway for a setup the browser completes with the gateway's own card
form (Stripe.js: a SetupIntent's client secret); ``finish`` reads back what the gateway
saved and stores it as a payment method (token, brand, last4, expiry, fingerprint), once:
the browser and the gateway's webhook may both report the same setup, and the same card
saved again through another setup (a new token, the same fingerprint and expiry) is the
entry the tenant already has. Gateways without such a flow (``test``) refuse it with
``card_setup_not_supported`` (409).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from commcredits.domain.errors import conflict
from commcredits.services import credits
from commcredits.services.ports import CardToken, PaymentGateway
from commcredits.services.tenants import get_tenant

if TYPE_CHECKING:
    from commcredits.adapters.db.uow import Database


class SetupGateway(Protocol):
    name: str

    def begin_setup(self, tenant_id: str, customer: str | None) -> Any: ...

    def finish_setup(self, setup_intent_id: str, tenant_id: str) -> CardToken: ...


def _setup_gateway(gateway: PaymentGateway) -> SetupGateway:
    if not hasattr(gateway, "begin_setup"):
        raise conflict("card_setup_not_supported", f"the {gateway.name} gateway takes the "
                       "card number itself (card_number, exp_month, exp_year)")
    return gateway  # type: ignore[return-value]


def begin(db: Database, gateway: PaymentGateway, tenant_id: str) -> Any:
    """A setup for one more card of the tenant (on its gateway customer, if it has one)."""
    setup = _setup_gateway(gateway)
    with db.uow(readonly=True) as uow:
        get_tenant(uow, tenant_id)
        customer = next((r.token.partition("/")[0] for r in uow.credits.payment_methods(
            tenant_id, with_removed=True) if r.gateway == gateway.name and r.token), None)
    return setup.begin_setup(tenant_id, customer)  # no transaction held while it answers


def finish(db: Database, gateway: PaymentGateway, tenant_id: str,
           setup_intent_id: str) -> tuple[dict[str, Any], bool]:
    """Store the card the setup saved. Returns its view and whether it is a new entry (not
    when this setup, or the same card through another one, was stored already)."""
    token = _setup_gateway(gateway).finish_setup(setup_intent_id, tenant_id)
    with db.uow() as uow:
        get_tenant(uow, tenant_id)
        seen = next((r for r in uow.credits.payment_methods(tenant_id)
                     if r.gateway == gateway.name and r.token == token.token), None)
        if seen is not None:
            return credits.payment_method_view(seen), False
        view, new = credits.save_token(uow, gateway.name, tenant_id, token)
        uow.commit()
    return view, new
