"""The call's clock as a switch reports it (pure rules)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from commcredits.domain import call_clock as cc

T0 = datetime(2030, 3, 10, 12, 0, tzinfo=UTC)


def at(seconds: int) -> datetime:
    return T0 + timedelta(seconds=seconds)


def silent(now: int, *, answered: int | None = None, heard: bool = False, elapsed: int = 0,
           max_s: int | None = 300, last_seen: int = 0,
           policy: cc.SilentCharge = cc.SilentCharge.REPORTED) -> cc.SilentCall | None:
    return cc.silent_action(now=at(now), started_at=T0,
                            answered_at=None if answered is None else at(answered),
                            heard=heard, last_seen_at=at(last_seen), elapsed_s=elapsed,
                            max_s=max_s, auth_ttl_s=120, grace_s=60, idle_s=3600,
                            policy=policy)


def test_an_authorization_never_answered_lapses_after_its_ttl():
    assert silent(119) is None
    assert silent(120) == cc.SilentCall("expire")


def test_an_answered_call_is_timed_from_the_answer():
    assert silent(90 + 300 + 59, answered=90, elapsed=200) is None
    assert silent(90 + 300 + 60, answered=90, elapsed=200) == cc.SilentCall("settle", 200)
    granted = silent(450, answered=90, elapsed=200, policy=cc.SilentCharge.GRANTED)
    assert granted == cc.SilentCall("settle", 300)


def test_a_switch_without_answer_events_is_timed_from_the_authorization():
    assert silent(200, heard=True, elapsed=90) is None  # heard from: does not lapse
    assert silent(360, heard=True, elapsed=90) == cc.SilentCall("settle", 90)


def test_an_unlimited_call_is_settled_when_idle():
    assert silent(3000, answered=10, max_s=None, last_seen=100, elapsed=90) is None
    assert silent(3700, answered=10, max_s=None, last_seen=100, elapsed=90) == \
        cc.SilentCall("settle", 90)


def test_validity_and_final():
    assert cc.validity_s(300, 0, False, 300) == 270
    assert cc.validity_s(300, 290, False, 300) == 1
    assert cc.validity_s(300, 0, True, 300) is None
    assert cc.validity_s(None, 0, False, 300) is None
    assert cc.validity_s(20, 0, False, 20) == 18  # short slices keep a 2 s lead
    assert cc.is_final(122, 300, recharge_pending=False)
    assert not cc.is_final(122, 300, recharge_pending=True)
    assert not cc.is_final(300, 300, recharge_pending=False)
    assert not cc.is_final(None, 300, recharge_pending=False)


def test_answer_time_is_kept_between_authorization_and_now():
    assert cc.answer_time(None, T0, at(50)) == at(50)
    assert cc.answer_time(at(-10), T0, at(50)) == T0
    assert cc.answer_time(at(80), T0, at(50)) == at(50)
    assert cc.answer_time(at(20), T0, at(50)) == at(20)


def test_sip_responses():
    assert cc.sip_response("insufficient_credits") == (402, "Payment Required")
    assert cc.sip_response("invalid_number") == (484, "Address Incomplete")
    assert cc.sip_response("no_calling_plan") == (403, "Forbidden")
    assert cc.sip_response("tenant_unresolved") == (404, "Not Found")
