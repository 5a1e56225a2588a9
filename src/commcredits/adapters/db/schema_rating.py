"""Tables of the rate decks: one current deck per currency and its rows. Part of
:mod:`schema` (import them from there): they share its metadata."""

from __future__ import annotations

import sqlalchemy as sa

from commcredits.adapters.db.base import metadata
from commcredits.adapters.db.types import Amount, UtcDateTime

rate_decks = sa.Table(
    "rate_decks", metadata,
    sa.Column("currency", sa.String(3), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("imported_at", UtcDateTime, nullable=False),
)

rate_rows = sa.Table(
    "rate_rows", metadata,
    sa.Column("currency", sa.String(3), primary_key=True),
    sa.Column("prefix", sa.String(15), primary_key=True),
    sa.Column("number_type", sa.String(20), primary_key=True),
    sa.Column("destination", sa.String(200), nullable=False),
    sa.Column("per_minute", Amount, nullable=False),
    sa.Column("connection_fee", Amount, nullable=False),
    sa.Column("increment_s", sa.Integer, nullable=False),
)
