"""The service with the Stripe gateway, talking to a local fake of Stripe's API."""

from __future__ import annotations

import random
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from commcredits.adapters.clock import ManualClock
from commcredits.adapters.db.engine import make_engine
from commcredits.adapters.db.uow import Database
from commcredits.adapters.stripe_gateway import StripeGateway
from commcredits.config import Settings
from commcredits.entrypoints.runtime import Runtime
from tests.payments.stripe_fake import StripeFake, running

WEBHOOK_SECRET = "whsec_test_fake"


def free_port(low: int = 27000, high: int = 27999) -> int:
    """A free loopback port in this suite's range."""
    for _ in range(200):
        port = random.randint(low, high)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port")


@pytest.fixture
def stripe_fake() -> Iterator[StripeFake]:
    with running(free_port()) as fake:
        yield fake


@pytest.fixture
def settings(db_url: str, stripe_fake: StripeFake) -> Settings:
    return Settings(db=db_url, manual_clock=True, smtp_url=None, min_order=50,
                    payment_gateway="stripe", stripe_secret_key="sk_test_fake",
                    stripe_publishable_key="pk_test_fake", stripe_webhook_secret=WEBHOOK_SECRET,
                    stripe_api_base=stripe_fake.base, stripe_timeout_s=1.0,
                    stripe_js_url=f"{stripe_fake.base}/stripe.js")


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    gateway = StripeGateway("sk_test_fake", webhook_secret=WEBHOOK_SECRET,
                            api_base=settings.stripe_api_base, timeout_s=1.0, max_retries=0)
    rt = Runtime(settings, Database(make_engine(settings.db), ManualClock()), gateway, None)
    yield rt
    rt.db.engine.dispose()


def save_card(api: Any, fake: StripeFake, tid: str, number: str = "4242424242424242",
              exp_year: int = 2035) -> str:
    """A card saved as the console saves it: a SetupIntent, confirmed with the card by
    "Stripe.js" (the fake), then read back by the service."""
    setup = api.post(f"/v1/tenants/{tid}/payment-methods/card-setups", expect=201).json()
    assert setup["client_secret"].startswith(setup["setup_intent_id"])
    fake.confirm_setup(setup["setup_intent_id"], number, 12, exp_year)
    pm = api.post(f"/v1/tenants/{tid}/payment-methods",
                  {"type": "card", "setup_intent_id": setup["setup_intent_id"]},
                  expect=201).json()
    assert pm["last4"] == number[-4:]
    return str(pm["id"])
