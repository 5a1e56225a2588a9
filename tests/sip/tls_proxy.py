"""A TLS-terminating proxy for one test: what nginx or HAProxy does in front of commcredits
when the switch reaches it over a network (docs/deployment.md § 6). Each accepted TLS
connection is piped to the plain-HTTP service; ``handshakes`` counts the ones that
completed, so a test can tell the switch really came through TLS."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path


def self_signed(workdir: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A certificate for ``host`` (its own CA) and its key, made with openssl now."""
    cert, key = workdir / "service-cert.pem", workdir / "service-key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", f"/CN={host}", "-addext", f"subjectAltName=IP:{host}",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


class TlsProxy:
    def __init__(self, port: int, backend: int, cert: Path, key: Path) -> None:
        self.port, self.backend = port, backend
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.handshakes = 0
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError, OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        with contextlib.suppress(Exception):
            writer.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.handshakes += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.backend)
        await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(
            self._client, "127.0.0.1", self.port, ssl=self.context))
        self.ready.set()
        try:
            self.loop.run_forever()
        finally:
            server.close()
            self.loop.run_until_complete(server.wait_closed())


@contextlib.contextmanager
def running(port: int, backend: int, cert: Path, key: Path) -> Iterator[TlsProxy]:
    proxy = TlsProxy(port, backend, cert, key)
    thread = threading.Thread(target=proxy._run, daemon=True)
    thread.start()
    proxy.ready.wait(10)
    try:
        yield proxy
    finally:
        proxy.loop.call_soon_threadsafe(proxy.loop.stop)
        thread.join(10)
