"""Parallel orders over real HTTP: distinct keys each pay once, repeats of one key pay once.

Runs on PostgreSQL (row locks, unique-index waits) and on SQLite (BEGIN IMMEDIATE).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import httpx

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
