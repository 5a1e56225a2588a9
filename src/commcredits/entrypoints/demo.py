"""Demo data for a first look: an operator key, a tenant with users, seats, a card and
credits, a console admin. Running it again adds fresh keys to the same demo tenant.

With ``usage_days`` the demo tenant is created that many days ago and those days are filled
with calls and SMS charged through the real path (``entrypoints.demo_usage``): the clock
the demo's database reads is a ``SteppedClock`` until it has caught up with now."""

from __future__ import annotations

import time
from datetime import timedelta
from decimal import Decimal
from importlib import resources

from commcredits.adapters.clock import SteppedClock
from commcredits.domain.access import Principal, Role
from commcredits.domain.tenancy import Tenant
from commcredits.entrypoints.runtime import Runtime
from commcredits.services import access, credits, directory, payments, rating, tenants

DEMO_NAME = "Contoso (demo)"
ADMIN_EMAIL = "admin@contoso.example"
ADMIN_PASSWORD = "demo-password"
USERS = [
    ("alice@contoso.example", "Alice Adams", "US", "+14255550101", ["SPE_E5", "MCOPSTN1",
                                                                    "MCOPSTNPP"],
     "3f1c2b7a-5d4e-4f60-9a8b-0c1d2e3f4a5b"),
    ("bob@contoso.example", "Bob Brown", "US", "+14255550102", ["MCOEV", "MCOPSTN2",
                                                                "MCOPSTNPP"],
     "7b2d4e6f-8a9c-4b1d-a3e5-f7091b2c3d4e"),
    ("carol@contoso.example", "Carol Chen", "GB", "+442079460103", ["MCOMEETADD"],
     "c4e5f607-1829-4a3b-8c5d-6e7f80912a3b"),
    ("dave@contoso.example", "Dave Diaz", "US", None, ["MCOEV"], None),
]
SEATS = {"SPE_E5": 5, "MCOEV": 25, "MCOPSTN1": 20, "MCOPSTN2": 10, "MCOMEETADD": 10}


def load_demo(rt: Runtime, usage_days: int = 0) -> list[str]:
    """Load the demo (idempotent) and print what a person needs: keys, sign-in. With
    ``usage_days``, a tenant created now gets that many days of usage behind it."""
    lines: list[str] = []
    with rt.db.uow(readonly=True) as uow:
        existing = [t for t in uow.tenants.list() if t.name == DEMO_NAME]
        now = uow.now
    clock, real = None, rt.db.clock
    if usage_days and not existing:  # the tenant is made usage_days ago, then time runs
        clock = SteppedClock(now - timedelta(days=usage_days))
        rt.db.clock = clock
    try:
        tenant, keys = _load(rt, lines, existing)
        if clock is not None:
            began = time.monotonic()
            from commcredits.entrypoints.demo_usage import replay
            switch = Principal(keys[1][0], Role.SWITCH)
            done = replay(rt, switch, clock, tenant.id, now - timedelta(days=usage_days),
                          now)
            lines.append(f"# demo usage over {usage_days} days: {done.summary()} "
                         f"in {time.monotonic() - began:.1f} s")
        elif usage_days:
            lines.append("# demo usage: only a newly created demo tenant gets usage")
    finally:
        rt.db.clock = real
    lines.append(f"# console: /login as {ADMIN_EMAIL} / {ADMIN_PASSWORD}")
    lines.append(f"COMMCREDITS_DEMO_TENANT={tenant.id}")
    for _, key, role in keys:
        lines.append(f"COMMCREDITS_{role.value.upper()}_KEY={key}")
    return lines


def _load(rt: Runtime, lines: list[str],
          existing: list[Tenant]) -> tuple[Tenant, list[tuple[str, str, Role]]]:
    with rt.db.uow() as uow:
        if uow.rates.version("USD") is None:
            deck = resources.files("commcredits.data").joinpath("demo_rates.csv")
            imported = rating.import_deck(uow, "USD", deck.read_text(encoding="utf-8"))
            lines.append(f"# demo USD rate deck: {imported['rows']} rates")
        if existing:
            tenant = existing[0]
            lines.append(f"# demo tenant already loaded: {tenant.id}")
        else:
            tenant = tenants.create_tenant(uow, DEMO_NAME, "US", "legacy")
            for sku, qty in SEATS.items():
                directory.add_seats(uow, tenant.id, sku, qty)
            for upn, name, loc, phone, skus, object_id in USERS:
                directory.create_user(uow, tenant.id, upn, name, loc, phone, object_id)
                for sku in skus:
                    directory.assign_license(uow, tenant.id, upn, sku)
            directory.set_billing_contacts(uow, tenant.id, ["billing@contoso.example"])
            directory.add_number(uow, tenant.id, "+18005550100", "toll_free")
            if hasattr(rt.gateway, "begin_setup"):  # Stripe: cards only through its form
                card = credits.add_agreement(uow, tenant.id, "EA-DEMO-0001")
                lines.append("# demo pays by Enterprise Agreement: with the stripe gateway a "
                             "card is added in the console (Stripe's card form)")
            else:
                card = credits.add_card(uow, rt.gateway, tenant.id, "4242424242424242", 12,
                                        max(2030, uow.now.year + 4))  # never saved expired
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
    return tenant, keys
