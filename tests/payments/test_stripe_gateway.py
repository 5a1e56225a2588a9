"""Issue 23: the Stripe gateway, run against a local fake of Stripe's API: cards saved through
SetupIntents (never a card number), PaymentIntents charged off-session with an idempotency
key derived from the payment attempt, declines and 3-D Secure as refusals the admin sees,
timeouts that leave the attempt pending until a retry, the webhook or the ``payments`` job
settles it (once), signed webhooks (duplicates change nothing) and refunds."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from commcredits.adapters.db import schema
from commcredits.services import ledger, payments
from tests.payments.conftest import save_card

CARD = "4242424242424242"
PI = "/v1/payment_intents"


def _attempts(api, tid):
    with api.rt.db.uow(readonly=True) as uow:
        return list(uow.conn.execute(sa.select(schema.payment_attempts).where(
            schema.payment_attempts.c.tenant_id == tid)))


def _ledger_ok(api) -> None:
    with api.rt.db.uow(readonly=True) as uow:
        assert ledger.verify(uow)[1] == []


def test_a_card_is_saved_through_a_setup_intent_and_an_order_charges_it(api, stripe_fake):
    tid = api.tenant("US")
    pm = save_card(api, stripe_fake, tid)
    order = api.order(tid, "50.00", pm)
    assert order.status_code == 201, order.text
    (intent,) = stripe_fake.succeeded()
    assert (intent["amount"], intent["currency"], intent["off_session"]) == (5000, "usd", "true")
    (attempt,) = _attempts(api, tid)
    assert intent["metadata"] == {"attempt_id": attempt.id}
    assert attempt.gateway_reference == intent["id"] and attempt.status == "succeeded"
    charge_keys = [k for path, k in stripe_fake.keys_seen if path == PI]
    assert charge_keys == [f"commcredits-{attempt.id}"]
    assert api.credits(tid)["balance"] == "50.00"
    with api.rt.db.uow(readonly=True) as uow:
        row = uow.credits.payment_method(tid, pm)
        dump = " ".join(str(v) for t in (schema.payment_methods, schema.audit_log)
                        for r in uow.conn.execute(sa.select(t)) for v in r)
    assert row.token.startswith("cus_") and "/pm_" in row.token and row.gateway == "stripe"
    assert (row.brand, row.last4, row.exp_year) == ("visa", "4242", 2035)
    assert CARD not in dump  # the number never reached the service
    # a card number sent to the service is refused with this gateway, and nothing is saved
    refused = api.post(f"/v1/tenants/{tid}/payment-methods", {
        "type": "card", "card_number": CARD, "exp_month": 12, "exp_year": 2035}, expect=422)
    assert refused.json()["error"]["code"] == "card_number_not_accepted"
    assert len(api.get(f"/v1/tenants/{tid}/payment-methods", expect=200).json()) == 1
    _ledger_ok(api)


def test_declines_and_3d_secure_are_refusals_that_fund_nothing(api, stripe_fake):
    tid = api.tenant("US")
    for number, code in (("4000000000000341", "payment_declined"),
                         ("4000002760003184", "authentication_required")):
        pm = save_card(api, stripe_fake, tid, number)
        r = api.order(tid, "50.00", pm)
        assert r.status_code == 402, r.text
        assert r.json()["error"]["code"] == code
    assert api.credits(tid)["balance"] == "0.00"
    assert {a.status for a in _attempts(api, tid)} == {"failed"}
    assert not stripe_fake.succeeded()
    # a card refused when it is saved is not saved
    setup = api.post(f"/v1/tenants/{tid}/payment-methods/card-setups", expect=201).json()
    status, _ = stripe_fake._confirm_setup(setup["setup_intent_id"], {
        "card": {"number": "4000000000000002", "exp_month": "12", "exp_year": "2035"}})
    assert status == 402
    r = api.post(f"/v1/tenants/{tid}/payment-methods",
                 {"type": "card", "setup_intent_id": setup["setup_intent_id"]}, expect=402)
    assert r.json()["error"]["code"] == "card_not_saved"


def test_an_auto_recharge_that_needs_3d_secure_is_a_failure_the_admins_are_told(api, stripe_fake):
    tid = api.tenant("US")
    api.put(f"/v1/tenants/{tid}/billing-contacts", {"emails": ["bill@contoso.com"]}, expect=200)
    pm = save_card(api, stripe_fake, tid, "4000002760003184")
    api.put(f"/v1/tenants/{tid}/credits/auto-recharge", {
        "enabled": True, "recharge_amount": "50.00", "trigger_amount": "10.00",
        "payment_method_id": pm}, expect=200)  # the balance, 0.00, is below: a recharge
    with api.rt.db.uow(readonly=True) as uow:
        tried = uow.charging.open_recharge(tid)
    assert (tried.status, tried.last_error) == ("failed", "authentication_required")
    (intent,) = stripe_fake.intents
    assert intent["off_session"] == "true" and intent["status"] == "requires_payment_method"
    notices = api.get(f"/v1/tenants/{tid}/notifications", expect=200).json()
    assert [n["to"] for n in notices if n["kind"] == "recharge_failed"] == ["bill@contoso.com"]
    with api.rt.db.uow(readonly=True) as uow:
        body = uow.conn.scalar(sa.select(schema.notifications.c.body).where(
            schema.notifications.c.tenant_id == tid,
            schema.notifications.c.kind == "recharge_failed"))
    assert "authentication_required" in body  # the admin is told why


def test_a_timeout_leaves_the_attempt_pending_and_a_retry_charges_once(api, stripe_fake):
    tid = api.tenant("US")
    pm = save_card(api, stripe_fake, tid)
    stripe_fake.stall(PI, 2.5)  # Stripe takes the money; its answer comes after our 1 s
    key = {"Idempotency-Key": "order-1"}
    body = {"amount": "50.00", "payment_method_id": pm}
    first = api.post(f"/v1/tenants/{tid}/credits/orders", body, headers=key)
    assert first.status_code == 503, first.text
    assert first.json()["error"]["code"] == "payment_gateway_unavailable"
    assert first.headers["Retry-After"]
    (attempt,) = _attempts(api, tid)
    assert attempt.status == "pending" and len(stripe_fake.succeeded()) == 1
    assert api.credits(tid)["balance"] == "0.00"  # not funded before we know
    again = api.post(f"/v1/tenants/{tid}/credits/orders", body, headers=key, expect=201)
    assert again.json()["amount"] == "50.00"
    assert len(stripe_fake.succeeded()) == 1  # Stripe replayed its first answer
    assert [k for path, k in stripe_fake.keys_seen if path == PI] == \
        [f"commcredits-{attempt.id}"] * 2  # the retry sent the same key
    assert api.credits(tid)["balance"] == "50.00"
    _ledger_ok(api)


def test_the_payments_job_settles_a_charge_we_never_heard_back_about(api, stripe_fake):
    tid = api.tenant("US")
    pm = save_card(api, stripe_fake, tid)
    stripe_fake.stall(PI, 2.5)
    assert api.order(tid, "75.00", pm).status_code == 503
    now = api.get("/v1/clock", expect=200).json()["now"]
    from datetime import datetime
    assert api.credits(tid)["balance"] == "0.00"
    # six minutes later the due jobs run (the manual clock runs them), ``payments`` among them
    api.set_clock((datetime.fromisoformat(now.replace("Z", "+00:00"))
                   + timedelta(minutes=6)).isoformat())
    assert api.credits(tid)["balance"] == "75.00"
    assert len(stripe_fake.succeeded()) == 1  # charged again with the same key: Stripe's replay
    (attempt,) = _attempts(api, tid)
    assert attempt.status == "succeeded"
    assert payments.reconcile(api.rt.db, api.rt.gateway, timedelta(0)) == []


def test_the_webhook_settles_a_pending_charge_once_and_checks_its_signature(api, stripe_fake):
    tid = api.tenant("US")
    pm = save_card(api, stripe_fake, tid)
    stripe_fake.stall(PI, 2.5)
    assert api.order(tid, "60.00", pm).status_code == 503
    (intent,) = stripe_fake.succeeded()
    payload, signature = stripe_fake.event("payment_intent.succeeded", intent)

    def post(body: bytes, sig: str):
        return api.client.post("/v1/webhooks/stripe", content=body,
                               headers={"Stripe-Signature": sig,
                                        "Content-Type": "application/json"})
    forged = post(payload, stripe_fake.event("payment_intent.succeeded", intent,
                                             secret="whsec_someone_else")[1])
    assert forged.status_code == 422 and forged.json()["error"]["code"] == "invalid_signature"
    tampered = post(payload.replace(b'"amount": 6000', b'"amount": 9000'), signature)
    assert tampered.status_code == 422
    assert api.credits(tid)["balance"] == "0.00"  # nothing changed
    first = post(payload, signature)
    assert first.status_code == 200, first.text
    assert first.json()["outcome"] == "settled"
    for _ in range(2):  # Stripe delivers at least once: the same event again changes nothing
        assert post(payload, signature).json()["outcome"] == "already_settled"
    credits = api.credits(tid)
    assert credits["balance"] == "60.00" and len(credits["lots"]) == 1
    (attempt,) = _attempts(api, tid)
    assert (attempt.status, attempt.gateway_reference) == ("succeeded", intent["id"])
    # a retry of the same request now finds it settled: still one lot, one charge
    assert payments.reconcile(api.rt.db, api.rt.gateway, timedelta(0)) == []
    assert len(api.credits(tid)["lots"]) == 1 and len(stripe_fake.succeeded()) == 1
    _ledger_ok(api)


def test_a_failed_payment_reported_by_the_webhook_fails_the_pending_attempt(api, stripe_fake):
    tid = api.tenant("US")
    pm = save_card(api, stripe_fake, tid)
    stripe_fake.fail(PI)  # Stripe's 500: nothing charged, nothing known
    assert api.order(tid, "50.00", pm).status_code == 503
    (attempt,) = _attempts(api, tid)
    failed = {"id": "pi_unknown", "object": "payment_intent", "status": "requires_payment_method",
              "metadata": {"attempt_id": attempt.id},
              "last_payment_error": {"code": "card_declined", "decline_code": "insufficient_funds"}}
    payload, signature = stripe_fake.event("payment_intent.payment_failed", failed)
    r = api.client.post("/v1/webhooks/stripe", content=payload,
                        headers={"Stripe-Signature": signature})
    assert r.json()["outcome"] == "settled"
    (attempt,) = _attempts(api, tid)
    assert (attempt.status, attempt.error_code) == ("failed", "payment_declined")


def test_money_taken_that_no_lot_holds_is_refunded_once(api, stripe_fake):
    tid = api.tenant("US")
    pm = save_card(api, stripe_fake, tid)
    stripe_fake.stall(PI, 2.5)
    assert api.order(tid, "50.00", pm).status_code == 503
    (intent,) = stripe_fake.succeeded()
    (attempt,) = _attempts(api, tid)
    with api.rt.db.uow() as uow:  # what settle records when the lot cannot be made
        uow.payments.update(attempt.id, status="charged", error_code="balance_limit",
                            gateway_reference=intent["id"], updated_at=uow.now)
        uow.commit()
    path = f"/v1/payment-attempts/{attempt.id}/refund"
    done = api.post(path, expect=200).json()
    assert done["status"] == "refunded" and done["refund_reference"].startswith("re_")
    assert api.post(path, expect=200).json() == done  # a repeat refunds nothing more
    (refund,) = stripe_fake.refunds
    assert (refund["payment_intent"], refund["amount"]) == (intent["id"], 5000)
    good = save_card(api, stripe_fake, tid)
    api.order(tid, "50.00", good)
    paid = next(a for a in _attempts(api, tid) if a.status == "succeeded")
    r = api.post(f"/v1/payment-attempts/{paid.id}/refund", expect=409)
    assert r.json()["error"]["code"] == "not_refundable"
    tenant_key = api.new_key("global_admin", tid)
    api.post(path, key=tenant_key, expect=403)


def test_a_card_saved_by_the_webhook_and_by_the_browser_is_stored_once(api, stripe_fake):
    tid = api.tenant("US")
    setup = api.post(f"/v1/tenants/{tid}/payment-methods/card-setups", expect=201).json()
    intent = stripe_fake.confirm_setup(setup["setup_intent_id"], CARD)
    payload, signature = stripe_fake.event("setup_intent.succeeded", intent)
    r = api.client.post("/v1/webhooks/stripe", content=payload,
                        headers={"Stripe-Signature": signature})
    assert r.json()["outcome"] == "card_saved"
    again = api.client.post("/v1/webhooks/stripe", content=payload,
                            headers={"Stripe-Signature": signature})
    assert again.json()["outcome"] == "already_saved"
    api.post(f"/v1/tenants/{tid}/payment-methods",
             {"type": "card", "setup_intent_id": setup["setup_intent_id"]}, expect=201)
    assert len(api.get(f"/v1/tenants/{tid}/payment-methods", expect=200).json()) == 1
    other = api.tenant("US")  # another tenant cannot claim this setup
    r = api.post(f"/v1/tenants/{other}/payment-methods",
                 {"type": "card", "setup_intent_id": setup["setup_intent_id"]}, expect=422)
    assert not api.get(f"/v1/tenants/{other}/payment-methods", expect=200).json()


def test_the_demo_loads_with_the_stripe_gateway(api, stripe_fake):
    """No card number may be given to Stripe's gateway: the demo pays by agreement."""
    from commcredits.entrypoints.demo import load_demo
    lines = load_demo(api.rt)
    tid = next(x.split("=", 1)[1] for x in lines if x.startswith("COMMCREDITS_DEMO_TENANT="))
    (pm,) = api.get(f"/v1/tenants/{tid}/payment-methods", expect=200).json()
    assert pm["type"] == "enterprise_agreement"
    assert api.credits(tid)["balance"] == "100.00" and not stripe_fake.intents
