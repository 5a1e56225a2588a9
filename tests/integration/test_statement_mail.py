"""The month-close e-mail (issue 21): when a month is over, each tenant's billing contacts get
one ``monthly_statement`` notice through the outbox, delivered over SMTP (aiosmtpd), once per
tenant and month however many instances run the job."""

from __future__ import annotations

import quopri
import threading
from datetime import UTC, datetime

from commcredits.adapters.mailer import SmtpMailer
from commcredits.services import jobs, statement_mail
from tests.api.voice import UK, make_voice
from tests.integration.test_smtp_delivery import notes, smtp_port, start  # noqa: F401


def test_a_closed_month_mails_its_statement_once(api, smtp_port):  # noqa: F811
    controller, inbox = start(smtp_port)
    try:
        api.rt.mailer = SmtpMailer(f"smtp://127.0.0.1:{smtp_port}", "credits@operator.example")
        voice = make_voice(api)  # March 2030, billing@contoso.com
        voice.fund("20.00")
        voice.call("c", UK)
        voice.end("c", 120)
        ran = api.set_clock("2030-03-31T23:59:00Z")
        assert ran["jobs"]["statements"] == 0  # not over yet
        ran = api.set_clock("2030-04-01T00:05:00Z")
        assert ran["jobs"]["statements"] == 1
        mails = [m for m in inbox.messages if "statement for 2030-03" in m[1]]
        assert len(mails) == 1 and mails[0][0] == ["billing@contoso.com"]
        march = api.get(f"/v1/tenants/{voice.tid}/statements/2030-03", expect=200).json()
        body = quopri.decodestring(mails[0][2]).decode()
        assert f"Closing balance: {march['closing_balance']} USD" in body
        assert f"Usage: international calls: {march['usage']['international']} USD" in body
        assert f"/v1/tenants/{voice.tid}/statements/2030-03?format=pdf" in body
        ran = api.set_clock("2030-04-02T00:00:00Z")
        assert ran["jobs"]["statements"] == 0
        kinds = [n["kind"] for n in notes(api, voice.tid)]
        assert kinds.count("monthly_statement") == 1
        # April had no movement: no e-mail for it in May
        ran = api.set_clock("2030-05-01T00:05:00Z")
        assert ran["jobs"]["statements"] == 0
    finally:
        controller.stop()


def test_instances_racing_mail_each_tenant_once(api, second):
    voice = make_voice(api)
    voice.fund("20.00")
    api.put(f"/v1/tenants/{voice.tid}/billing-contacts",
            {"emails": ["a@contoso.com", "b@contoso.com"]}, expect=200)
    other = api.tenant("GB")
    api.put(f"/v1/tenants/{other}/billing-contacts", {"emails": ["c@fabrikam.com"]})
    api.order(other, "10.00", api.card(other))
    with api.rt.db.uow() as uow:  # the month is over; no job has run yet
        uow.clock.set(uow.conn, datetime(2030, 4, 1, 0, 1, tzinfo=UTC))
        uow.commit()
    queued: list[int] = []
    barrier = threading.Barrier(2)

    def run(rt):  # type: ignore[no-untyped-def]
        barrier.wait()
        queued.append(jobs.mail_statements(jobs.JobContext(rt.db, None)))
    threads = [threading.Thread(target=run, args=(rt,)) for rt in (api.rt, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(queued) == 3  # a@, b@ and c@, each once
    with api.rt.db.uow() as uow:
        assert statement_mail.due(uow, "2030-03") == []
        assert statement_mail.mail_one(uow, voice.tid, "2030-03") == 0
