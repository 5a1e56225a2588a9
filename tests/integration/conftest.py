"""Fixtures of the integration tests: the throw-away NATS corner (``nats_bus.py``)."""

from tests.integration.nats_bus import bus

__all__ = ["bus"]
