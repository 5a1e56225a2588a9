"""Domain events an operator's billing or CRM system can follow (docs/events.md): their
kinds, subjects and envelope. Pure; recording and publishing are ``services.events``."""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from typing import Any


class EventKind(StrEnum):
    CALL_SETTLED = "call_settled"
    BALANCE_BELOW_TRIGGER = "balance_below_trigger"
    BALANCE_ZERO = "balance_zero"
    RECHARGE_SUCCEEDED = "recharge_succeeded"
    RECHARGE_FAILED = "recharge_failed"
    LOT_EXPIRED = "lot_expired"


SCHEMA_VERSION = 1
DEFAULT_PREFIX = "commcredits.events"


def subject(prefix: str, tenant_id: str, kind: str) -> str:
    """``<prefix>.<tenant>.<kind>``; a tenant id is one subject token (letters, digits, ``_``
    and ``-``), anything else is replaced by ``_`` so it can never add a token."""
    token = "".join(c if c.isalnum() or c in "_-" else "_" for c in tenant_id) or "_"
    return f"{prefix}.{token}.{kind}"


def msg_id(tenant_id: str, dedupe: str) -> str:
    """The dedupe id (``Nats-Msg-Id``, also the envelope's ``id``)."""
    return f"{tenant_id}:{dedupe}"


def envelope(tenant_id: str, dedupe: str, kind: str, occurred_at: datetime,
             data: dict[str, Any]) -> bytes:
    return json.dumps({"schema": SCHEMA_VERSION, "id": msg_id(tenant_id, dedupe), "kind": kind,
                       "tenant_id": tenant_id, "occurred_at": occurred_at.isoformat(),
                       "data": data}, separators=(",", ":"), sort_keys=True).encode()
