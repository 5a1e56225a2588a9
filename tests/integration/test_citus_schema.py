"""A schema ready for Citus (issue 11 §4): every table with a NOT NULL ``tenant_id`` can be
distributed by it (``tenant_id`` in its primary key and in every unique and foreign key),
shared data are reference tables, and ``commcredits db citus-plan`` prints the statements.
The checker is shown to fail on tables that could not be distributed, and on the schema as
it was before migration 0011."""

from __future__ import annotations

import re
import secrets
import subprocess
import sys
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic import command

from commcredits.adapters.db.citus import COORDINATOR, REFERENCE, blockers
from commcredits.adapters.db.migrate import alembic_config, upgrade
from tests.conftest import PG_SERVER

CLI = [sys.executable, "-m", "commcredits.entrypoints.cli"]


@pytest.fixture
def scratch() -> Iterator[str]:
    """An empty schema of its own; yields its URL."""
    schema = f"cc_citus_{secrets.token_hex(4)}"
    engine = sa.create_engine(PG_SERVER)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    try:
        yield f"{PG_SERVER}?options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA {schema} CASCADE")
        engine.dispose()


def _blockers(url: str) -> list[str]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return blockers(conn)
    finally:
        engine.dispose()


def test_the_migrated_schema_can_be_distributed_by_tenant(pg_schema: str) -> None:
    assert _blockers(f"{PG_SERVER}?options=-csearch_path%3D{pg_schema}") == []


def test_the_checker_names_every_table_that_could_not_be_distributed(scratch: str) -> None:
    engine = sa.create_engine(scratch)
    with engine.begin() as conn:
        for ddl in (
            "CREATE TABLE tenants (id varchar(40) PRIMARY KEY)",
            "CREATE TABLE good (id int, tenant_id varchar(40) NOT NULL REFERENCES tenants(id),"
            " PRIMARY KEY (id, tenant_id))",
            "CREATE TABLE bad_pk (id int PRIMARY KEY, tenant_id varchar(40) NOT NULL)",
            "CREATE TABLE bad_unique (id int, tenant_id varchar(40) NOT NULL, code text,"
            " PRIMARY KEY (id, tenant_id), UNIQUE (code))",
            "CREATE TABLE bad_index (id int, tenant_id varchar(40) NOT NULL, code text,"
            " PRIMARY KEY (id, tenant_id))",
            "CREATE UNIQUE INDEX ix_bad_index_code ON bad_index (code)",
            "CREATE TABLE parent (id int UNIQUE, tenant_id varchar(40) NOT NULL,"
            " PRIMARY KEY (id, tenant_id))",
            "CREATE TABLE bad_fk (id int, tenant_id varchar(40) NOT NULL,"
            " parent_id int REFERENCES parent(id), PRIMARY KEY (id, tenant_id))",
            "CREATE TABLE stray (id int PRIMARY KEY, tenant_id varchar(40))",
            "CREATE TABLE rate_decks (currency varchar(3) PRIMARY KEY,"
            " tenant_id varchar(40) REFERENCES tenants(id))",
        ):
            conn.exec_driver_sql(ddl)
    engine.dispose()
    found = "\n".join(_blockers(scratch))
    for table in ("bad_pk", "bad_unique", "bad_index", "bad_fk", "stray", "rate_decks",
                  "parent"):
        assert re.search(rf"^{table}: ", found, re.M), (table, found)
    assert not re.search(r"^(good|tenants): ", found, re.M), found


def test_before_0011_the_keys_were_not_ready_and_it_migrates_both_ways(scratch: str) -> None:
    upgrade(scratch, "0008")
    before = _blockers(scratch)
    assert any(b.startswith("ledger_postings: primary key") for b in before), before
    assert any(b.startswith("orders: foreign key") for b in before), before
    upgrade(scratch)
    assert _blockers(scratch) == []
    command.downgrade(alembic_config(scratch), "0008")
    assert sorted(_blockers(scratch)) == sorted(before)
    upgrade(scratch)
    assert _blockers(scratch) == []


def test_citus_plan_distributes_every_table_once(pg_schema: str) -> None:
    url = f"{PG_SERVER}?options=-csearch_path%3D{pg_schema}"
    made = subprocess.run([*CLI, "db", "citus-plan", "--db", url], capture_output=True,
                          text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    plan = made.stdout
    named = re.findall(r"(create_distributed_table|create_reference_table|"
                       r"citus_add_local_table_to_metadata)\('(\w+)'", plan)
    tables = [t for _, t in named]
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        schema_tables = set(sa.inspect(conn).get_table_names()) - {"alembic_version"}
    engine.dispose()
    assert sorted(tables) == sorted(schema_tables)  # every table, once
    kinds = dict((t, k) for k, t in named)
    assert kinds["tenants"] == "create_distributed_table"
    assert "create_distributed_table('tenants', 'id');" in plan
    for table in ("wallets", "lots", "ledger_transactions", "ledger_postings", "calls",
                  "usage_records", "users", "license_assignments"):
        assert (f"create_distributed_table('{table}', 'tenant_id', colocate_with => "
                f"'tenants');") in plan
    assert {t for t, k in kinds.items() if k == "create_reference_table"} == set(REFERENCE)
    assert {t for t, k in kinds.items()
            if k == "citus_add_local_table_to_metadata"} == set(COORDINATOR)
    # the reference and distributed tables come before anything that refers to them
    assert plan.index("create_distributed_table('tenants'") < plan.index("'wallets'")


def test_citus_plan_refuses_sqlite(tmp_path) -> None:
    made = subprocess.run([*CLI, "db", "citus-plan", "--db",
                           f"sqlite:///{tmp_path / 'x.sqlite3'}"], capture_output=True,
                          text=True, timeout=60)
    assert made.returncode == 2
    assert "PostgreSQL" in made.stderr
