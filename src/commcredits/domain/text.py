"""One length and character policy for every identifier and free-text string that is stored.

* **Identifiers** a client chooses (call ids, message ids, conference ids, idempotency keys,
  ids in paths): 1 to ``ID_MAX`` printable ASCII characters, no space and no ``/`` (they
  travel in URL paths). Nothing is trimmed: an id is taken exactly as sent, so the one sent
  to ``POST /v1/calls`` is the one its ``/end`` finds.
* **Text** (names, UPNs, e-mail addresses, numbers, destinations): no control characters
  (NUL and friends are refused by PostgreSQL and invisible in reports) and at most the
  column's length. ``tests/api/test_text_policy.py`` derives every limit from the schema.

``ID_MAX`` leaves room for the ledger reference ``"call " + call_id`` in its 200-character
column.
"""

from __future__ import annotations

import re
import uuid

from commcredits.domain.errors import invalid

ID_MAX = 128
REFERENCE_PREFIX_MAX = 8  # "call ", "sms ": what a ledger reference puts before an id
_ID = re.compile(r"[\x21-\x2e\x30-\x7e]+")  # printable ASCII without space and "/"
_CALL_ID = re.compile(r"[\x21-\x7e]+")  # printable ASCII without space
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def id_problem(value: str, max_len: int = ID_MAX) -> str | None:
    """Why ``value`` is not an acceptable identifier (None when it is)."""
    return _shape_problem(value, max_len, _ID, "without spaces or '/'")


def call_id_problem(value: str, max_len: int = ID_MAX) -> str | None:
    """A switch's call id (a SIP Call-ID may hold "/" and "?"): printable ASCII without
    spaces. Sent in the body forms of the call endpoints, never in a path."""
    return _shape_problem(value, max_len, _CALL_ID, "without spaces")


def _shape_problem(value: str, max_len: int, shape: re.Pattern[str], but: str) -> str | None:
    if not value:
        return "must not be empty"
    if len(value) > max_len:
        return f"must be at most {max_len} characters"
    if not shape.fullmatch(value):
        return f"may hold only printable ASCII characters, {but}"
    return None


def text_problem(value: str, max_len: int) -> str | None:
    """Why ``value`` is not acceptable free text (None when it is)."""
    if len(value) > max_len:
        return f"must be at most {max_len} characters"
    if _CONTROL.search(value):
        return "must not contain control characters"
    return None


def check_id(value: str, field: str, max_len: int = ID_MAX) -> str:
    problem = id_problem(value, max_len)
    if problem:
        raise invalid("validation_error", f"{field} {problem}")
    return value


def check_text(value: str, field: str, max_len: int) -> str:
    problem = text_problem(value, max_len)
    if problem:
        raise invalid("validation_error", f"{field} {problem}")
    return value


def guid(value: str, field: str) -> str:
    """A GUID (an Entra ID object id) in its canonical form: 36 lower-case characters with
    hyphens, whatever form it came in (upper case, braces, ``urn:uuid:``, no hyphens)."""
    try:
        return str(uuid.UUID(str(value).strip()))
    except ValueError:
        raise invalid("validation_error",
                      f"{field} must be a GUID such as 8c1d2e3f-4a5b-4c6d-8e7f-901a2b3c4d5e "
                      f"(got {str(value)[:40]!r})") from None
