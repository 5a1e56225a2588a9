"""The length/character policy, derived from the schema: every string a request body carries
fits the column it is stored in, and every identifier can be found again by its path."""

from __future__ import annotations

import typing
from typing import Any

import pytest
import sqlalchemy as sa
from pydantic import BaseModel

from commcredits.adapters.db import schema
from commcredits.domain.text import ID_MAX, REFERENCE_PREFIX_MAX
from commcredits.entrypoints.api import schemas
from commcredits.entrypoints.api.schemas import Body, Stored


def _models() -> list[type[BaseModel]]:
    found, todo = [], list(Body.__subclasses__())
    while todo:
        model = todo.pop()
        found.append(model)
        todo.extend(model.__subclasses__())
    return found


def _string_fields(model: type[BaseModel]) -> list[tuple[str, Any]]:
    """(name, FieldInfo-like metadata list, max_length) of every str or list[str] field."""
    out = []
    for name, info in model.model_fields.items():
        ann = info.annotation
        args = [a for a in typing.get_args(ann) if a is not type(None)] or [ann]
        inner = args[0]
        if typing.get_origin(inner) is list:
            out.append((name, info, "list"))
        elif inner is str or (isinstance(inner, type) and issubclass(inner, str)):
            out.append((name, info, "str"))
    return out


def _column(ref: str) -> sa.Column[Any]:
    table, column = ref.split(".")
    return schema.metadata.tables[table].c[column]


def _max_length(info: Any) -> int | None:
    for m in info.metadata:
        if getattr(m, "max_length", None) is not None:
            return int(m.max_length)
    return None


def _stored(info: Any) -> Stored | None:
    return next((m for m in info.metadata if isinstance(m, Stored)), None)


CASES = [(m, name, info, kind) for m in _models() for name, info, kind in _string_fields(m)]


@pytest.mark.parametrize(("model", "name", "info", "kind"), CASES,
                         ids=[f"{c[0].__name__}.{c[1]}" for c in CASES])
def test_every_stored_string_fits_its_column(model, name, info, kind):
    stored = _stored(info)
    if kind == "list":
        # lists: the items carry the limit; a joined list must fit its one column
        if stored is not None and stored.items:
            items = typing.get_args(typing.get_args(info.annotation)[0])[0]
            item_max = next(m.max_length for m in typing.get_args(items)
                            if getattr(m, "max_length", None))
            count = _max_length(info)
            assert count is not None
            assert count * (item_max + 1) - 1 <= _column(stored.column).type.length
        return
    limit = _max_length(info)
    if "email" in name and limit is None:  # EmailStr: the policy's validator caps it
        limit = 320
    assert limit is not None, f"{model.__name__}.{name} has no length limit"
    if stored is None:
        return  # not stored as sent (normalized, hashed, or parsed first)
    column = _column(stored.column)
    assert isinstance(column.type, sa.String)
    assert limit + stored.prefix <= column.type.length, (model.__name__, name)


def test_identifiers_fit_the_ledger_reference():
    reference = schema.ledger_transactions.c.reference.type.length
    assert reference >= ID_MAX + REFERENCE_PREFIX_MAX
    assert schema.usage_records.c.ref.type.length >= ID_MAX


def test_the_policy_found_the_fields():
    names = {f"{m.__name__}.{n}" for m, n, _, _ in CASES}
    assert {"CallIn.call_id", "SmsIn.message_id", "UserIn.upn", "TenantIn.name"} <= names
    assert schemas.CallIn.model_fields["call_id"].metadata


# a call id is a SIP Call-ID, which may hold "/" (it travels in the body forms)
@pytest.mark.parametrize("bad", ["a b", " lead", "trail ", "nul\x00", "é", "x" * 129, ""])
def test_identifiers_are_taken_exactly_as_sent(bad):
    body = {"call_id": bad, "tenant_id": "t", "call_type": "user_out", "to": "+14255550100"}
    with pytest.raises(ValueError):
        schemas.CallIn.model_validate(body)
