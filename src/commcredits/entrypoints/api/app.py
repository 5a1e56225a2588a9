"""The FastAPI application: the REST API (``/v1``), the web console, health and metrics."""

from __future__ import annotations

import functools
import ipaddress
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi_offline import FastAPIOffline
from prometheus_client import Counter, Histogram
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from commcredits import __version__
from commcredits.config import Settings
from commcredits.entrypoints.api import errors
from commcredits.entrypoints.api.routes import (
    audit,
    credits,
    gateway,
    operator,
    rating,
    reports,
    rerates,
    statements,
    system,
    telephony,
    tenant_admin,
)
from commcredits.entrypoints.runtime import Runtime
from commcredits.entrypoints.worker import JobThread

REQUESTS = Counter("commcredits_http_requests_total", "HTTP requests", ["method", "route",
                                                                       "status"])
LATENCY = Histogram("commcredits_http_request_seconds", "HTTP request latency", ["route"])


@functools.cache
def _requests(method: str, route: str, status: int) -> Any:
    return REQUESTS.labels(method, route, str(status))  # (the labelled child, looked up once)


@functools.cache
def _latency(route: str) -> Any:
    return LATENCY.labels(route)


def create_app(settings: Settings | None = None, runtime: Runtime | None = None,
               run_jobs: bool = False) -> FastAPI:
    rt = runtime or Runtime.from_settings(settings or Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        worker = JobThread(rt, rt.settings.jobs_interval_s) if run_jobs else None
        if worker:
            worker.start()
        yield
        if worker:
            worker.stop()

    # /docs and /redoc load Swagger UI and ReDoc from the fastapi-offline package: no CDN
    app = FastAPIOffline(title="commcredits", version=__version__, lifespan=lifespan,
                         description="Communications credits: prepaid balance and real-time "
                                     "PSTN charging. Money is a decimal string; errors are "
                                     '`{"error": {"code", "message"}}`.')
    app.state.runtime = rt
    errors.install(app)
    for module in (operator, tenant_admin, credits, gateway, rating, telephony, reports, system,
                   audit, statements, rerates):
        app.include_router(module.router)
    from commcredits.entrypoints.console import pages
    pages.install(app)

    def record(method: str, route: str, status: int, seconds: float) -> None:
        _requests(method, route, status).inc()
        _latency(route).observe(seconds)

    @app.middleware("http")
    async def measure(request: Request,
                      call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        start = time.perf_counter()
        response = await call_next(request)
        record(request.method, getattr(request.scope.get("route"), "path", "unmatched"),
               response.status_code, time.perf_counter() - start)
        return response

    plain_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = errors.document(plain_openapi())
        return app.openapi_schema
    app.openapi = openapi  # type: ignore[method-assign]

    from commcredits.entrypoints.api.front import SwitchFront, TelephonyFront
    from commcredits.entrypoints.api.guard import RequestGuard
    from commcredits.entrypoints.api.strict_json import StrictJsonBodies
    app.add_middleware(StrictJsonBodies)  # UTF-8, unique names: before any route parses
    app.state.switch_front = SwitchFront(rt, record)  # serve's protocol answers with it too
    app.add_middleware(TelephonyFront, front=app.state.switch_front)  # inside the guard
    app.add_middleware(RequestGuard, max_body_bytes=rt.settings.max_body_bytes)
    trusted = trusted_proxies(rt.settings.trusted_proxies)
    if trusted:  # the client's address and scheme as the named proxies saw them, outermost
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=trusted)
    return app


def trusted_proxies(setting: str) -> list[str]:
    """``COMMCREDITS_TRUSTED_PROXIES`` as a list of IPs / CIDRs (checked: a typo refuses to
    start rather than trusting nobody, or everybody, by surprise)."""
    names = [n.strip() for n in setting.split(",") if n.strip()]
    for name in names:
        try:
            ipaddress.ip_network(name)  # strict, as uvicorn's middleware reads it
        except ValueError:
            raise ValueError(f"COMMCREDITS_TRUSTED_PROXIES: {name!r} is not an IP address "
                             f"or CIDR network (host bits zero)") from None
    return names
