"""Tables of the message bus (NATS JetStream): the domain events outbox, the switch that
captures settled calls into it, and what each CDR ingest consumer last reported. Part of
:mod:`schema` (import them from there): they share its metadata."""

from __future__ import annotations

import sqlalchemy as sa

from commcredits.adapters.db.base import Id, metadata
from commcredits.adapters.db.types import UtcDateTime

# Domain events for an operator's billing or CRM system, written in the transaction that
# caused them and published to JetStream later (services/events.py). The dedupe key names the
# event (``lot_expired:<lot id>``); with the tenant it is also the message's Nats-Msg-Id, so an
# event published twice is dropped by JetStream. ``call_settled`` rows are written by a
# trigger on usage_records (migration 0010) while ``event_capture`` is on; their ``data`` is
# read from the usage record (``ref``) when published.
domain_events = sa.Table(
    "domain_events", metadata,
    sa.Column("tenant_id", Id, sa.ForeignKey("tenants.id"), primary_key=True),
    sa.Column("dedupe", sa.String(200), primary_key=True),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("data", sa.Text),  # JSON object; NULL for call_settled (see ref)
    sa.Column("ref", sa.String(40)),  # call_settled: the usage record's id
    sa.Column("occurred_at", UtcDateTime, nullable=False),
    sa.Column("published_at", UtcDateTime),
)
sa.Index("ix_domain_events_unpublished", domain_events.c.published_at,
         domain_events.c.occurred_at)

# one row (id 1) when settled calls are captured as call_settled events: set by the publisher
# (so a deployment without NATS never grows the outbox with a row per call)
event_capture = sa.Table(
    "event_capture", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("since", UtcDateTime, nullable=False),
)

# what each `commcredits ingest nats` consumer reported after its last batch (for /metrics)
ingest_consumers = sa.Table(
    "ingest_consumers", metadata,
    sa.Column("stream", sa.String(100), primary_key=True),
    sa.Column("durable", sa.String(100), primary_key=True),
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("rated", sa.BigInteger, nullable=False),
    sa.Column("duplicate", sa.BigInteger, nullable=False),
    sa.Column("blocked", sa.BigInteger, nullable=False),
    sa.Column("dead", sa.BigInteger, nullable=False),
    sa.Column("pending", sa.BigInteger, nullable=False),  # not yet delivered (the lag)
    sa.Column("ack_pending", sa.BigInteger, nullable=False),  # delivered, not yet acked
    sa.Column("updated_at", UtcDateTime, nullable=False),
)
