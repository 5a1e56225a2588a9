"""Parallel orders over real HTTP: distinct keys each pay once, repeats of one key pay once.

Runs on PostgreSQL (row locks, unique-index waits) and on SQLite (BEGIN IMMEDIATE).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import httpx
import pytest

from commcredits.entrypoints.embedded import serving
from commcredits.services.ledger import verify


def test_parallel_orders_pay_exactly_once(api):
    tid = api.tenant("US")
    pm = api.card(tid)
    with serving(api.rt) as base:
        headers = {"Authorization": f"Bearer {api.operator}"}
        url = f"{base}/v1/tenants/{tid}/credits/orders"

        def order(i: int) -> httpx.Response:
            key = f"distinct-{i}" if i < 50 else "the-same-key"
            body = {"amount": f"{50 + i % 7}.25" if i < 50 else "99.99",
                    "payment_method_id": pm}
            with httpx.Client(timeout=60) as client:
                return client.post(url, json=body, headers={**headers, "Idempotency-Key": key})

        with ThreadPoolExecutor(max_workers=24) as pool:
            responses = list(pool.map(order, range(100)))

    assert [r.status_code for r in responses] == [201] * 100, [r.text for r in responses
                                                               if r.status_code != 201][:3]
    repeated = {r.json()["id"] for r in responses[50:]}
    assert len(repeated) == 1  # fifty repeats, one order
    expected = sum(Decimal(f"{50 + i % 7}.25") for i in range(50)) + Decimal("99.99")
    c = api.credits(tid)
    assert Decimal(c["balance"]) == expected
    assert len(c["lots"]) == 51
    assert len({lot["id"] for lot in c["lots"]}) == 51
    assert sorted(r.json()["lot_id"] for r in responses[:50]) == sorted(
        {r.json()["lot_id"] for r in responses[:50]})
    with api.rt.db.uow() as uow:
        checked, problems = verify(uow)
    assert checked == 1 and problems == []


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_same_key_orders_racing_to_open_their_payment_never_conflict(api, monkeypatch):
    """The race behind a once-seen 409 among fifty same-key orders: A finds no attempt with
    its key, B opens (and commits) one, then A inserts its own. A plain insert failed on
    the unique key (409 ``conflict``); now A resumes B's attempt. Forced here by holding A
    between its look-up and its insert until B is done. PostgreSQL only: on SQLite B waits
    for A's write lock, so the race cannot happen there."""
    import threading

    from commcredits.services import payments
    tid = api.tenant("US")
    pm = api.card(tid)
    real = payments._resume
    looked, b_done = threading.Event(), threading.Event()
    forced: list[bool] = []

    def resume(uow, tenant_id, key, request_hash):
        found = real(uow, tenant_id, key, request_hash)
        if threading.current_thread().name == "A" and not looked.is_set():
            looked.set()
            forced.append(b_done.wait(15))  # B opens its attempt after A looked, before A inserts
        return found
    monkeypatch.setattr(payments, "_resume", resume)
    results: dict[str, object] = {}

    def order(name: str) -> None:
        try:
            results[name] = payments.place_order(
                api.rt.db, api.rt.gateway, payments.Limits(Decimal(50)), tid, "75.00", pm,
                client_key="same-key", request_hash="h")
        except Exception as e:
            results[name] = e
    a = threading.Thread(target=order, args=("A",), name="A")
    a.start()
    assert looked.wait(10)
    b = threading.Thread(target=order, args=("B",), name="B")
    b.start()
    b.join(10)
    b_done.set()
    a.join(10)
    assert forced == [True]  # the interleaving really happened
    assert all(isinstance(r, tuple) for r in results.values()), results
    (view_a, _), (view_b, _) = results["A"], results["B"]
    assert view_a["id"] == view_b["id"]
    c = api.credits(tid)
    assert c["balance"] == "75.00" and len(c["lots"]) == 1
