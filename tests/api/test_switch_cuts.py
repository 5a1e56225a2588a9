"""Cut now: the service tells the switch to end a call (a webhook on loopback stands in for
Kamailio's xhttp listener) when an operator stops it, the credits licence is removed, its
destination is blocked, or lots expire under its reservation."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from commcredits.adapters.switch_push import WebhookSwitchNotifier
from commcredits.services import cuts
from tests.api.voice import UK, make_voice


class Receiver:
    """A switch's cut listener: records each POST; answers ``status`` (200 by default)."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.headers: list[str | None] = []
        self.status = 200
        self.event = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.headers.append(self.headers.get("Authorization"))
                if receiver.status == 200:
                    receiver.received.append(json.loads(body))
                    receiver.event.set()
                self.send_response(receiver.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/cut"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, n: int) -> list[dict[str, Any]]:
        for _ in range(100):
            if len(self.received) >= n:
                break
            self.event.wait(0.05)
            self.event.clear()
        return self.received


@pytest.fixture
def receiver(api) -> Iterator[Receiver]:
    r = Receiver()
    api.rt.switch = WebhookSwitchNotifier(r.url, "s3cret")
    yield r
    r.server.shutdown()


def test_operator_cut_is_pushed_and_stops_the_next_interim(voice, api, receiver):
    voice.call("c1", UK)
    out = api.post("/v1/calls/cut", {"call_id": "c1", "reason": "fraud_suspected"},
                   expect=200).json()
    assert out == {"call_id": "c1", "tenant_id": voice.tid, "status": "cut_requested",
                   "reason": "fraud_suspected"}
    assert receiver.wait(1) == [{"call_id": "c1", "tenant_id": voice.tid,
                                 "reason": "fraud_suspected"}]
    assert receiver.headers == ["Bearer s3cret"]
    r = voice.interim("c1", 10)
    assert (r["continue"], r["reason"], r["final"]) == (False, "fraud_suspected", True)
    assert voice.end("c1", 12)["charge"] == "0.02"  # the switch reports the real talk time
    api.post("/v1/calls/cut", {"call_id": "c1"}, expect=409)  # no longer in progress
    api.post("/v1/calls/cut", {"call_id": "nope"}, expect=404)
    api.post("/v1/calls/cut", {"call_id": "c1", "reason": "Bad Reason!"}, expect=422)
    listed = api.get("/v1/switch-cuts", expect=200).json()
    assert [(c["call_id"], c["status"]) for c in listed] == [("c1", "sent")]


def test_a_tenant_admin_cuts_only_its_own_calls(voice, api, receiver):
    voice.call("c2", UK)
    other = make_voice(api)
    mine = api.new_key("global_admin", voice.tid)
    theirs = api.new_key("global_admin", other.tid)
    api.post("/v1/calls/cut", {"call_id": "c2"}, key=theirs, expect=404)
    api.post("/v1/calls/cut", {"call_id": "c2"}, key=voice.switch, expect=403)
    api.post("/v1/calls/cut", {"call_id": "c2"}, key=mine, expect=200)
    assert receiver.wait(1)[0]["reason"] == "operator_cut"


def test_removing_the_credits_license_cuts_calls_it_pays_for(voice, api, receiver):
    voice.call("l1", UK)  # payg@ pays from credits
    voice.call("l2", "+14255550111", upn="dom@contoso.com")  # domestic pool: not cut
    api.delete(f"/v1/tenants/{voice.tid}/users/payg@contoso.com/licenses/MCOPSTNPP",
               expect=200)
    assert [c["call_id"] for c in receiver.wait(1)] == ["l1"]
    assert voice.interim("l2", 10)["continue"] is True


def test_blocking_a_destination_cuts_calls_to_it(voice, api, receiver):
    voice.call("b1", UK)
    voice.call("b2", "+14255550111")
    api.patch(f"/v1/tenants/{voice.tid}", {"blocked_prefixes": ["+44"]}, expect=200)
    got = receiver.wait(1)
    assert [(c["call_id"], c["reason"]) for c in got] == [("b1", "destination_blocked")]


def test_lots_expiring_under_a_reservation_cut_the_call(api, receiver):
    v = make_voice(api)
    v.fund("1.00")  # 2030-03-10: expires 2031-03-10
    api.set_clock("2031-03-10T11:58:00Z")
    v.call("e1", UK)
    assert v.credits()["reserved"] == "0.10"
    api.set_clock("2031-03-10T12:00:01Z")  # the lot expires under the call's reservation
    assert [(c["call_id"], c["reason"]) for c in receiver.wait(1)] == [
        ("e1", "insufficient_credits")]


def test_a_failed_push_is_retried_by_the_cuts_job(voice, api, receiver):
    receiver.status = 503
    voice.call("r1", UK)
    api.post("/v1/calls/cut", {"call_id": "r1"}, expect=200)
    for _ in range(100):  # the immediate push fails
        rows = api.get("/v1/switch-cuts").json()
        if rows and rows[0]["attempts"] == 1:
            break
        receiver.event.wait(0.05)
    assert rows[0]["status"] == "pending" and "503" in rows[0]["last_error"]
    receiver.status = 200
    ran = api.set_clock("2030-03-10T12:00:06Z")  # retried after 5 s
    assert ran["jobs"]["cuts"] == 1
    assert receiver.received == [{"call_id": "r1", "tenant_id": voice.tid,
                                  "reason": "operator_cut"}]


def test_without_a_receiver_the_cut_waits_on_the_call(voice, api):
    voice.call("n1", UK)
    api.post("/v1/calls/cut", {"call_id": "n1"}, expect=200)
    api.set_clock("2030-03-10T12:00:01Z")
    with api.rt.db.uow() as uow:
        assert cuts.deliver(api.rt.db, None) == 0
        rows = uow.switching.cuts(voice.tid)
    assert rows[0].status == "no_receiver"
    assert voice.interim("n1", 5)["continue"] is False
