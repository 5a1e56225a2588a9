"""``charging.ro`` without network or database: CCR fields → engine requests, decisions →
CCA AVPs and result codes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from diameter.message import constants as c
from diameter.message.avp import Avp

from commcredits.charging import ro
from commcredits.charging.requests import Kind
from tests.diameter.client import EVENT, INITIAL, TERMINATION, UPDATE, ccr_avps, find

NOW = datetime(2030, 3, 10, 12, 0, tzinfo=UTC)


def test_a_ccr_initial_is_read() -> None:
    ccr = ro.parse_ccr(ccr_avps("s;1", INITIAL, 0, sub=(0, "14255550111"),
                                called="sip:+442079460123@gw;user=phone", requested=120))
    assert (ccr.session_id, ccr.request_type, ccr.number) == ("s;1", ro.RequestType.INITIAL, 0)
    assert ccr.subscriber == (0, "14255550111") and ccr.requested_s == 120
    body = ro.call_body(ccr, "tnt_1", "a@b.com", "+14255550111")
    assert body == {"call_id": "ro:s;1", "tenant_id": "tnt_1", "call_type": "user_out",
                    "from": "+14255550111", "to": "+442079460123", "upn": "a@b.com"}


@pytest.mark.parametrize("missing", [c.AVP_SESSION_ID, c.AVP_CC_REQUEST_TYPE,
                                     c.AVP_CC_REQUEST_NUMBER, c.AVP_ORIGIN_HOST])
def test_a_missing_mandatory_field_is_5005(missing: int) -> None:
    avps = [a for a in ccr_avps("s", INITIAL, 0) if a.code != missing]
    with pytest.raises(ro.Rejected) as e:
        ro.parse_ccr(avps)
    assert e.value.code is ro.Code.MISSING_AVP


def test_a_bad_request_type_is_5004() -> None:
    avps = [a for a in ccr_avps("s", INITIAL, 0) if a.code != c.AVP_CC_REQUEST_TYPE]
    with pytest.raises(ro.Rejected) as e:
        ro.parse_ccr([*avps, Avp.new(c.AVP_CC_REQUEST_TYPE, value=9)])
    assert e.value.code is ro.Code.INVALID_AVP_VALUE


def test_an_unknown_mandatory_avp_is_found_at_any_depth() -> None:
    inner = Avp(4242, 0, b"\x00\x00\x00\x00", 0x40)
    nested = Avp.new(c.AVP_MULTIPLE_SERVICES_CREDIT_CONTROL, value=[inner])
    with pytest.raises(ro.Rejected) as e:
        ro.parse_ccr([*ccr_avps("s", INITIAL, 0), nested])
    assert e.value.code is ro.Code.AVP_UNSUPPORTED and e.value.avp is inner
    assert ro.unknown_mandatory([Avp(4242, 0, b"\x00" * 4, 0)]) is None  # no M bit


def test_call_ids_are_deterministic_and_fit() -> None:
    assert ro.call_id_of("scscf;1;2") == ro.call_id_of("scscf;1;2") == "ro:scscf;1;2"
    long = ro.call_id_of("x" * 300)
    assert long == ro.call_id_of("x" * 300) and len(long) <= 128 and long.startswith("ro:h:")
    assert ro.call_id_of("with space").startswith("ro:h:")


@pytest.mark.parametrize(("address", "e164"), [
    ("tel:+442079460123", "+442079460123"), ("sip:+442079460123@gw.test;user=phone",
                                             "+442079460123"),
    ("442079460123", "+442079460123"), ("tel:abc", None), ("", None), (None, None)])
def test_destination_numbers(address: str | None, e164: str | None) -> None:
    assert ro.e164(address) == e164


def test_subscribers() -> None:
    assert ro.subscriber_key((0, "14255550111")) == ("phone", "+14255550111")
    assert ro.subscriber_key((2, "sip:Alice@Contoso.com")) == ("upn", "alice@contoso.com")
    assert ro.subscriber_key((2, "sip:+14255550111@10.0.0.1:5060")) == ("phone",
                                                                         "+14255550111")
    assert ro.subscriber_key((2, "sip:alice@contoso.com:5060")) == ("upn", "alice@contoso.com")
    assert ro.subscriber_key((1, "001010123456789")) is None  # IMSI: not ours
    assert ro.subscriber_key(None) is None


def test_updates_add_up_and_the_first_use_is_the_answer() -> None:
    s = ro.Session("s", "ro:s", "peer")
    u1 = ro.parse_ccr(ccr_avps("s", UPDATE, 1, used=0))
    kind, body, total = ro.report(s, u1, NOW)
    assert (kind, body["elapsed_s"], body["answered_at"], total) == (Kind.INTERIM, 0, None, 0)
    u2 = ro.parse_ccr(ccr_avps("s", UPDATE, 2, used=40))
    kind, body, total = ro.report(s, u2, NOW)
    assert body["answered_at"] == NOW - timedelta(seconds=40) and total == 40
    s.used_s, s.answered = total, True
    t = ro.parse_ccr(ccr_avps("s", TERMINATION, 3, used=25))
    kind, body, total = ro.report(s, t, NOW)
    assert (kind, body["duration_s"], body["answered_at"]) == (Kind.END, 65, None)


def test_authorize_decisions_become_answers() -> None:
    ok = ro.for_authorize({"decision": "allowed", "max_duration_s": 300, "validity_s": 270,
                           "final": False}, 300)
    assert (ok.code, ok.granted_s, ok.validity_s, ok.final) == (2001, 300, 270, False)
    last = ro.for_authorize({"decision": "allowed", "max_duration_s": 42, "final": True}, 300)
    assert (last.granted_s, last.final) == (42, True)
    unlimited = ro.for_authorize({"decision": "allowed", "final": False}, 300)
    assert unlimited.granted_s == 300
    for reason, code in [("insufficient_credits", 4012), ("daily_cap_reached", 4012),
                         ("unknown_user", 5030), ("no_rate", 5031),
                         ("no_credits_license", 4010), ("destination_blocked", 4010),
                         ("no_calling_plan", 4010)]:
        assert ro.for_authorize({"decision": "blocked", "reason": reason}, 300).code == code


def test_interim_answers() -> None:
    more = ro.for_interim({"continue": True, "max_duration_s": 360, "validity_s": 330,
                           "final": False}, 60, 300)
    assert (more.code, more.granted_s) == (2001, 300)
    cut = ro.for_interim({"continue": False, "reason": "operator_cut", "final": True}, 60, 300)
    assert (cut.code, cut.granted_s, cut.final) == (4010, 0, True)
    spent = ro.for_interim({"continue": False, "reason": "insufficient_credits"}, 60, 300)
    assert spent.code == 4012


def test_cca_avps_carry_the_grant_and_final_unit_indication() -> None:
    ccr = ro.parse_ccr(ccr_avps("s", INITIAL, 0))
    avps = ro.cca_avps(ro.Cca(ro.Code.SUCCESS, 42, None, True), ccr, "ocs", "realm")
    mscc = c.AVP_MULTIPLE_SERVICES_CREDIT_CONTROL
    assert find(avps, c.AVP_RESULT_CODE) == 2001
    assert find(avps, mscc, c.AVP_GRANTED_SERVICE_UNIT, c.AVP_CC_TIME) == 42
    assert find(avps, mscc, c.AVP_FINAL_UNIT_INDICATION, c.AVP_FINAL_UNIT_ACTION) == 0
    assert find(avps, mscc, c.AVP_VALIDITY_TIME) is None
    avps = ro.cca_avps(ro.Cca(ro.Code.SUCCESS, 300, 270, False), ccr, "ocs", "realm")
    assert find(avps, mscc, c.AVP_VALIDITY_TIME) == 270
    assert find(avps, mscc, c.AVP_FINAL_UNIT_INDICATION) is None
    refused = ro.cca_avps(ro.Cca(ro.Code.CREDIT_LIMIT_REACHED), ccr, "ocs", "realm")
    assert find(refused, c.AVP_RESULT_CODE) == 4012 and find(refused, mscc) is None


def test_an_sms_event() -> None:
    ccr = ro.parse_ccr(ccr_avps("m1", EVENT, 0, called="tel:+14255550199", requested=None))
    assert ccr.direct_debiting
    body = ro.sms_body(ccr, "tnt_1", "a@b.com", "+14255550111")
    assert body["message_id"] == "ro:m1" and body["to"] == "+14255550199"
    assert body["segments"] == 1
    assert ro.for_sms({"decision": "blocked", "reason": "insufficient_credits"}).code == 4012


def test_message_ids_are_identifiers() -> None:
    assert ro.message_id_of("smsc;1") == "ro:smsc;1"
    assert ro.message_id_of("a/b").startswith("ro:h:") and "/" not in ro.message_id_of("a/b")
