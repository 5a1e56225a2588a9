"""Issue 19 point 7 with the Stripe gateway: the same card saved twice through Stripe's
SetupIntent flow is one entry. Every SetupIntent gives a new PaymentMethod (a new token), so
the card is known by Stripe's ``fingerprint`` (the same for the same card number within the
account) and its expiry, as the test gateway knows it by brand, last4 and expiry: the second
save answers the first entry (201, same ``id``). The card number is never stored. Both
databases (the ``db_url`` fixture)."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from commcredits.adapters.db.schema import payment_methods
from commcredits.services import payment_methods as pm_service
from tests.payments.conftest import save_card
from tests.payments.stripe_fake import StripeFake

CARD = "4242424242424242"
OTHER = "5555555555554444"


def _saved(api: Any, tid: str) -> list[dict[str, Any]]:
    return api.get(f"/v1/tenants/{tid}/payment-methods", expect=200).json()


def _rows(api: Any, tid: str) -> list[dict[str, Any]]:
    with api.rt.db.uow(readonly=True) as uow:
        return [dict(r._mapping) for r in uow.conn.execute(
            sa.select(payment_methods).where(payment_methods.c.tenant_id == tid))]


def test_the_same_card_saved_twice_through_stripe_is_one_entry(
        api: Any, stripe_fake: StripeFake) -> None:
    tid = api.tenant("US")
    first = save_card(api, stripe_fake, tid, CARD)
    again = save_card(api, stripe_fake, tid, CARD)  # a second SetupIntent, a new pm_…
    assert again == first
    assert [pm["id"] for pm in _saved(api, tid)] == [first]
    (row,) = _rows(api, tid)
    assert row["fingerprint"] == stripe_fake.fingerprint(CARD)
    assert all(CARD not in str(v) for v in row.values())  # never the card number
    # another tenant's same card is its own entry
    other = api.tenant("US")
    assert save_card(api, stripe_fake, other, CARD) != first
    # once removed, the card can be saved afresh
    with api.rt.db.uow() as uow:
        pm_service.remove(uow, tid, first)
        uow.commit()
    assert save_card(api, stripe_fake, tid, CARD) != first
    assert len(_saved(api, tid)) == 1


def test_two_different_cards_through_stripe_are_two_entries(
        api: Any, stripe_fake: StripeFake) -> None:
    tid = api.tenant("US")
    visa = save_card(api, stripe_fake, tid, CARD)
    mastercard = save_card(api, stripe_fake, tid, OTHER)
    assert visa != mastercard
    # the same number with another expiry (a reissued card) is another entry too
    renewed = save_card(api, stripe_fake, tid, CARD, exp_year=2036)
    assert renewed not in (visa, mastercard)
    assert {pm["id"] for pm in _saved(api, tid)} == {visa, mastercard, renewed}
    fingerprints = {r["id"]: r["fingerprint"] for r in _rows(api, tid)}
    assert fingerprints[visa] == fingerprints[renewed] != fingerprints[mastercard]


def test_the_same_card_reported_by_the_webhook_is_already_saved(
        api: Any, stripe_fake: StripeFake) -> None:
    """A second setup of the same card, reported by Stripe's webhook, stores nothing more."""
    tid = api.tenant("US")
    first = save_card(api, stripe_fake, tid, CARD)
    setup = api.post(f"/v1/tenants/{tid}/payment-methods/card-setups", expect=201).json()
    intent = stripe_fake.confirm_setup(setup["setup_intent_id"], CARD)
    payload, signature = stripe_fake.event("setup_intent.succeeded", intent)
    r = api.client.post("/v1/webhooks/stripe", content=payload,
                        headers={"Stripe-Signature": signature})
    assert r.status_code == 200 and r.json()["outcome"] == "already_saved"
    assert [pm["id"] for pm in _saved(api, tid)] == [first]


def test_the_same_card_finished_through_two_setups_at_once_is_one_entry(
        api: Any, stripe_fake: StripeFake) -> None:
    """The browser and the webhook of two setups of one card, at the same moment, take
    turns (the wallet lock): one entry."""
    from concurrent.futures import ThreadPoolExecutor

    from commcredits.services import card_setup

    tid = api.tenant("US")
    setups = []
    for _ in range(2):
        setup = api.post(f"/v1/tenants/{tid}/payment-methods/card-setups", expect=201).json()
        stripe_fake.confirm_setup(setup["setup_intent_id"], CARD)
        setups.append(setup["setup_intent_id"])

    def finish(setup_intent_id: str) -> tuple[str, bool]:
        view, new = card_setup.finish(api.rt.db, api.rt.gateway, tid, setup_intent_id)
        return str(view["id"]), new

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(finish, setups * 2))
    assert len({pm_id for pm_id, _ in answers}) == 1
    assert sum(new for _, new in answers) == 1
    assert len(_saved(api, tid)) == 1
