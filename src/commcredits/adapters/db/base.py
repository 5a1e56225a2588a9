"""What every table shares: the metadata (with its naming convention), id column types and
the tenant foreign key."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData(naming_convention={
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})

Id = sa.String(40)
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def tenant_fk(*, primary_key: bool = False, index: bool = True,
              references: bool = True) -> sa.Column[str]:
    """``index=False`` where a composite index starting with ``tenant_id`` covers it;
    ``references=False`` on the tables a rated call fills where the key to ``tenants`` only
    restated what holds anyway (migration 0022; SQLite keeps it)."""
    fk = (sa.ForeignKey("tenants.id"),) if references else ()
    return sa.Column("tenant_id", Id, *fk, nullable=False, index=index,
                     primary_key=primary_key)
