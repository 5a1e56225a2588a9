"""A Diameter server on a free port of 127.0.0.1, beside the API, on one runtime (both
database backends): a voice tenant funded with 50.00 whose PAYG user has a phone number."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from commcredits.entrypoints import diameter as dia
from commcredits.entrypoints.diameter.server import DiameterServer
from tests.api.voice import Voice, make_voice
from tests.diameter.client import Client

PHONE = "+14255550111"  # dial@contoso.com's phone_number (a PAYG user)
UPN = "dial@contoso.com"


@dataclass
class Dia:
    voice: Voice
    server: DiameterServer

    def client(self, host: str = "kamailio.test", cer: bool = True) -> Client:
        c = Client(self.server.port, host)
        if cer:
            c.cer()
        return c

    def balance(self) -> str:
        return str(self.voice.credits()["balance"])


@pytest.fixture
def dia_env(api: Any) -> Iterator[Dia]:
    voice = make_voice(api)
    voice.fund("50.00")
    api.post(f"/v1/tenants/{voice.tid}/users", {"upn": UPN, "display_name": "dial",
                                                "usage_location": "US",
                                                "phone_number": PHONE}, expect=201)
    for sku in ("MCOEV", "MCOPSTN_PAYG", "MCOPSTNPP"):
        api.put(f"/v1/tenants/{voice.tid}/users/{UPN}/licenses/{sku}", expect=200)
    config = dia.Config("ocs.test", "test", frozenset({"kamailio.test", "other.test"}),
                        cer_timeout_s=0.5, answer_timeout_s=2.0, slice_s=300)
    server = dia.start_in_thread(api.rt, config, "127.0.0.1", 0)
    yield Dia(voice, server)
    server.stop()
