"""Domain errors: a stable code, a human message and a kind."""

from __future__ import annotations

from commcredits.domain.errors import DomainError, ErrorKind, conflict, invalid, not_found, payment


def test_default_kind_is_invalid() -> None:
    e = DomainError("validation_error", "bad")
    assert (e.code, e.message, e.kind, str(e)) == ("validation_error", "bad",
                                                   ErrorKind.INVALID, "bad")
    assert repr(e) == "DomainError('validation_error', 'bad')"


def test_helpers_set_code_and_kind() -> None:
    assert (invalid("x", "m").kind, conflict("x", "m").kind, payment("x", "m").kind) == (
        ErrorKind.INVALID, ErrorKind.CONFLICT, ErrorKind.PAYMENT)
    nf = not_found("tenant", "T9")
    assert (nf.code, nf.kind, nf.message) == ("not_found", ErrorKind.NOT_FOUND,
                                              "tenant 'T9' does not exist")
