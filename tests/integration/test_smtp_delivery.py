"""Notifications are delivered to a real SMTP server (aiosmtpd on loopback); a failed
delivery is retried later and never lost."""

from __future__ import annotations

from email import message_from_bytes
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from commcredits.adapters.mailer import SmtpMailer
from commcredits.entrypoints.embedded import free_port


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = message_from_bytes(envelope.content)
        self.messages.append((list(envelope.rcpt_tos), msg["Subject"], msg.get_payload()))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_port() -> int:
    return free_port()


def start(port: int) -> tuple[Controller, Inbox]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    return controller, inbox


def notes(api, tid):
    return api.get(f"/v1/tenants/{tid}/notifications", expect=200).json()


def test_expiry_emails_reach_every_billing_contact(api, smtp_port):
    controller, inbox = start(smtp_port)
    try:
        api.rt.mailer = SmtpMailer(f"smtp://127.0.0.1:{smtp_port}", "credits@operator.example")
        api.set_clock("2030-01-10T00:00:00Z")
        tid = api.tenant("US")
        api.put(f"/v1/tenants/{tid}/billing-contacts",
                {"emails": ["billing@contoso.com", "cfo@contoso.com"]}, expect=200)
        api.order(tid, "70.00", api.card(tid))
        ran = api.set_clock("2030-12-20T00:00:00Z")
        assert ran["jobs"]["notify"] == 2
        assert sorted(m[0][0] for m in inbox.messages) == ["billing@contoso.com",
                                                           "cfo@contoso.com"]
        assert all("70.00 USD" in m[1] and "expire" in m[1] for m in inbox.messages)
        assert {n["status"] for n in notes(api, tid)} == {"sent"}
        api.set_clock("2031-01-10T00:00:00Z")  # expiry empties the wallet
        assert len(inbox.messages) == 6
        expired = [m for m in inbox.messages if "expired" in m[1]]
        assert len(expired) == 2 and "forfeited" in expired[0][2]
        zero = [m for m in inbox.messages if "balance is 0.00 USD" in m[1]]
        assert sorted(m[0][0] for m in zero) == ["billing@contoso.com", "cfo@contoso.com"]
    finally:
        controller.stop()


def test_failed_delivery_is_retried_not_lost(api, smtp_port):
    api.rt.mailer = SmtpMailer(f"smtp://127.0.0.1:{smtp_port}", "credits@operator.example",
                               timeout=2)
    api.set_clock("2030-01-10T00:00:00Z")
    tid = api.tenant("US")
    api.put(f"/v1/tenants/{tid}/billing-contacts", {"emails": ["billing@contoso.com"]})
    api.order(tid, "70.00", api.card(tid))
    ran = api.set_clock("2031-01-10T00:00:00Z")  # expiry; the SMTP server is down
    assert ran["jobs"]["notify"] == 0
    by_kind = {n["kind"]: n for n in notes(api, tid)}
    assert set(by_kind) == {"lot_expired", "balance_zero"}
    assert all(n["status"] == "retrying" and n["attempts"] == 1 for n in by_kind.values())
    controller, inbox = start(smtp_port)
    try:
        ran = api.set_clock("2031-01-10T00:00:30Z")  # retry not due yet (1 minute)
        assert ran["jobs"]["notify"] == 0 and inbox.messages == []
        ran = api.set_clock("2031-01-10T00:01:00Z")
        assert ran["jobs"]["notify"] == 2
        assert all(n["status"] == "sent" and n["attempts"] == 2 for n in notes(api, tid))
        assert [m[0] for m in inbox.messages] == [["billing@contoso.com"]] * 2
    finally:
        controller.stop()
