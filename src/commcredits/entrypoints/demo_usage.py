"""``commcredits demo --usage DAYS``: weeks of plausible calls and SMS for the demo tenant,
charged through the real path, so that every page and export shows something on first start.

Why here and how: the usage is *made up* (who calls whom, when and for how long: office hours
in each user's time zone, fewer calls at weekends, talk times of a few minutes with a long
tail, some calls never answered, some refused), but *charging* it is not. Every request goes
through :func:`_switch`, the one place that talks to the charging path, with the functions
the switch's HTTP requests reach (``entrypoints.api.routes.telephony``: ``decide``,
``take_answer``, ``take_interim``, ``settle_end``, ``take_sms``), so each call is rated,
reserved, answered, extended, cut at its grant, settled FIFO across lots and auto-recharged
exactly as live traffic would be. Before each request the demo's clock
(``adapters.clock.SteppedClock``) is moved to the moment the request would have been sent,
so calls, ledger entries, recharges and notices carry the times they would have had.

Deterministic: the same ``seed`` and start give the same calls. Only a tenant the demo has
just created gets usage (``demo.load_demo``), so running the demo again adds none twice.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from commcredits.adapters.clock import SteppedClock
from commcredits.domain.access import Principal
from commcredits.domain.errors import DomainError
from commcredits.entrypoints.api.routes import telephony
from commcredits.entrypoints.api.schemas import AnswerIn, CallEndIn, CallIn, InterimIn, SmsIn
from commcredits.entrypoints.runtime import Runtime

TOLL_FREE = "+18005550100"  # the demo tenant's toll-free number (demo.py)
US_NUMBERS = ["+12125550123", "+14155550111", "+12065550188", "+13125550147",
              "+16045550123", "+15035550142", "+17185550199"]
ABROAD = {  # destination numbers the demo deck prices, by how often they are dialled
    "+442079460123": 5, "+447911123456": 2, "+33142685300": 3, "+33612345678": 1,
    "+493012345678": 3, "+4915123456789": 1, "+81312345678": 1, "+912223456789": 1,
    "+61291234567": 1,
}
UK_CALLERS = ["+441614960123", "+442079460188"]
PREMIUM = "+19005550123"  # refused: premium numbers are blocked


@dataclass(frozen=True, slots=True)
class Person:
    """A demo user and what a working day of theirs looks like (counts are per day)."""
    upn: str
    number: str | None
    zone: str
    domestic: tuple[int, int] = (0, 0)  # user_out to the user's own country
    abroad: tuple[int, int] = (0, 0)  # user_out elsewhere
    dial_out: tuple[int, int] = (0, 0)  # conf_out: meetings they organize dial a number
    inbound: tuple[int, int] = (0, 0)  # user_in: free, but in the report
    texts: tuple[int, int] = (0, 0)  # SMS out (and a reply in)
    refused_weekly: int = 0  # user_out attempts their licences refuse, per week


PEOPLE = (
    Person("alice@contoso.example", "+14255550101", "America/Los_Angeles", domestic=(2, 6),
           abroad=(0, 2), dial_out=(0, 1), inbound=(1, 4), texts=(0, 3)),
    Person("bob@contoso.example", "+14255550102", "America/Los_Angeles", domestic=(2, 5),
           abroad=(1, 3), inbound=(1, 3), texts=(0, 2)),
    Person("carol@contoso.example", "+442079460103", "Europe/London", dial_out=(1, 3),
           refused_weekly=1),
    Person("dave@contoso.example", None, "America/Los_Angeles", refused_weekly=2),
)


@dataclass(slots=True)
class _Call:
    body: CallIn
    ring_s: int
    talk_s: int  # 0: never answered
    answered_at: datetime | None = None
    outcome: str = ""


@dataclass(order=True, slots=True)
class _Step:
    at: datetime
    seq: int
    action: str = field(compare=False)
    call: _Call | None = field(compare=False, default=None)
    sms: SmsIn | None = field(compare=False, default=None)
    elapsed_s: int = field(compare=False, default=0)


@dataclass
class Replayed:
    """What the replay did: counts by outcome, the requests sent, and the last moment."""
    calls: Counter[str] = field(default_factory=Counter)
    sms: Counter[str] = field(default_factory=Counter)
    requests: int = 0

    def summary(self) -> str:
        calls = sum(self.calls.values())
        parts = ", ".join(f"{n} {k}" for k, n in sorted(self.calls.items()))
        return (f"{calls} calls ({parts}), {sum(self.sms.values())} SMS, "
                f"{self.requests} requests")


def replay(rt: Runtime, who: Principal, clock: SteppedClock, tenant_id: str, start: datetime,
           end: datetime, seed: int = 23) -> Replayed:
    """Make up the usage of ``[start, end)`` and send it, in time order, through the
    charging path (``clock`` is the one ``rt.db`` reads, moved to each request's time)."""
    steps = plan(tenant_id, start, end, random.Random(seed))
    heapq.heapify(steps)
    done = Replayed()
    seq = len(steps)
    while steps:
        step = heapq.heappop(steps)
        clock.advance_to(step.at)
        done.requests += 1
        for after_s, action, elapsed in _switch(rt, who, step, done):
            seq += 1
            heapq.heappush(steps, _Step(step.at + timedelta(seconds=after_s), seq, action,
                                        step.call, elapsed_s=elapsed))
    return done


def _switch(rt: Runtime, who: Principal, step: _Step,
            done: Replayed) -> list[tuple[int, str, int]]:
    """Send one request as the switch would; returns what the switch does next: (seconds
    from now, action, elapsed talk seconds) — the only place the demo reaches charging."""
    if step.sms is not None:
        try:
            result = telephony.take_sms(rt, who, step.sms)
            done.sms[result["decision"]] += 1
        except DomainError as e:
            done.sms[e.code] += 1
        return []
    call = step.call
    assert call is not None
    call_id = call.body.call_id
    if step.action == "authorize":
        decision = telephony.decide(rt, who, call.body)
        if decision["decision"] != "allowed":
            done.calls[f"refused ({decision.get('reason')})"] += 1
            return []
        if not call.talk_s:  # rings out: the switch reports the end with nothing talked
            return [(call.ring_s, "end", 0)]
        return [(call.ring_s, "answer", 0)]
    if step.action == "answer":
        call.answered_at = step.at
        grant = telephony.take_answer(rt, who, call_id, AnswerIn(answered_at=step.at))
        return _next(call, grant, 0)
    if step.action == "interim":
        grant = telephony.take_interim(rt, who, call_id, InterimIn(
            elapsed_s=step.elapsed_s, answered_at=call.answered_at))
        return _next(call, grant, step.elapsed_s)
    result = telephony.settle_end(rt, who, call_id, CallEndIn(
        duration_s=step.elapsed_s, answered_at=call.answered_at))
    done.calls[call.outcome or ("unanswered" if not call.answered_at
                                else result["funding"])] += 1
    return []


def _next(call: _Call, grant: dict[str, Any], elapsed: int) -> list[tuple[int, str, int]]:
    """After an answer or interim: hang up when the talk is over, ask again before the grant
    runs out, or cut the call at the grant when no more time will come."""
    allowed = grant.get("max_duration_s")
    if grant.get("continue") is False:
        call.outcome = "cut"
        return [(0, "end", elapsed)]
    if allowed is None or allowed >= call.talk_s:
        return [(call.talk_s - elapsed, "end", call.talk_s)]
    if grant.get("final"):
        call.outcome = "cut at the grant"
        return [(allowed - elapsed, "end", allowed)]
    wait = int(grant.get("validity_s") or allowed - elapsed - 30)
    again = min(elapsed + max(wait, 1), allowed)
    return [(again - elapsed, "interim", again)]


# -- the made-up traffic ------------------------------------------------------------------------
def plan(tenant_id: str, start: datetime, end: datetime, rng: random.Random) -> list[_Step]:
    """Every first step (authorizations and SMS) of ``[start, end)``, unordered."""
    steps: list[_Step] = []
    n = 0

    def call(at: datetime, call_type: str, frm: str, to: str, talk_s: int,
             upn: str | None = None, organizer: str | None = None) -> None:
        nonlocal n
        n += 1
        ring = rng.randint(4, 20)
        if at < start or at + timedelta(seconds=ring + talk_s + 5) >= end:
            return
        body = CallIn.model_validate({
            "call_id": f"demo-{n:05d}-{tenant_id}", "tenant_id": tenant_id,
            "call_type": call_type, "from": frm, "to": to, "upn": upn,
            "organizer_upn": organizer,
            "conference_id": f"conf-{n:05d}" if call_type == "conf_out" else None})
        steps.append(_Step(at, n, "authorize", _Call(body, ring, talk_s)))

    def text(at: datetime, upn: str, frm: str, to: str, direction: str) -> None:
        nonlocal n
        n += 1
        if start <= at < end:
            steps.append(_Step(at, n, "sms", sms=SmsIn.model_validate({
                "message_id": f"demo-sms-{n:05d}-{tenant_id}", "tenant_id": tenant_id,
                "upn": upn, "from": frm, "to": to, "direction": direction,
                "segments": rng.choice((1, 1, 1, 2, 3))})))

    first, last = start.date() - timedelta(days=1), end.date()
    for day in (first + timedelta(days=i) for i in range((last - first).days + 1)):
        busy = 1.0 if day.weekday() < 5 else 0.12
        for p in PEOPLE:
            at = _office_hours(day, p.zone, rng)
            for _ in range(_count(p.domestic, busy, rng)):
                to = rng.choice(US_NUMBERS) if p.zone.startswith("America") \
                    else rng.choice(UK_CALLERS)
                call(at(), "user_out", p.number or "", to, _talk(rng), upn=p.upn)
            for _ in range(_count(p.abroad, busy, rng)):
                call(at(), "user_out", p.number or "", _abroad(rng), _talk(rng), upn=p.upn)
            for _ in range(_count(p.dial_out, busy, rng)):
                to = rng.choice([*US_NUMBERS[:3], *list(ABROAD)[:5]])
                call(at(), "conf_out", "", to, _talk(rng, median=600), organizer=p.upn)
            for _ in range(_count(p.inbound, busy, rng)):
                if p.number:
                    call(at(), "user_in", rng.choice(US_NUMBERS), p.number, _talk(rng),
                         upn=p.upn)
            for _ in range(_count(p.texts, busy, rng)):
                if p.number:
                    peer = rng.choice(["+12125550123", "+14155550111", "+447911123456"])
                    moment = at()
                    text(moment, p.upn, p.number, peer, "out")
                    if rng.random() < 0.6:
                        text(moment + timedelta(minutes=rng.randint(1, 30)), p.upn, peer,
                             p.number, "in")
            if p.refused_weekly and day.weekday() < 5 and rng.random() < p.refused_weekly / 5:
                call(at(), "user_out", p.number or "", rng.choice(US_NUMBERS), _talk(rng),
                     upn=p.upn)
        # the toll-free line: customers call in; every minute is paid from credits
        at = _office_hours(day, "America/New_York", rng)
        for _ in range(_count((2, 7), busy, rng)):
            caller = rng.choice(UK_CALLERS) if rng.random() < 0.15 else rng.choice(US_NUMBERS)
            call(at(), "ucap_in", caller, TOLL_FREE, _talk(rng, median=240))
        if rng.random() < 0.04:  # now and then someone dials a premium number
            call(_office_hours(day, "America/Los_Angeles", rng)(), "user_out",
                 "+14255550102", PREMIUM, _talk(rng), upn="bob@contoso.example")
    return steps


def _office_hours(day: date, zone: str, rng: random.Random) -> Any:
    """A function giving random moments of ``day``'s office hours (08:00-18:00) in
    ``zone``, in UTC."""
    opens = datetime.combine(day, time(8), ZoneInfo(zone))

    def moment() -> datetime:
        local = opens + timedelta(seconds=rng.randint(0, 10 * 3600 - 1))
        return local.astimezone(ZoneInfo("UTC")).replace(microsecond=0)
    return moment


def _count(span: tuple[int, int], busy: float, rng: random.Random) -> int:
    low, high = span
    if not high:
        return 0
    n = rng.randint(low, high)
    return n if busy >= 1 else sum(rng.random() < busy for _ in range(n))


def _talk(rng: random.Random, median: int = 150) -> int:
    """Talk seconds: a few minutes mostly, a long tail, one call in eight unanswered."""
    if rng.random() < 0.125:
        return 0
    return max(8, min(5400, int(math.exp(rng.gauss(math.log(median), 0.9)))))


def _abroad(rng: random.Random) -> str:
    numbers, weights = zip(*ABROAD.items(), strict=True)
    return rng.choices(numbers, weights)[0]
