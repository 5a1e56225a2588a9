"""Schemathesis generates requests (valid and invalid) for every operation of the OpenAPI
schema; as an operator, and with a real tenant id most of the time, every check passes (no
5xx, every status and content type documented, responses match their schema, invalid data
refused, unsupported methods 405 with Allow...) and every error is in the contract's shape.

Schema-valid data must be accepted (``positive_data_acceptance``: never 422): the schema
states the text policy (patterns), the country and currency codes (enums), the guard's rule
for path and query values, and integers as JSON Schema has them (``2.0`` is ``2``). What no
JSON Schema can state is listed in :data:`DOMAIN_RULES`, each with its reason: a 422 for
schema-valid data passes only when its message is one of those."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.config import SchemathesisConfig
from schemathesis.core.failures import FailureGroup
from schemathesis.openapi.checks import RejectedPositiveData

from commcredits.adapters.clock import ManualClock
from commcredits.adapters.db.engine import make_engine
from commcredits.adapters.db.migrate import upgrade
from commcredits.adapters.db.uow import Database
from commcredits.adapters.payments import TestGateway
from commcredits.config import Settings
from commcredits.entrypoints.api.app import create_app
from commcredits.entrypoints.runtime import Runtime
from commcredits.services import access, tenants

# Refusals of schema-valid data that JSON Schema cannot express (a 422 with one of these
# messages is right even for generated "valid" data); anything else must be accepted.
DOMAIN_RULES = [re.compile(p) for p in (
    # which fields a body needs depends on another field's value
    r"^a \w+ key needs a tenant_id$", r"^a \w+ key acts for all tenants; omit tenant_id$",
    r"^a card needs card_number, exp_month and exp_year$",
    r"^card_number fails the Luhn check$", r"^the card expired at the end of ",
    r"^an enterprise agreement needs ",
    r"^give either days or from/to, not both$",
    r"^from \(.*\) is after to \(.*\)$",
    r"^(a payment method|recharge_amount|trigger_amount) is required to enable auto-recharge$",
    # a currency's decimal places (USD 2, JPY 0) and the configured order limits
    r"has more decimal places than \w{3} allows", r"must be (more|greater) than 0",
    r"(below the minimum|above the maximum)",
    # grammars beyond a JSON Schema pattern: dates, months, E.164, addresses, host names,
    # and a rate deck (a CSV body)
    r"is not a (valid )?date \(YYYY-MM-DD\)$", r"^month .* must be YYYY-MM with a month 01 to 12$",
    r"^month \S+ is outside the years \d+ to \d+$",
    r"must be E\.164", r"is not a valid phone number", r"must look like name@domain$",
    r"value is not a valid email address", r"^not a domain name: ",
    r"^rate deck refused, nothing imported: line \d+",
)]


def _domain_rule(response: Any) -> bool:
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return False
    return any(rule.search(message) for rule in DOMAIN_RULES)


def _only_rejected_positive(error: BaseException) -> bool:
    found = error.exceptions if isinstance(error, FailureGroup) else [error]
    return all(isinstance(e, RejectedPositiveData) for e in found)


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
        "expected-statuses": ["2xx", "3xx", "401", "403", "404", "409", "429"]}}})
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
        # a generous timeout: on a loaded machine the default one failed a plain request
        response = case.call(headers={"Authorization": f"Bearer {KEY}"}, timeout=60)
        try:
            case.validate_response(response)
        except (FailureGroup, RejectedPositiveData) as failure:
            if not (response.status_code == 422 and _only_rejected_positive(failure)
                    and _domain_rule(response)):
                raise
        if response.status_code >= 400 and case.path.startswith("/v1"):  # the console is HTML
            error = response.json()["error"]
            assert isinstance(error["code"], str) and isinstance(error["message"], str)

    check()
