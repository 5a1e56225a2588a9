"""How the schema maps onto Citus (``commcredits db citus-plan``).

* ``tenants`` and every table with a NOT NULL ``tenant_id`` are distributed by tenant and
  colocated, so a tenant's rows (wallet, lots, ledger, calls...) live on one node and every
  transaction the service runs (it always names the tenant) stays on that node.
* Shared data read by every tenant is a reference table (a copy on every node): the rate
  decks, the manual clock and ``event_capture`` (the one-row switch the ``call_settled``
  trigger on ``usage_records`` reads, so every node must hold it). The SKU catalog and
  Zone A ship with the package (code and ``data/``), not in the database.
* Operator-wide tables (API keys, idempotency records, operator admins, console sessions,
  sign-in failures, the NATS ingest consumers' progress, the audit log, whose ``tenant_id``
  is empty for operator actions) stay on the coordinator.

``blockers`` inspects a live PostgreSQL schema and names every table that could not be
distributed that way; ``plan`` prints the statements.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

TENANT = "tenant_id"
ROOT = "tenants"  # distributed by its own id
REFERENCE = ("rate_decks", "rate_rows", "clock", "event_capture")
COORDINATOR = ("api_keys", "idempotency_keys", "audit_log", "operator_admins",
               "console_sessions", "login_failures", "ingest_consumers", "rerate_runs")
IGNORED = ("alembic_version",)


def _tenant_owned(inspector: Any, table: str) -> bool:
    return any(c["name"] == TENANT and not c["nullable"] for c in inspector.get_columns(table))


def _key_of(table: str) -> str:
    return "id" if table == ROOT else TENANT


def blockers(conn: sa.Connection) -> list[str]:
    """Why each table of the connection's schema could not be distributed (empty: ready)."""
    inspector = sa.inspect(conn)
    found: list[str] = []
    tables = [t for t in inspector.get_table_names() if t not in IGNORED]
    distributed = {t for t in tables if t == ROOT or _tenant_owned(inspector, t)}
    for table in sorted(tables):
        if table in distributed:
            found += _distribution_blockers(inspector, table, distributed)
        elif table not in REFERENCE and table not in COORDINATOR:
            found.append(f"{table}: no NOT NULL {TENANT} and not a known reference or "
                         "coordinator table")
        elif table in REFERENCE:
            found += [f"{table}: a reference table cannot keep foreign key {fk['name']} into "
                      f"distributed {fk['referred_table']}"
                      for fk in inspector.get_foreign_keys(table)
                      if fk["referred_table"] in distributed]
    return found


def _distribution_blockers(inspector: Any, table: str, distributed: set[str]) -> list[str]:
    key = _key_of(table)
    found = []
    pk = inspector.get_pk_constraint(table).get("constrained_columns") or []
    if key not in pk:
        found.append(f"{table}: primary key {pk} lacks {key}")
    uniques = [(u["name"], u["column_names"]) for u in inspector.get_unique_constraints(table)]
    uniques += [(i["name"], i["column_names"]) for i in inspector.get_indexes(table)
                if i["unique"]]
    found += [f"{table}: unique {name} {cols} lacks {key}" for name, cols in uniques
              if key not in cols]
    for fk in inspector.get_foreign_keys(table):
        referred = fk["referred_table"]
        if referred in REFERENCE:
            continue
        if referred not in distributed:
            found.append(f"{table}: foreign key {fk['name']} into {referred}, which is "
                         "neither distributed nor a reference table")
            continue
        pairs = dict(zip(fk["constrained_columns"], fk["referred_columns"], strict=True))
        if pairs.get(key) != _key_of(referred):
            found.append(f"{table}: foreign key {fk['name']} {fk['constrained_columns']} does "
                         f"not carry {key} to {referred}.{_key_of(referred)}")
    return found


def plan(conn: sa.Connection) -> list[str]:
    """The statements that turn the (ready) schema into a Citus one, in order."""
    inspector = sa.inspect(conn)
    tables = [t for t in inspector.get_table_names() if t not in IGNORED]
    owned = sorted(t for t in tables if t != ROOT and _tenant_owned(inspector, t))
    lines = ["-- commcredits on Citus: run on the coordinator after `commcredits db upgrade`",
             "-- the coordinator must be in the metadata for the coordinator tables below:",
             "--   SELECT citus_set_coordinator_host('<coordinator host>');",
             "-- the ledger and audit triggers (append-only) run on the shards",
             "SET citus.enable_unsafe_triggers TO on;",
             "BEGIN;"]
    for table in sorted(t for t in COORDINATOR if t in tables):
        for fk in inspector.get_foreign_keys(table):
            if fk["referred_table"] == ROOT or fk["referred_table"] in owned:
                lines.append(f"-- {table} stays on the coordinator: Citus cannot keep its key "
                             f"into the distributed {fk['referred_table']}")
                lines.append(f"ALTER TABLE {table} DROP CONSTRAINT {fk['name']};")
    lines += [f"SELECT create_reference_table('{t}');" for t in REFERENCE if t in tables]
    lines.append(f"SELECT create_distributed_table('{ROOT}', 'id');")
    lines += [f"SELECT create_distributed_table('{t}', '{TENANT}', colocate_with => '{ROOT}');"
              for t in owned]
    lines += [f"SELECT citus_add_local_table_to_metadata('{t}');"
              for t in sorted(COORDINATOR) if t in tables]
    lines.append("COMMIT;")
    # the wallet lock and lots read of every reservation (migration 0012) runs on the shard
    lines.append(f"SELECT create_distributed_function('wallet_and_lots(varchar)', 'p_tenant', "
                 f"colocate_with => '{ROOT}');")
    return lines
