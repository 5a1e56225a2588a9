"""Run the real app under uvicorn on a free loopback port in a background thread: for tests,
benchmarks and embedding the service in another Python process."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from commcredits.entrypoints.api.app import create_app
from commcredits.entrypoints.http_server import uvicorn_options
from commcredits.entrypoints.runtime import Runtime


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(rt: Runtime, *, run_jobs: bool = False) -> Iterator[str]:
    """Serve ``rt`` on 127.0.0.1; yields the base URL; stops the server on exit."""
    port = free_port()
    config = uvicorn.Config(create_app(runtime=rt, run_jobs=run_jobs), host="127.0.0.1",
                            port=port, log_level="warning", lifespan="on",
                            **uvicorn_options(rt.settings))  # as ``serve`` runs it
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the embedded server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
