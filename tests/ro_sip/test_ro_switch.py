"""Kamailio's ims_charging (cdp, Diameter Ro) in front of commcredits, for real: SIPp callers
through Kamailio to a SIPp gateway, every call charged over Diameter Credit-Control.

Rates are per second (UK: 1.20/min = 0.02/s + 0.05 a call), so every second shows."""

from __future__ import annotations

import subprocess
import time
from decimal import Decimal

from tests.diameter.client import INITIAL, TERMINATION, UPDATE, Client, result
from tests.ro_sip.harness import REPLAY_PEER, SLICE_S, UK, Stack

PER_S, FEE = Decimal("0.02"), Decimal("0.05")


def _charged(stack: Stack, session: str) -> int:
    """The seconds ims_charging reported for ``session`` (CCR-Updates + CCR-Termination)."""
    rows = stack.ccrs(session)
    assert rows and rows[-1][0] == "TERMINATION", rows
    return sum(r[3] for r in rows)


def _new_session(stack: Stack, before: list[str]) -> str:
    deadline = time.monotonic() + 20
    while True:
        fresh = [s for s in stack.sessions() if s not in before]
        if fresh:
            return fresh[-1]
        assert time.monotonic() < deadline, "no CCR-Initial reached commcredits"
        time.sleep(0.1)


def _terminated(stack: Stack, session: str) -> None:
    deadline = time.monotonic() + 20
    while not any(r[0] == "TERMINATION" for r in stack.ccrs(session)):
        assert time.monotonic() < deadline, f"no CCR-Termination for {session}"
        time.sleep(0.2)


def test_a_call_extended_through_updates_is_charged_exactly(stack: Stack) -> None:
    tid, number = stack.subscriber("10.00")
    before = stack.sessions()
    run = stack.uac(number, talk_ms=25_000)
    (call,) = run.calls.values()
    assert call.how == "hangup", run.out
    session = _new_session(stack, before)
    _terminated(stack, session)
    kinds = [r[0] for r in stack.ccrs(session)]
    assert kinds.count("UPDATE") >= 2, kinds  # 10 s granted at a time
    used = _charged(stack, session)
    assert call.talk_s <= used <= call.talk_s + 2, (used, call.talk_s)
    assert stack.credits(tid)["balance"] == str(Decimal("10.00") - FEE - used * PER_S)
    assert [c["amount"] for c in stack.charges(tid)] == [str(-(FEE + used * PER_S))]


def test_a_call_is_cut_when_its_credit_runs_out(stack: Stack) -> None:
    tid, number = stack.subscriber("0.29")  # 0.05 + 12 s
    before = stack.sessions()
    run = stack.uac(number, talk_ms=60_000)
    (call,) = run.calls.values()
    assert call.how == "cut", run.out  # Kamailio sent the BYE, not the caller
    assert 11 <= call.talk_s <= 14, call.talk_s
    session = _new_session(stack, before)
    _terminated(stack, session)
    c = stack.credits(tid)
    assert (c["balance"], c["reserved"]) == ("0.00", "0.00")


def test_ringing_is_not_charged(stack: Stack) -> None:
    tid, number = stack.subscriber("10.00")
    before = stack.sessions()
    run = stack.uac(number, talk_ms=5_000, ring_ms=4_000)
    (call,) = run.calls.values()
    assert call.how == "hangup", run.out
    session = _new_session(stack, before)
    _terminated(stack, session)
    used = _charged(stack, session)
    assert 5 <= used <= 7, used  # the talk, not the 4 s of ringing
    assert stack.credits(tid)["balance"] == str(Decimal("10.00") - FEE - used * PER_S)


def test_refusals_get_the_right_sip_answer(stack: Stack) -> None:
    _, poor = stack.subscriber(None)  # no credits: 4012
    _, bare = stack.subscriber("10.00", skus=("MCOEV",))  # no calling licence: 4010
    for frm, code in ((poor, 402), (bare, 403), ("+14255550999", 404)):  # 5030
        run = stack.uac(frm, talk_ms=2_000)
        (call,) = run.calls.values()
        assert (call.how, call.sip_code) == ("refused", code), (frm, run.out)
    results = [r[4] for r in stack.ccrs() if r[0] == "INITIAL"][-3:]
    assert results == [4012, 4010, 5030]


def test_an_operator_cut_sends_an_asr_and_ends_the_call(stack: Stack) -> None:
    tid, number = stack.subscriber("10.00")
    before = stack.sessions()
    uac = stack.uac_start(number, talk_ms=60_000)
    session = _new_session(stack, before)
    time.sleep(3)  # talking
    stack.http("POST", "/v1/calls/cut", {"call_id": f"ro:{session}"})
    cut_at = time.monotonic()
    run = uac.wait()
    (call,) = run.calls.values()
    assert call.how == "cut", run.out
    assert session in stack.asrs()
    # Kamailio answered the ASR (ims_diameter_server's event route): the cut is delivered
    cuts = stack.http("GET", "/v1/switch-cuts")
    assert [(c["call_id"], c["status"]) for c in cuts if c["call_id"] == f"ro:{session}"] \
        == [(f"ro:{session}", "sent")]
    # ims_charging ends the dialog when the CCR-Update after the cut is refused, at the end
    # of the grant it holds (at most one slice)
    assert time.monotonic() - cut_at <= SLICE_S + 5
    _terminated(stack, session)
    used = _charged(stack, session)
    assert stack.credits(tid)["balance"] == str(Decimal("10.00") - FEE - used * PER_S)


def test_a_retransmitted_ccr_is_charged_once(stack: Stack) -> None:
    """A second peer beside Kamailio sends each CCR twice, the second with the T flag (what
    a Diameter client does after a failover): the same answers, one charge."""
    tid, number = stack.subscriber("10.00")
    cl = Client(stack.dia_port, REPLAY_PEER)
    assert result(cl.cer()) == 2001
    sub, to = (0, number.lstrip("+")), f"tel:{UK}"
    for retransmit in (False, True):
        assert result(cl.ccr("replay;1", INITIAL, 0, retransmit=retransmit, sub=sub,
                             called=to)) == 2001
    for retransmit in (False, True):
        assert result(cl.ccr("replay;1", UPDATE, 1, retransmit=retransmit, used=20)) == 2001
    for retransmit in (False, True):
        assert result(cl.ccr("replay;1", TERMINATION, 2, retransmit=retransmit,
                             used=10)) == 2001
    cl.close()
    assert stack.credits(tid)["balance"] == str(Decimal("10.00") - FEE - 30 * PER_S)


def test_zz_the_ledger_verifies_after_the_run(stack: Stack) -> None:
    done = subprocess.run(["commcredits", "ledger", "verify", "--db", stack.db_url],
                          env=stack.env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
