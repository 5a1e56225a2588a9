"""Every error is ``{"error": {"code", "message"}}`` with a 4xx status; nothing answers 5xx
for a request's fault. Validation errors never echo the input (it may hold a card number)."""

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
}


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


def error_response(err: DomainError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if err.kind is ErrorKind.UNAUTHORIZED else None
    extra = {"details": err.details} if err.details else {}
    return JSONResponse(error_body(err.code, err.message, **extra), STATUS[err.kind],
                        headers=headers)


def validation_error(errors: Sequence[Any]) -> DomainError:
    """Pydantic's errors as the one ``validation_error`` the API answers (the console uses
    it too, so a form is refused exactly as the API would refuse the same fields)."""
    details = []
    for e in errors:
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
    return JSONResponse(error_body(code, str(exc.detail)), status,
                        headers=getattr(exc, "headers", None))


def _domain(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    return error_response(exc)


def _integrity(request: Request, exc: Exception) -> JSONResponse:
    # A race lost against a concurrent request (e.g. the same UPN created twice at once).
    log.info("integrity conflict: %s", type(exc).__name__)
    return JSONResponse(error_body("conflict", "the request conflicts with a concurrent change; "
                                   "read the current state and retry"), 409)


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(DomainError, _domain)
    app.add_exception_handler(sa.exc.IntegrityError, _integrity)
