"""Domain errors carry a stable snake_case ``code`` (part of the API contract) and a kind.

The kind says what sort of failure it is; the HTTP adapter maps kinds to status codes, so the
domain never knows about HTTP.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorKind(StrEnum):
    INVALID = "invalid"  # the request is malformed or breaks a rule about values (422)
    NOT_FOUND = "not_found"  # the thing does not exist or is not visible (404)
    CONFLICT = "conflict"  # the request clashes with the current state (409)
    PAYMENT = "payment"  # the payment gateway refused (402)
    FORBIDDEN = "forbidden"  # the caller's role may not do this (403)
    UNAUTHORIZED = "unauthorized"  # no or a wrong credential (401)
    UNAVAILABLE = "unavailable"  # a service we depend on did not answer; retry (503)


class DomainError(Exception):
    """A rule was broken. ``code`` is the contract; ``message`` is for humans."""

    kind: ErrorKind = ErrorKind.INVALID

    def __init__(self, code: str, message: str, kind: ErrorKind | None = None,
                 details: list[dict[str, object]] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details
        if kind is not None:
            self.kind = kind

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.message!r})"


def file_refused(what: str, problems: list[tuple[int, str]], shown: int = 20) -> DomainError:
    """A whole file refused (``validation_error``): every bad line in ``details``, the first
    ``shown`` in the message. Imports are all-or-nothing; this is how they say why."""
    text = "; ".join(f"line {n}: {m}" for n, m in problems[:shown])
    more = f" (and {len(problems) - shown} more)" if len(problems) > shown else ""
    return DomainError("validation_error", f"{what}: {text}{more}", ErrorKind.INVALID,
                       details=[{"line": n, "message": m} for n, m in problems])


def invalid(code: str, message: str) -> DomainError:
    return DomainError(code, message, ErrorKind.INVALID)


def not_found(what: str, ident: str) -> DomainError:
    return DomainError("not_found", f"{what} {ident!r} does not exist", ErrorKind.NOT_FOUND)


def conflict(code: str, message: str) -> DomainError:
    return DomainError(code, message, ErrorKind.CONFLICT)


def payment(code: str, message: str) -> DomainError:
    return DomainError(code, message, ErrorKind.PAYMENT)
