"""Schemathesis generates requests (valid and invalid) for every operation of the OpenAPI
schema; as an operator, and with a real tenant id most of the time, every check passes (no
5xx, every status and content type documented, responses match their schema, invalid data
refused, unsupported methods 405 with Allow...) and every error is in the contract's shape.

One setting: ``positive_data_acceptance`` also accepts 422, because the domain refuses some
schema-valid values on purpose (a country that is not ISO 3166, a number that is not E.164,
an amount below the minimum order) and says so with ``validation_error``."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.config import SchemathesisConfig

from commcredits.adapters.clock import ManualClock
from commcredits.adapters.db.engine import make_engine
from commcredits.adapters.db.migrate import upgrade
from commcredits.adapters.db.uow import Database
from commcredits.adapters.payments import TestGateway
from commcredits.config import Settings
from commcredits.entrypoints.api.app import create_app
from commcredits.entrypoints.runtime import Runtime
from commcredits.services import access, tenants


def _build() -> tuple[Any, str, str]:
    path = Path(tempfile.mkdtemp(prefix="cc-fuzz-")) / "fuzz.sqlite3"
    url = f"sqlite:///{path}"
    upgrade(url)
    rt = Runtime(Settings(db=url, manual_clock=True), Database(make_engine(url), ManualClock()),
                 TestGateway(), None)
    with rt.db.uow() as uow:
        key = access.create_api_key(uow, "operator", None)[1]
        tid = tenants.create_tenant(uow, "Fuzz", "US", "legacy").id
        uow.commit()
    config = SchemathesisConfig.from_dict({"checks": {"positive_data_acceptance": {
        "expected-statuses": ["2xx", "3xx", "401", "403", "404", "409", "422", "429"]}}})
    return (schemathesis.openapi.from_asgi("/openapi.json", create_app(runtime=rt),
                                           config=config), key, tid)


SCHEMA, KEY, TID = _build()
# POST /v1/clock is left out: jumping the shared clock years ahead only slows the other cases
# (the clock has its own tests).
OPERATIONS = [op for op in (o.ok() for o in SCHEMA.get_all_operations())
              if (op.method, op.path) != ("post", "/v1/clock")]


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda op: f"{op.method.upper()} {op.path}")
def test_no_server_errors(operation: Any) -> None:
    @given(case=operation.as_strategy(), real_tenant=st.booleans())
    @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck),
              database=None)
    def check(case: Any, real_tenant: bool) -> None:
        if case.path_parameters and "tid" in case.path_parameters and real_tenant:
            case.path_parameters["tid"] = TID
        response = case.call_and_validate(headers={"Authorization": f"Bearer {KEY}"})
        if response.status_code >= 400 and case.path.startswith("/v1"):  # the console is HTML
            error = response.json()["error"]
            assert isinstance(error["code"], str) and isinstance(error["message"], str)

    check()
