"""What the CDR path writes without a second encoder: the usage record's ``lots`` text is
``json.dumps``'s, and a route remembered when written reads back as parsing it would."""

from __future__ import annotations

import json
from decimal import Decimal

from commcredits.domain.calls import Party, Route
from commcredits.domain.numbers import classify
from commcredits.domain.pools import PoolKey
from commcredits.domain.rating import Rate
from commcredits.services import call_records
from commcredits.services.settlement import lots_json


def test_lots_text_is_what_json_dumps_writes():
    for draws in ([], [("lot_ab12", Decimal("0.04"))],
                  [("lot_1", Decimal("1.000001")), ("lot_2", Decimal("0E-6"))],
                  [('odd"id\\', Decimal(1))]):
        assert lots_json(draws) == json.dumps([[i, str(a)] for i, a in draws])


def _route() -> tuple[Route, object, Party]:
    rate = Rate("44207", "United Kingdom", "geographic", Decimal("0.0200"), Decimal("0.01"), 60)
    return (Route(pool=PoolKey("international", "US", "MCOPSTN2"), credits=True, rate=rate,
                  capability="MCOPSTNPP"), classify("+442079460123"),
            Party("usr_1", "a@contoso.com", "A", "US", frozenset()))


def test_a_remembered_route_reads_back_as_parsing_its_text_does():
    route, number, party = _route()
    text = call_records.route_json(route, number, party)  # type: ignore[arg-type]
    remembered = call_records._parsed(text)
    call_records._ROUTES.clear()
    parsed = call_records._parsed(text)
    assert remembered == parsed
    assert parsed[1] == route
