"""The Diameter server over a real TCP socket, on SQLite and PostgreSQL: peers (CER, DWR,
DPR), Credit-Control charged exactly through the charging engine, refusals, retransmits,
bad input, and cuts pushed as Abort-Session-Requests."""

from __future__ import annotations

import socket
import time

from diameter.message import constants as c

from tests.api.voice import JAPAN, UK, ledger_ok, make_voice
from tests.diameter.client import (
    EVENT,
    INITIAL,
    TERMINATION,
    UPDATE,
    Client,
    avp,
    ccr_avps,
    encode,
    final,
    find,
    granted,
    result,
)
from tests.diameter.conftest import PHONE, UPN, Dia

SUB = (0, PHONE.lstrip("+"))
TEL_UK = f"tel:{UK}"


def _closed(cl: Client) -> bool:
    return cl.read() is None


# -- peers -------------------------------------------------------------------------------------
def test_capabilities_watchdog_and_disconnect(dia_env: Dia) -> None:
    cl = dia_env.client(cer=False)
    cea = cl.cer()
    assert result(cea) == 2001
    assert find(cea.avps, c.AVP_AUTH_APPLICATION_ID) == 4
    assert find(cea.avps, c.AVP_ORIGIN_HOST) == b"ocs.test"
    assert find(cea.avps, c.AVP_PRODUCT_NAME) == "commcredits"
    assert find(cea.avps, c.AVP_HOST_IP_ADDRESS) is not None
    assert find(cea.avps, c.AVP_VENDOR_ID) == 0
    dwa = cl.ask(280, [avp(c.AVP_ORIGIN_HOST, b"kamailio.test"),
                       avp(c.AVP_ORIGIN_REALM, b"test")], app=0)
    assert result(dwa) == 2001
    dpa = cl.ask(282, [avp(c.AVP_ORIGIN_HOST, b"kamailio.test"),
                       avp(c.AVP_ORIGIN_REALM, b"test"), avp(c.AVP_DISCONNECT_CAUSE, 0)], app=0)
    assert result(dpa) == 2001
    assert _closed(cl)


def test_an_unknown_peer_gets_3010_and_is_closed(dia_env: Dia) -> None:
    cl = Client(dia_env.server.port, "stranger.test")
    cea = cl.cer()
    assert result(cea) == 3010 and cea.header.command_flags & 0x20  # E bit
    assert _closed(cl)


def test_a_peer_without_credit_control_gets_5010(dia_env: Dia) -> None:
    cl = Client(dia_env.server.port)
    assert result(cl.cer(apps=(16777216,))) == 5010
    assert _closed(cl)


def test_several_peers_and_a_silent_one_is_closed_after_the_timeout(dia_env: Dia) -> None:
    silent = Client(dia_env.server.port)
    a, b = dia_env.client(), dia_env.client("other.test")
    started = time.monotonic()
    assert _closed(silent)  # never sent its CER
    assert time.monotonic() - started < 5
    for cl in (a, b):
        assert result(cl.ask(280, [avp(c.AVP_ORIGIN_HOST, cl.host.encode()),
                                   avp(c.AVP_ORIGIN_REALM, b"test")], app=0)) == 2001


def test_an_unparseable_message_closes_only_its_connection(dia_env: Dia) -> None:
    bad, good = dia_env.client(), dia_env.client("other.test")
    bad.send_raw(b"\x07" + b"\x00" * 19)  # version 7
    assert _closed(bad)
    cut_short = dia_env.client()
    data, _ = encode(272, ccr_avps("s-trunc", INITIAL, 0, sub=SUB))
    cut_short.send_raw(data[:4] + b"\x00" * 16 + b"\xff" * (len(data) - 20))  # AVP garbage
    assert _closed(cut_short)
    assert result(good.ccr("s-good", INITIAL, 0, sub=SUB, called=TEL_UK)) == 2001


def test_a_credit_control_request_before_cer_closes(dia_env: Dia) -> None:
    cl = Client(dia_env.server.port)
    data, _ = encode(272, ccr_avps("s-early", INITIAL, 0, sub=SUB))
    cl.send_raw(data)
    assert _closed(cl)


# -- charging ----------------------------------------------------------------------------------
def test_initial_update_termination_charged_exactly(dia_env: Dia) -> None:
    cl = dia_env.client()
    cca = cl.ccr("s1", INITIAL, 0, sub=SUB, called=TEL_UK)
    assert result(cca) == 2001
    assert granted(cca) == 300 and not final(cca)
    assert find(cca.avps, c.AVP_MULTIPLE_SERVICES_CREDIT_CONTROL, c.AVP_VALIDITY_TIME)
    assert dia_env.voice.credits()["reserved"] == "0.10"  # 5 min at 0.02
    cca = cl.ccr("s1", UPDATE, 1, used=60)
    assert result(cca) == 2001 and granted(cca) == 300  # reserved again: 60 + 300 s
    cca = cl.ccr("s1", TERMINATION, 2, used=30)  # 90 s: 2 started minutes
    assert result(cca) == 2001
    c_ = dia_env.voice.credits()
    assert (c_["balance"], c_["reserved"]) == ("49.96", "0.00")
    ledger_ok(dia_env.voice.api)


def test_a_sip_uri_subscriber_and_ringing_is_free(dia_env: Dia) -> None:
    cl = dia_env.client()
    cca = cl.ccr("s-ring", INITIAL, 0, sub=(2, f"sip:{UPN}"), called=f"sip:{UK}@gw.test")
    assert result(cca) == 2001
    assert result(cl.ccr("s-ring", TERMINATION, 1, used=0)) == 2001  # never answered
    assert dia_env.balance() == "50.00"
    ledger_ok(dia_env.voice.api)


def test_refusals(dia_env: Dia) -> None:
    cl = dia_env.client()
    assert result(cl.ccr("r-unknown", INITIAL, 0, sub=(0, "15550009999"),
                         called=TEL_UK)) == 5030
    free = cl.ccr("r-free", INITIAL, 0, sub=SUB, called=f"tel:{JAPAN}")  # unrated: free
    assert result(free) == 2001 and granted(free) == 300 and not final(free)
    dia_env.voice.api.patch(f"/v1/tenants/{dia_env.voice.tid}", {"no_rate": "block"},
                            expect=200)
    assert result(cl.ccr("r-rate", INITIAL, 0, sub=SUB, called=f"tel:{JAPAN}")) == 5031
    # a user without a calling licence
    assert result(cl.ccr("r-lic", INITIAL, 0, sub=(2, "sip:bare@contoso.com"),
                         called=TEL_UK)) == 4010
    assert dia_env.balance() == "50.00"


def test_no_credits_is_4012(dia_env: Dia) -> None:
    api = dia_env.voice.api
    poor = make_voice(api)  # not funded
    api.post(f"/v1/tenants/{poor.tid}/users", {"upn": "p@poor.com", "usage_location": "US",
                                               "phone_number": "+14255550122"}, expect=201)
    for sku in ("MCOEV", "MCOPSTN_PAYG", "MCOPSTNPP"):
        api.put(f"/v1/tenants/{poor.tid}/users/p@poor.com/licenses/{sku}", expect=200)
    cl = dia_env.client()
    assert result(cl.ccr("r-poor", INITIAL, 0, sub=(0, "14255550122"), called=TEL_UK)) == 4012


def test_retransmitted_requests_are_charged_once(dia_env: Dia) -> None:
    cl = dia_env.client()
    assert result(cl.ccr("s-rt", INITIAL, 0, sub=SUB, called=TEL_UK)) == 2001
    assert result(cl.ccr("s-rt", INITIAL, 0, retransmit=True, sub=SUB, called=TEL_UK)) == 2001
    first = cl.ccr("s-rt", UPDATE, 1, used=60)
    again = cl.ccr("s-rt", UPDATE, 1, retransmit=True, used=60)  # not 120 s
    assert granted(first) == granted(again) == 300
    assert result(cl.ccr("s-rt", TERMINATION, 2, used=60)) == 2001  # 120 s in all
    assert result(cl.ccr("s-rt", TERMINATION, 2, retransmit=True, used=60)) == 2001
    assert dia_env.balance() == "49.96"
    ledger_ok(dia_env.voice.api)


def test_sms_event_is_debited(dia_env: Dia) -> None:
    cl = dia_env.client()
    cca = cl.ccr("sms-1", EVENT, 0, sub=SUB, called="tel:+14255550199", requested=None)
    assert result(cca) == 2001
    assert result(cl.ccr("sms-1", EVENT, 0, retransmit=True, sub=SUB,
                         called="tel:+14255550199", requested=None)) == 2001
    assert dia_env.balance() == "49.99"  # one US segment, once
    ledger_ok(dia_env.voice.api)


# -- bad input ---------------------------------------------------------------------------------
def test_an_unknown_mandatory_avp_gets_5001_and_changes_nothing(dia_env: Dia) -> None:
    from diameter.message.avp import Avp
    strange = Avp(99999, 0, b"\x00\x00\x00\x01", 0x40)  # M bit, unknown code
    cl = dia_env.client()
    cca = cl.ccr("s-m", INITIAL, 0, sub=SUB, called=TEL_UK, extra=[strange])
    assert result(cca) == 5001
    assert find(cca.avps, c.AVP_FAILED_AVP) is not None
    assert dia_env.voice.credits()["reserved"] == "0.00"
    # an unknown AVP without the M bit is ignored
    cca = cl.ccr("s-m2", INITIAL, 0, sub=SUB, called=TEL_UK, extra=[Avp(99999, 0, b"x" * 4)])
    assert result(cca) == 2001


def test_missing_fields_and_unknown_sessions(dia_env: Dia) -> None:
    cl = dia_env.client()
    assert result(cl.ccr("s-x", UPDATE, 1, used=10)) == 5002
    assert result(cl.ccr("s-x", TERMINATION, 2, used=10)) == 5002
    assert result(cl.ccr("s-nosub", INITIAL, 0, sub=None, called=TEL_UK)) == 5005
    assert result(cl.ccr("s-nodest", INITIAL, 0, sub=SUB, called=None)) == 5005
    assert result(cl.ccr("s-baddest", INITIAL, 0, sub=SUB, called="tel:abc")) == 5004
    data, hop = encode(272, [avp(c.AVP_SESSION_ID, "s-bare"),
                             avp(c.AVP_ORIGIN_HOST, b"kamailio.test")])
    cl.send_raw(data)
    assert result(cl.answer_to(hop)) == 5005
    assert result(cl.ask(999, [avp(c.AVP_ORIGIN_HOST, b"kamailio.test")], app=0)) == 3001
    assert dia_env.balance() == "50.00"
    ledger_ok(dia_env.voice.api)


# -- cuts --------------------------------------------------------------------------------------
def test_an_operator_cut_sends_an_abort_session_request(dia_env: Dia) -> None:
    api = dia_env.voice.api
    cl = dia_env.client()
    assert result(cl.ccr("s-cut", INITIAL, 0, sub=SUB, called=TEL_UK)) == 2001
    assert result(cl.ccr("s-cut", UPDATE, 1, used=20)) == 2001
    api.post("/v1/calls/cut", {"call_id": "ro:s-cut"}, expect=200)
    cl.sock.settimeout(5)
    asr = cl.read()
    assert asr is not None and asr.header.command_code == 274
    assert asr.header.command_flags & 0x80
    assert find(asr.avps, c.AVP_SESSION_ID) == "s-cut"
    assert find(asr.avps, c.AVP_DESTINATION_HOST) == b"kamailio.test"
    cl.asa(asr)
    for _ in range(100):
        rows = api.get("/v1/switch-cuts", expect=200).json()
        if rows and rows[0]["status"] == "sent":
            break
        time.sleep(0.05)
    assert [(r["call_id"], r["status"]) for r in rows] == [("ro:s-cut", "sent")]
    # the switch's next update is refused, its termination settles the talk
    assert result(cl.ccr("s-cut", UPDATE, 2, used=10)) == 4010
    assert result(cl.ccr("s-cut", TERMINATION, 3, used=5)) == 2001
    assert dia_env.balance() == "49.98"  # 35 s: one started minute
    ledger_ok(api)


def test_port_is_bound_on_loopback(dia_env: Dia) -> None:
    with socket.create_connection(("127.0.0.1", dia_env.server.port), timeout=2):
        pass


def test_a_forgotten_session_goes_on_from_its_stored_call(dia_env: Dia) -> None:
    """What a restart (or an idle sweep) leaves: the session is rebuilt from the call."""
    cl = dia_env.client()
    assert result(cl.ccr("s-gone", INITIAL, 0, sub=SUB, called=TEL_UK)) == 2001
    assert result(cl.ccr("s-gone", UPDATE, 1, used=60)) == 2001
    server = dia_env.server
    assert server.loop is not None
    dropped = []
    server.loop.call_soon_threadsafe(lambda: dropped.append(server.forget_idle(0.0)))
    for _ in range(50):
        if dropped:
            break
        time.sleep(0.02)
    assert dropped == [1] and not server.holds("ro:s-gone")
    assert result(cl.ccr("s-gone", UPDATE, 2, used=30)) == 2001  # 90 s so far
    assert result(cl.ccr("s-gone", TERMINATION, 3, used=0)) == 2001
    assert dia_env.balance() == "49.96"  # 90 s: 2 started minutes
    ledger_ok(dia_env.voice.api)


def test_an_engine_failure_is_answered_5012_and_the_retry_is_charged(dia_env: Dia,
                                                                      monkeypatch) -> None:
    server = dia_env.server
    real = server.engine.ask_async

    async def broken(request):  # type: ignore[no-untyped-def]
        raise RuntimeError("database unreachable")
    monkeypatch.setattr(server.engine, "ask_async", broken)
    cl = dia_env.client()
    assert result(cl.ccr("s-down", INITIAL, 0, sub=SUB, called=TEL_UK)) == 5012
    monkeypatch.setattr(server.engine, "ask_async", real)
    assert result(cl.ccr("s-down", INITIAL, 0, retransmit=True, sub=SUB,
                         called=TEL_UK)) == 2001  # not kept: decided now
    assert result(cl.ccr("s-down", TERMINATION, 1, used=60)) == 2001
    assert dia_env.balance() == "49.98"


def test_bodies_go_through_the_http_validation() -> None:
    import pytest

    from commcredits.charging import ro
    from commcredits.entrypoints.api.schemas import CallIn
    from commcredits.entrypoints.diameter.server import _validated
    body = {"call_id": "ro:s", "tenant_id": "tnt_1", "call_type": "user_out", "from": "",
            "to": "+442079460123", "upn": "a@b.com"}
    assert _validated(CallIn, body)["to"] == "+442079460123"
    with pytest.raises(ro.Rejected) as e:
        _validated(CallIn, {**body, "to": "x" * 41})
    assert e.value.code is ro.Code.INVALID_AVP_VALUE and e.value.message.startswith("to:")
