"""32 threads place calls over real HTTP against one tenant with a few dollars left: nobody
is granted more time than the balance pays for, the balance never goes below zero, and the
ledger verifies afterwards. Runs on PostgreSQL and SQLite."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import httpx
from typer.testing import CliRunner

from commcredits.entrypoints.cli import app as cli
from commcredits.entrypoints.embedded import serving
from commcredits.services.ledger import verify
from tests.api.voice import UK_MOBILE, US, make_voice

THREADS = 32
CALLS_PER_THREAD = 4


def test_parallel_calls_never_overspend(api, db_url):
    voice = make_voice(api)
    voice.fund("3.00")  # UK mobile: 0.05 fee + 0.10/min, 1 s increments
    with serving(api.rt) as base:
        headers = {"Authorization": f"Bearer {voice.switch}"}

        def worker(t: int) -> list[tuple[dict, dict | None]]:
            out = []
            with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
                for i in range(CALLS_PER_THREAD):
                    call_id = f"t{t}-{i}"
                    d = client.post("/v1/calls", json={
                        "call_id": call_id, "tenant_id": voice.tid, "call_type": "user_out",
                        "from": US, "to": UK_MOBILE, "upn": "payg@contoso.com"}).json()
                    end = None
                    if d["decision"] == "allowed":
                        granted = d["max_duration_s"]
                        # half the calls overrun their grant: they must still not overdraw
                        duration = granted + (45 if i % 2 else 0)
                        end = client.post(f"/v1/calls/{call_id}/end",
                                          json={"duration_s": duration}).json()
                    out.append((d, end))
            return out

        with ThreadPoolExecutor(max_workers=THREADS) as pool:
            results = [r for batch in pool.map(worker, range(THREADS)) for r in batch]

    allowed = [(d, e) for d, e in results if d["decision"] == "allowed"]
    blocked = [d for d, _ in results if d["decision"] == "blocked"]
    assert allowed and blocked
    assert {d["reason"] for d in blocked} == {"insufficient_credits"}
    charged = sum(Decimal(e["charge"]) for _, e in allowed)
    c = voice.credits()
    assert Decimal(c["balance"]) >= 0 and c["reserved"] == "0.00"
    assert charged + Decimal(c["balance"]) == Decimal("3.00")
    # what the grants promised was paid for: every grant fit the money that was available
    granted_cost = sum(Decimal("0.05") + Decimal(d["max_duration_s"]) * Decimal("0.10") / 60
                       for d, _ in allowed)
    assert granted_cost <= Decimal("3.00") + Decimal("0.005") * len(allowed)
    with api.rt.db.uow() as uow:
        _, problems = verify(uow)
    assert problems == []
    result = CliRunner().invoke(cli, ["ledger", "verify", "--db", db_url])
    assert result.exit_code == 0, result.output


def same_request_at_once(api, key: str, path: str, body: dict, times: int = 12
                         ) -> list[httpx.Response]:
    """``times`` threads send the same request to a real server at the same moment."""
    with serving(api.rt) as base:
        def post(_: int) -> httpx.Response:
            with httpx.Client(base_url=base, timeout=60,
                              headers={"Authorization": f"Bearer {key}"}) as client:
                return client.post(path, json=body)

        with ThreadPoolExecutor(max_workers=times) as pool:
            return list(pool.map(post, range(times)))


def test_simultaneous_retransmissions_of_one_call_reserve_once(api):
    voice = make_voice(api)
    voice.fund("10.00")
    body = {"call_id": "same", "tenant_id": voice.tid, "call_type": "user_out",
            "from": US, "to": UK_MOBILE, "upn": "payg@contoso.com"}
    responses = same_request_at_once(api, voice.switch, "/v1/calls", body)
    assert {r.status_code for r in responses} == {200}
    assert len({r.text for r in responses}) == 1  # one decision, given to every attempt
    # one grant reserved: 0.05 + 300 s at 0.10/min
    assert voice.credits()["reserved"] == "0.55"


def test_simultaneous_retransmissions_of_one_sms_charge_once(api):
    voice = make_voice(api)
    voice.fund("10.00")
    body = {"message_id": "m-same", "tenant_id": voice.tid, "upn": "payg@contoso.com",
            "from": US, "to": "+442079460123", "direction": "out", "segments": 2}
    responses = same_request_at_once(api, voice.switch, "/v1/sms", body)
    assert {r.status_code for r in responses} == {200}
    assert len({r.text for r in responses}) == 1
    assert voice.credits()["balance"] == "9.90"  # 2 segments x 0.05, once
