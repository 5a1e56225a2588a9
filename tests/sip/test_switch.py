"""Kamailio (integrations/kamailio/kamailio.cfg) in front of commcredits, driven by SIPp.

Rates are per second (0.01 a second to the US) and grants come in 4 s slices, so every
second of talk shows in the charge and a grant runs out within a few seconds.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from decimal import Decimal

from tests.sip.harness import UK, US, Stack, free_port

PER_S = Decimal("0.01")  # the deck's US rate, per second


def _settled(stack: Stack, tid: str, n: int, timeout: float = 15) -> list[dict]:
    """The call charges in the ledger, once ``n`` of them are there; each must come from the
    switch's own end report (not from the service settling a silent call)."""
    lines = stack.settled(tid, n, timeout)
    for line in lines:
        assert stack.reported(line["reference"].removeprefix("call ")) == ["200"], line
    return lines


def _report_by_call(stack: Stack, tid: str) -> dict[str, dict]:
    return {row["Call ID"]: row for row in stack.report(tid)}


def test_a_funded_call_is_cut_at_its_grant_and_charged_exactly(stack: Stack) -> None:
    # 0.05 buys 5 s: the first grant is 4 s, the interim adds the last second, the next
    # interim gets nothing more and Kamailio's dialog timer cuts the call at 5 s.
    tid = stack.tenant(fund="0.05")
    run = stack.uac(US, tenant=tid, talk_ms=60_000)
    assert run.returncode == 0, run.out
    (call,) = run.calls.values()
    assert call.how == "cut", run.out
    assert abs(call.talk_s - 5) <= 1, call
    (line,) = _settled(stack, tid, 1)
    assert Decimal(line["amount"]) == Decimal("-0.05")
    row = _report_by_call(stack, tid)[call.call_id]
    assert row["Duration Seconds"] == 5 and row["Charge"] == "0.05"
    credits = stack.credits(tid)
    assert credits["balance"] == "0.00" and credits["reserved"] == "0.00"


def test_a_call_the_caller_ends_is_charged_its_talk(stack: Stack) -> None:
    tid = stack.tenant(fund="1.00")
    run = stack.uac(US, tenant=tid, talk_ms=6_000)  # longer than one 4 s grant: an interim
    (call,) = run.calls.values()
    assert call.how == "hangup", run.out
    (line,) = _settled(stack, tid, 1)
    row = _report_by_call(stack, tid)[call.call_id]
    assert row["Duration Seconds"] == 6 and abs(6 - call.talk_s) < 0.5
    assert Decimal(line["amount"]) == -PER_S * row["Duration Seconds"]
    assert stack.credits(tid)["reserved"] == "0.00"


def test_refusals_map_to_sip_codes_and_charge_nothing(stack: Stack) -> None:
    broke = stack.tenant()
    funded = stack.tenant(fund="1.00")
    cases = [
        (dict(to=US, tenant=broke), 402, "insufficient_credits"),
        (dict(to=US, tenant=funded, upn="bare@contoso.com"), 403, None),
        (dict(to="12", tenant=funded), 484, "invalid_number"),
        (dict(to=US, tenant="ten_does_not_exist"), 404, None),
    ]
    for kw, code, reason in cases:
        run = stack.uac(kw.pop("to"), talk_ms=2_000, **kw)
        assert run.returncode == 0, run.out
        (call,) = run.calls.values()
        assert (call.how, call.sip_code) == ("refused", code), (kw, call, run.out)
        if reason:
            assert call.reason == reason
    for tid, balance in ((broke, "0.00"), (funded, "1.00")):
        assert stack.usage(tid) == []
        credits = stack.credits(tid)
        assert (credits["balance"], credits["reserved"]) == (balance, "0.00")


def test_two_concurrent_calls_never_exceed_a_small_balance(stack: Stack) -> None:
    tid = stack.tenant(fund="0.06")
    run = stack.uac(US, tenant=tid, calls=2, rate=20, limit=2, talk_ms=60_000)
    assert run.returncode == 0, run.out
    assert len(run.calls) == 2 and all(c.how == "cut" for c in run.calls.values()), run.out
    lines = _settled(stack, tid, 2)
    spent = -sum(Decimal(t["amount"]) for t in lines)
    assert len(lines) == 2 and spent <= Decimal("0.06")
    rows = _report_by_call(stack, tid)
    assert sum(r["Duration Seconds"] for r in rows.values()) * PER_S == spent
    credits = stack.credits(tid)
    assert Decimal(credits["balance"]) == Decimal("0.06") - spent >= 0
    assert credits["reserved"] == "0.00"


def test_a_toll_free_call_in_is_refused_at_zero_balance(stack: Stack) -> None:
    tid = stack.tenant()
    run = stack.uac(stack.toll_free_number(tid), tenant=tid, call_type="user_in", talk_ms=2_000)
    (call,) = run.calls.values()
    assert (call.how, call.sip_code, call.reason) == ("refused", 402, "insufficient_credits")
    assert stack.usage(tid) == []


def test_ringing_is_not_billed(stack: Stack) -> None:
    # The gateway rings 8 s: longer than a grant (4 s) plus the silent-call grace (3 s), and
    # shorter than COMMCREDITS_AUTH_TTL_S (12 s). Then 3 s of talk: 3 s billed.
    tid = stack.tenant(fund="1.00")
    run = stack.uac(UK, tenant=tid, ring_ms=8_000, talk_ms=3_000)
    (call,) = run.calls.values()
    assert call.how == "hangup", run.out
    (line,) = _settled(stack, tid, 1)
    row = _report_by_call(stack, tid)[call.call_id]
    assert row["Duration Seconds"] == 3
    # UK: 0.02 a second and a 0.05 connection fee
    assert Decimal(line["amount"]) == Decimal("-0.11") and row["Charge"] == "0.11"


def test_a_paused_service_makes_the_switch_refuse_and_nothing_is_ever_charged(
        stack: Stack) -> None:
    tid = stack.tenant(fund="1.00")
    os.kill(stack.service.pid, signal.SIGSTOP)
    try:
        run = stack.uac(US, tenant=tid, talk_ms=5_000)
    finally:
        os.kill(stack.service.pid, signal.SIGCONT)
    (call,) = run.calls.values()
    assert (call.how, call.sip_code) == ("refused", 503), run.out
    # the queued authorization is still processed once the service runs again; it must
    # neither charge nor hold the money past its authorization TTL (12 s here)
    time.sleep(12 + 3 + 2)
    assert stack.usage(tid) == []
    credits = stack.credits(tid)
    assert (credits["balance"], credits["reserved"]) == ("1.00", "0.00")


def test_fail_open_lets_the_call_through_and_bills_it_when_the_service_is_back(
        stack: Stack) -> None:
    tid = stack.tenant(fund="1.00")
    sip, http = free_port(stack.ports), free_port(stack.ports)
    stack.start_kamailio("kamailio-open", sip_port=sip, http_port=http, FAIL_OPEN=1)
    os.kill(stack.service.pid, signal.SIGSTOP)
    try:
        run = stack.uac(US, tenant=tid, talk_ms=3_000, sip_port=sip)
    finally:
        os.kill(stack.service.pid, signal.SIGCONT)
    (call,) = run.calls.values()
    assert call.how == "hangup", run.out  # let through, unlimited
    deadline = time.monotonic() + 20
    while not stack.usage(tid) and time.monotonic() < deadline:
        time.sleep(0.5)
    (line,) = stack.usage(tid)  # billed once, when the service answers again
    assert stack.reported(call.call_id, "kamailio-open")[-1] == "200"
    row = _report_by_call(stack, tid)[call.call_id]
    assert abs(row["Duration Seconds"] - call.talk_s) <= 1
    assert Decimal(line["amount"]) == -PER_S * row["Duration Seconds"]
    credits = stack.credits(tid)
    assert credits["reserved"] == "0.00"


def test_the_service_pushes_a_cut_and_the_switch_ends_the_call(stack: Stack) -> None:
    tid = stack.tenant(fund="1.00")
    uac = stack.uac_start(US, tenant=tid, talk_ms=60_000)
    time.sleep(3)
    stack.http("POST", "/v1/calls/cut", {"call_id": uac.call_id(), "reason": "fraud_check"})
    run = uac.wait()
    (call,) = run.calls.values()
    assert call.how == "cut", run.out
    # cut about 2 s after the answer (the 3 s wait includes the ringing): far before its 60 s
    assert 1 <= call.talk_s <= 5, call
    (line,) = _settled(stack, tid, 1)
    row = _report_by_call(stack, tid)[call.call_id]
    assert abs(row["Duration Seconds"] - call.talk_s) <= 1
    assert Decimal(line["amount"]) == -PER_S * row["Duration Seconds"]
    assert stack.credits(tid)["reserved"] == "0.00"


def test_the_cut_webhook_needs_the_token(stack: Stack) -> None:
    import httpx

    url = f"http://127.0.0.1:{stack.http_port}/cut"
    body = {"call_id": "nope", "tenant_id": "t", "reason": "x"}
    assert httpx.post(url, json=body, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert httpx.post(url, json={"reason": "x"}, headers={
        "Authorization": f"Bearer {stack.cut_token}"}).status_code == 400
    assert stack.cut("a call that is not here").status_code == 200


def test_the_ledger_verifies(stack: Stack) -> None:
    """After every scenario above: each balance and lot is what the ledger says."""
    done = subprocess.run(["commcredits", "ledger", "verify"], env=stack.env,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ledger OK" in done.stdout
