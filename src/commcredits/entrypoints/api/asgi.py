"""The ASGI application for ``commcredits serve --workers N`` (and any ASGI server):
``uvicorn --factory commcredits.entrypoints.api.asgi:create``. Settings come from the
environment (``COMMCREDITS_*``); every worker runs the job thread, and the jobs lease lets
exactly one of them run the jobs (``COMMCREDITS_SERVE_JOBS=0`` turns them off)."""

from __future__ import annotations

import os

from fastapi import FastAPI

from commcredits.config import Settings
from commcredits.entrypoints import logs
from commcredits.entrypoints.api.app import create_app
from commcredits.entrypoints.runtime import Runtime

JOBS_ENV = "COMMCREDITS_SERVE_JOBS"


def create() -> FastAPI:
    settings = Settings()
    logs.configure(settings.log_json)  # a fresh process: uvicorn only set up its own loggers
    return create_app(runtime=Runtime.from_settings(settings),
                      run_jobs=os.environ.get(JOBS_ENV, "1") != "0")
