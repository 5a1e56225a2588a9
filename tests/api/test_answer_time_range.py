"""A switch's ``answered_at`` that is a valid ISO time but out of range once in UTC
(before year 1) is refused with 422, not a 500 (found by the fuzz test)."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("path", ["/v1/calls/end", "/v1/calls/x/end", "/v1/calls/x/answer"])
def test_answer_time_before_year_one_in_utc_is_refused(api, path):
    switch = api.new_key("switch")
    body = {"call_id": "x", "duration_s": 0, "answered_at": "0001-01-01T00:00:00+00:01"}
    r = api.post(path, body, key=switch)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "validation_error"
