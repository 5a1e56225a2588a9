"""Demo data for a first look: an operator key, a tenant with users, seats, a card and
credits, a console admin. Running it again adds fresh keys to the same demo tenant."""

from __future__ import annotations

from decimal import Decimal
from importlib import resources

from commcredits.entrypoints.runtime import Runtime
from commcredits.services import access, credits, directory, payments, rating, tenants

DEMO_NAME = "Contoso (demo)"
ADMIN_EMAIL = "admin@contoso.example"
ADMIN_PASSWORD = "demo-password"
USERS = [
    ("alice@contoso.example", "Alice Adams", "US", "+14255550101", ["SPE_E5", "MCOPSTN1",
                                                                    "MCOPSTNPP"]),
    ("bob@contoso.example", "Bob Brown", "US", "+14255550102", ["MCOEV", "MCOPSTN2",
                                                                "MCOPSTNPP"]),
    ("carol@contoso.example", "Carol Chen", "GB", "+442079460103", ["MCOMEETADD"]),
    ("dave@contoso.example", "Dave Diaz", "US", None, ["MCOEV"]),
]
SEATS = {"SPE_E5": 5, "MCOEV": 25, "MCOPSTN1": 20, "MCOPSTN2": 10, "MCOMEETADD": 10}


def load_demo(rt: Runtime) -> list[str]:
    lines: list[str] = []
    with rt.db.uow() as uow:
        if uow.rates.version("USD") is None:
            deck = resources.files("commcredits.data").joinpath("demo_rates.csv")
            imported = rating.import_deck(uow, "USD", deck.read_text(encoding="utf-8"))
            lines.append(f"# demo USD rate deck: {imported['rows']} rates")
        existing = [t for t in uow.tenants.list() if t.name == DEMO_NAME]
        if existing:
            tenant = existing[0]
            lines.append(f"# demo tenant already loaded: {tenant.id}")
        else:
            tenant = tenants.create_tenant(uow, DEMO_NAME, "US", "legacy")
            for sku, qty in SEATS.items():
                directory.add_seats(uow, tenant.id, sku, qty)
            for upn, name, loc, phone, skus in USERS:
                directory.create_user(uow, tenant.id, upn, name, loc, phone)
                for sku in skus:
                    directory.assign_license(uow, tenant.id, upn, sku)
            directory.set_billing_contacts(uow, tenant.id, ["billing@contoso.example"])
            directory.add_number(uow, tenant.id, "+18005550100", "toll_free")
            card = credits.add_card(uow, rt.gateway, tenant.id, "4242424242424242", 12, 2030)
            access.add_admin(uow, tenant.id, ADMIN_EMAIL, ADMIN_PASSWORD, "global_admin")
            lines.append(f"# demo tenant {tenant.id}: 4 users, 100.00 {tenant.currency} of "
                         f"credits (min order {Decimal(rt.settings.min_order)})")
        keys = [access.create_api_key(uow, "operator", None),
                access.create_api_key(uow, "switch", None),
                access.create_api_key(uow, "global_admin", tenant.id)]
        uow.commit()
    if not existing:  # paid once the tenant exists (the card is charged outside any transaction)
        payments.place_order(rt.db, rt.gateway, payments.Limits(rt.settings.min_order),
                             tenant.id, "100.00", card["id"], auto_recharge={
                                 "enabled": True, "recharge_amount": "50.00",
                                 "trigger_amount": "10.00"})
    lines.append(f"# console: /login as {ADMIN_EMAIL} / {ADMIN_PASSWORD}")
    lines.append(f"COMMCREDITS_DEMO_TENANT={tenant.id}")
    for _, key, role in keys:
        lines.append(f"COMMCREDITS_{role.value.upper()}_KEY={key}")
    return lines
