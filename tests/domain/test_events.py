"""Domain events' subjects, ids and envelope (docs/events.md)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from commcredits.domain import events


def test_subject_is_prefix_tenant_kind_and_a_tenant_is_one_token():
    assert events.subject("commcredits.events", "tnt_ab12", "balance_zero") == \
        "commcredits.events.tnt_ab12.balance_zero"
    # a tenant id can never add a token or a wildcard to the subject
    assert events.subject("p", "a.b*>c d", "lot_expired") == "p.a_b__c_d.lot_expired"
    assert events.subject("p", "", "lot_expired") == "p._.lot_expired"


def test_envelope_carries_the_dedupe_id_and_exact_strings():
    at = datetime(2030, 3, 10, 12, tzinfo=UTC)
    body = json.loads(events.envelope("tnt_1", "lot_expired:lot_9", "lot_expired", at,
                                      {"forfeited": "12.50", "currency": "USD"}))
    assert body == {"schema": 1, "id": "tnt_1:lot_expired:lot_9", "kind": "lot_expired",
                    "tenant_id": "tnt_1", "occurred_at": "2030-03-10T12:00:00+00:00",
                    "data": {"forfeited": "12.50", "currency": "USD"}}
    assert events.msg_id("tnt_1", "lot_expired:lot_9") == body["id"]
