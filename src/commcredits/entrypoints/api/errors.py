"""Every error is ``{"error": {"code", "message"}}`` with a 4xx status; nothing answers 5xx
for a request's fault. Validation errors never echo the input (it may hold a card number).

* A database that is away or overloaded (connection dropped, pool exhausted, serialization
  or lock timeout) answers ``503 {"error": {"code": "unavailable"}}`` with ``Retry-After``;
  a write retried with its ``Idempotency-Key`` then has its effect once.
* A value the database refuses (too long, NUL, out of range) is ``422 validation_error``.
* Anything else unexpected answers a JSON ``500 internal_error`` (logged), never plain text.
* Malformed bodies (not JSON, invalid UTF-8, nested too deep) are 422, as API.md says;
  405 carries ``Allow``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from commcredits.domain.errors import DomainError, ErrorKind

log = logging.getLogger(__name__)

STATUS = {
    ErrorKind.INVALID: 422,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.CONFLICT: 409,
    ErrorKind.PAYMENT: 402,
    ErrorKind.FORBIDDEN: 403,
    ErrorKind.UNAUTHORIZED: 401,
    ErrorKind.UNAVAILABLE: 503,
}


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def error_response(err: DomainError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if err.kind is ErrorKind.UNAUTHORIZED else \
        {"Retry-After": str(RETRY_AFTER_S)} if err.kind is ErrorKind.UNAVAILABLE else None
    extra = {"details": err.details} if err.details else {}
    return JSONResponse(error_body(err.code, err.message, **extra), STATUS[err.kind],
                        headers=headers)


def validation_error(errors: Sequence[Any]) -> DomainError:
    """Pydantic's errors as the one ``validation_error`` the API answers (the console uses
    it too, so a form is refused exactly as the API would refuse the same fields)."""
    details = []
    for e in errors:
        if e.get("type") == "json_invalid":  # its loc is ("body", character offset)
            at = [p for p in e.get("loc", ()) if isinstance(p, int)]
            where = f" (at character {at[0] + 1})" if at else ""
            reason = str((e.get("ctx") or {}).get("error", "")) or "JSON decode error"
            details.append({"field": "body", "problem": f"is not valid JSON: {reason}{where}"})
            continue
        loc = ".".join(str(p) for p in e.get("loc", ()) if p != "body")
        details.append({"field": loc, "problem": str(e.get("msg", "invalid"))})
    message = "; ".join(f"{d['field'] or 'body'}: {d['problem']}" for d in details[:5])
    return DomainError("validation_error", message or "invalid request", ErrorKind.INVALID,
                       details=details)


def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    err = validation_error(exc.errors())
    return JSONResponse(error_body(err.code, err.message, details=err.details), 422)


def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    codes = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized",
             403: "forbidden", 400: "bad_request", 413: "payload_too_large",
             415: "unsupported_media_type"}
    code = codes.get(exc.status_code, "bad_request")
    status = exc.status_code if exc.status_code < 500 else 400
    if status == 400:  # a body that cannot be parsed (invalid UTF-8, nested too deep)
        code, status = "validation_error", 422
    headers = dict(getattr(exc, "headers", None) or {})
    if status == 405:  # every method the path answers (Starlette names one route's only)
        headers["Allow"] = ", ".join(allowed_methods(request.app, request.scope))
    return JSONResponse(error_body(code, str(exc.detail)), status, headers=headers or None)


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(app: Any, scope: Any) -> list[str]:
    """The methods some route of ``app`` answers at the scope's path (RFC 9110 § 15.5.6:
    a 405 names them all, though they belong to different routes)."""
    from starlette.routing import Match, Mount
    found: list[str] = []
    # the path as the application saw it (a mount below it changes root_path, not path)
    base = {"type": "http", "path": scope["path"], "headers": [],
            "root_path": scope.get("app_root_path", "")}
    for method in _METHODS:
        probe = {**base, "method": method}
        for route in app.router.routes:
            if isinstance(route, Mount):  # static files: GET and HEAD
                if method in ("GET", "HEAD") and route.matches(probe)[0] is Match.FULL:
                    found.append(method)
                    break
            elif route.matches(probe)[0] is Match.FULL:
                found.append(method)
                break
    return found


def _domain(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    return error_response(exc)


def _integrity(request: Request, exc: Exception) -> JSONResponse:
    # A race lost against a concurrent request (e.g. the same UPN created twice at once).
    log.info("integrity conflict: %s", type(exc).__name__)
    return JSONResponse(error_body("conflict", "the request conflicts with a concurrent change; "
                                   "read the current state and retry"), 409)


RETRY_AFTER_S = 2


def _database(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, sa.exc.SQLAlchemyError)
    if isinstance(exc, sa.exc.DataError) or (
            isinstance(exc, sa.exc.StatementError) and not isinstance(exc, sa.exc.DBAPIError)
            and isinstance(exc.orig, ValueError | TypeError | OverflowError)):
        # a value the database (or a column type) refuses: the request's fault
        log.info("value refused by the database: %s", type(exc).__name__)
        return JSONResponse(error_body("validation_error", "a value is out of range or holds "
                                       "characters that cannot be stored"), 422)
    outage = (sa.exc.DBAPIError, sa.exc.DisconnectionError, sa.exc.TimeoutError,
              sa.exc.PendingRollbackError)  # the last: a transaction whose connection died
    if isinstance(exc, sa.exc.ProgrammingError) or not isinstance(exc, outage):
        return _unexpected(request, exc)  # a bug, not an outage
    log.warning("database unavailable: %s", type(exc).__name__)
    return JSONResponse(error_body("unavailable", "the service cannot reach its database "
                                   "right now; retry shortly (with the same Idempotency-Key "
                                   "for writes)"), 503,
                        headers={"Retry-After": str(RETRY_AFTER_S)})


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    return JSONResponse(error_body("internal_error", "something went wrong on our side; it "
                                   "has been logged"), 500)


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(DomainError, _domain)
    app.add_exception_handler(sa.exc.IntegrityError, _integrity)
    app.add_exception_handler(sa.exc.SQLAlchemyError, _database)
    app.add_exception_handler(Exception, _unexpected)


# -- the OpenAPI side: every error status each operation may answer, from one table ---------
ERROR_SCHEMA = {
    "type": "object", "required": ["error"],
    "properties": {"error": {
        "type": "object", "required": ["code", "message"],
        "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                       "details": {"type": "array", "items": {"type": "object"}}}}},
}
DESCRIPTIONS = {
    401: "No or an unknown API key", 402: "The payment was refused",
    403: "The role may not do this", 404: "Not found (or another tenant's)",
    409: "Conflicts with the current state", 413: "The body is too large",
    422: "Invalid input", 500: "Unexpected error (logged)",
    503: "The database is unavailable; retry after Retry-After seconds",
}


def statuses_for(path: str, method: str) -> set[int]:
    """What an operation may answer besides success: every /v1 route authenticates,
    authorizes, validates and reaches the database; money-moving routes may be refused by
    the gateway."""
    out = {401, 403, 404, 409, 413, 422, 500, 503}
    if method == "post" and (path.endswith("/credits/orders") or "/payment-methods" in path):
        out.add(402)
    if method == "put" and path.endswith("/auto-recharge"):
        out.add(402)
    return out


# what the request guard lets through in a path segment or query value (no control characters)
_PARAMETER_PATTERN = {"path": r"^[^\x00-\x1f\x7f]+$", "query": r"^[^\x00-\x1f\x7f]*$"}


def _strings(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """The string schemas in a parameter's schema (itself, or the branches of an anyOf)."""
    if schema.get("type") == "string":
        return [schema]
    return [s for s in schema.get("anyOf", []) if s.get("type") == "string"]


def _document_parameters(op: dict[str, Any]) -> None:
    """State the guard's rule (``guard.py``: no control characters) on every string path and
    query parameter that has no stricter pattern or enum of its own."""
    for parameter in op.get("parameters", []):
        pattern = _PARAMETER_PATTERN.get(parameter.get("in", ""))
        for string in _strings(parameter.get("schema", {})) if pattern else ():
            if "pattern" not in string and "enum" not in string:
                string["pattern"] = pattern


def _give_examples(node: Any) -> None:
    """An example for every patterned string that has none: ReDoc otherwise builds its
    request samples from the patterns, which took its page seconds longer to render."""
    if isinstance(node, dict):
        if node.get("type") == "string" and "pattern" in node \
                and not {"example", "examples", "enum"} & node.keys():
            node["examples"] = ["abc-123"]
        for value in node.values():
            _give_examples(value)
    elif isinstance(node, list):
        for value in node:
            _give_examples(value)


def document(schema: dict[str, Any]) -> dict[str, Any]:
    """Add the error responses (and the Error schema) to an OpenAPI document, the guard's
    character rule to the string parameters, and examples to patterned strings."""
    _document(schema)
    _give_examples(schema)
    return schema


def _document(schema: dict[str, Any]) -> dict[str, Any]:
    schema.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    ref = {"$ref": "#/components/schemas/Error"}
    for path, operations in schema.get("paths", {}).items():
        if not path.startswith("/v1"):
            continue
        for method, op in operations.items():
            _document_parameters(op)
            responses = op.setdefault("responses", {})
            for status in sorted(statuses_for(path, method)):
                entry: dict[str, Any] = {"description": DESCRIPTIONS[status],
                                         "content": {"application/json": {"schema": ref}}}
                if status == 503:
                    entry["headers"] = {"Retry-After": {"schema": {"type": "integer"}}}
                responses[str(status)] = entry
    return schema
