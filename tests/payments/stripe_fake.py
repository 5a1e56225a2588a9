"""A local fake of the few Stripe endpoints the Stripe gateway uses, and of Stripe.js.

It answers the official ``stripe`` library (pointed at it with ``api_base``) as Stripe does
for the calls made (customers, SetupIntents, PaymentIntents confirmed off-session, refunds),
with Stripe's test cards: ``4242424242424242`` pays, ``4000000000000002`` is declined,
``4000000000000069`` is expired (both already when saved), ``4000000000000341`` is saved and
then declined, ``4000002760003184`` is saved and then needs 3-D Secure for every charge.
Idempotency keys replay the first answer, as Stripe's do. Faults: :meth:`StripeFake.stall`
makes the next requests to a path do their work and then answer only after a delay (the
client times out: a charge taken that the service did not hear back about); :meth:`fail`
answers 500 without doing anything. :meth:`event` signs a webhook event the way Stripe
does (``Stripe-Signature: t=…,v1=HMAC-SHA256(secret, "t.payload")``).

``/stripe.js`` is a stand-in for ``https://js.stripe.com/v3/`` (no internet in tests): its
card element is an input of its own, without a ``name``, and ``confirmCardSetup`` sends the
number to this fake, never to the page's own server, as the real one sends it to Stripe.
Every request body the fake received is kept in :attr:`StripeFake.bodies`.

A saved card has a ``fingerprint`` as Stripe's do: the same for the same card number within
this fake (one Stripe account), different for another number or another fake.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

DECLINE = {"4000000000000002": ("card_declined", "generic_decline", "Your card was declined."),
           "4000000000000341": ("card_declined", "generic_decline", "Your card was declined."),
           "4000000000000069": ("expired_card", None, "Your card has expired."),
           "4000002760003184": ("authentication_required", "authentication_required",
                                "Your card was declined. This transaction requires "
                                "authentication.")}
BRANDS = {"4": "visa", "5": "mastercard", "3": "amex"}

STRIPE_JS = r"""
(function () {
  const ORIGIN = new URL(document.currentScript.src).origin;
  window.Stripe = function (publishableKey) {
    return {
      elements() {
        return { create(kind) {
          let input = null;
          return {
            mount(where) {
              const host = typeof where === "string" ? document.querySelector(where) : where;
              input = document.createElement("input");
              input.id = "fake-stripe-card";  // no name: a form never submits it
              input.placeholder = "card number MM/YYYY";
              input.autocomplete = "off";
              host.appendChild(input);
            },
            _read() { return input.value.trim(); },
          };
        } };
      },
      async confirmCardSetup(clientSecret, data) {
        const [number, exp] = data.payment_method.card._read().split(/\s+/);
        const [month, year] = (exp || "").split("/");
        const id = clientSecret.split("_secret_")[0];
        const r = await fetch(ORIGIN + "/v1/setup_intents/" + id + "/confirm", {
          method: "POST", body: new URLSearchParams({
            client_secret: clientSecret, key: publishableKey, "card[number]": number || "",
            "card[exp_month]": month || "", "card[exp_year]": year || ""})});
        const body = await r.json();
        return r.ok ? { setupIntent: body } : { error: body.error };
      },
    };
  };
})();
"""


def _nested(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """``metadata[a]=1&expand[0]=x`` → ``{"metadata": {"a": "1"}, "expand": ["x"]}``."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        head, _, rest = key.partition("[")
        if not rest:
            out[head] = value
            continue
        sub = rest.rstrip("]").split("][")[0]
        if sub.isdigit():
            out.setdefault(head, []).append(value)
        else:
            out.setdefault(head, {})[sub] = value
    return out


class StripeFake:
    def __init__(self, port: int, webhook_secret: str = "whsec_test_fake") -> None:
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.webhook_secret = webhook_secret
        self.lock = threading.Lock()
        self.objects: dict[str, dict[str, Any]] = {}
        self.idempotent: dict[str, tuple[int, dict[str, Any]]] = {}
        self.intents: list[dict[str, Any]] = []  # every PaymentIntent created (once per key)
        self.refunds: list[dict[str, Any]] = []
        self.bodies: list[tuple[str, str]] = []  # (path, raw body) of every request
        self.keys_seen: list[tuple[str, str | None]] = []  # (path, Idempotency-Key) of POSTs
        self._stall: dict[str, list[float]] = {}
        self._fail: dict[str, int] = {}
        self._account = secrets.token_hex(8)  # fingerprints differ between accounts
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.server.daemon_threads = True

    # -- faults and helpers ---------------------------------------------------------------
    def stall(self, path: str, seconds: float, times: int = 1) -> None:
        """The next ``times`` POSTs to ``path`` do their work, then answer after ``seconds``."""
        self._stall.setdefault(path, []).extend([seconds] * times)

    def fail(self, path: str, times: int = 1) -> None:
        """The next ``times`` requests to ``path`` answer 500 and change nothing."""
        self._fail[path] = self._fail.get(path, 0) + times

    def succeeded(self) -> list[dict[str, Any]]:
        return [i for i in self.intents if i["status"] == "succeeded"]

    def confirm_setup(self, setup_intent_id: str, number: str, exp_month: int = 12,
                      exp_year: int = 2035) -> dict[str, Any]:
        """What Stripe.js does in the browser: give the card to Stripe for a SetupIntent."""
        status, body = self._confirm_setup(setup_intent_id, {
            "card": {"number": number, "exp_month": str(exp_month), "exp_year": str(exp_year)}})
        assert status == 200, body
        return body

    def fingerprint(self, number: str) -> str:
        """The card's fingerprint in this account (Stripe's are 16 characters)."""
        return hashlib.sha256(f"{self._account}:{number}".encode()).hexdigest()[:16]

    def event(self, kind: str, obj: dict[str, Any], secret: str | None = None,
              at: int | None = None) -> tuple[bytes, str]:
        """A webhook event's body and ``Stripe-Signature`` header."""
        payload = json.dumps({"id": f"evt_{secrets.token_hex(8)}", "object": "event",
                              "type": kind, "created": int(time.time()), "livemode": False,
                              "api_version": "2026-10-28.endive",
                              "data": {"object": obj}}).encode()
        t = at if at is not None else int(time.time())
        mac = hmac.new((secret or self.webhook_secret).encode(), f"{t}.".encode() + payload,
                       hashlib.sha256).hexdigest()
        return payload, f"t={t},v1={mac}"

    # -- the API ------------------------------------------------------------------------------
    def _new(self, prefix: str, **fields: Any) -> dict[str, Any]:
        obj = {"id": f"{prefix}_{secrets.token_hex(8)}", "livemode": False,
               "created": int(time.time()), "metadata": {}, **fields}
        self.objects[obj["id"]] = obj
        return obj

    def _error(self, status: int, kind: str, message: str, **extra: Any
               ) -> tuple[int, dict[str, Any]]:
        return status, {"error": {"type": kind, "message": message, **extra}}

    def _confirm_setup(self, sid: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        intent = self.objects.get(sid)
        if intent is None:
            return self._error(404, "invalid_request_error", f"No such setupintent: {sid}")
        card = params.get("card") or {}
        number = "".join(ch for ch in str(card.get("number", "")) if ch.isdigit())
        if len(number) < 12:
            return self._error(402, "card_error", "Your card number is incomplete.",
                               code="incomplete_number")
        if number in ("4000000000000002", "4000000000000069"):  # refused when saved, too
            code, decline, message = DECLINE[number]
            return self._error(402, "card_error", message, code=code, decline_code=decline)
        pm = self._new("pm", object="payment_method", type="card", customer=intent["customer"],
                       card={"brand": BRANDS.get(number[0], "unknown"), "last4": number[-4:],
                             "exp_month": int(card.get("exp_month") or 12),
                             "exp_year": int(card.get("exp_year") or 2035),
                             "country": "US", "funding": "credit",
                             "fingerprint": self.fingerprint(number)})
        pm["_number"] = number  # the fake's own record of the card (Stripe keeps it too)
        intent.update(status="succeeded", payment_method=pm["id"])
        return 200, self._public(intent)

    def _public(self, obj: dict[str, Any], expand: tuple[str, ...] = ()) -> dict[str, Any]:
        out = {k: v for k, v in obj.items() if not k.startswith("_")}
        for name in expand:
            if isinstance(out.get(name), str) and out[name] in self.objects:
                out[name] = self._public(self.objects[out[name]])
        return out

    def _route(self, method: str, path: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        parts = path.strip("/").split("/")
        if method == "POST" and path == "/v1/customers":
            return 200, self._public(self._new("cus", object="customer",
                                               metadata=params.get("metadata", {})))
        if method == "POST" and path == "/v1/setup_intents":
            intent = self._new("seti", object="setup_intent", customer=params.get("customer"),
                               usage=params.get("usage"), status="requires_payment_method",
                               payment_method=None, metadata=params.get("metadata", {}))
            intent["client_secret"] = f"{intent['id']}_secret_{secrets.token_hex(8)}"
            return 200, self._public(intent)
        if len(parts) == 4 and parts[:2] == ["v1", "setup_intents"] and parts[3] == "confirm":
            return self._confirm_setup(parts[2], params)
        if method == "GET" and len(parts) == 3 and parts[1] in ("setup_intents",
                                                                "payment_methods"):
            obj = self.objects.get(parts[2])
            if obj is None:
                return self._error(404, "invalid_request_error", f"No such object: {parts[2]}")
            return 200, self._public(obj, tuple(params.get("expand", [])))
        if method == "POST" and path == "/v1/payment_intents":
            return self._charge(params)
        if method == "POST" and path == "/v1/refunds":
            pi = self.objects.get(str(params.get("payment_intent")))
            if pi is None or pi.get("status") != "succeeded":
                return self._error(400, "invalid_request_error", "nothing to refund",
                                   code="charge_not_refundable")
            refund = self._new("re", object="refund", payment_intent=pi["id"],
                               amount=int(params.get("amount") or pi["amount"]),
                               currency=pi["currency"], status="succeeded")
            self.refunds.append(refund)
            return 200, self._public(refund)
        return self._error(404, "invalid_request_error", f"Unrecognized request URL ({path})")

    def _charge(self, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        pm = self.objects.get(str(params.get("payment_method")))
        if pm is None or pm.get("customer") != params.get("customer"):
            return self._error(400, "invalid_request_error", "No such PaymentMethod",
                               code="resource_missing")
        intent = self._new("pi", object="payment_intent", amount=int(params["amount"]),
                           currency=params["currency"], customer=params.get("customer"),
                           payment_method=pm["id"], description=params.get("description"),
                           metadata=params.get("metadata", {}), status="succeeded",
                           off_session=params.get("off_session"))
        number = pm["_number"]
        if number in DECLINE:
            code, decline, message = DECLINE[number]
            error = {"type": "card_error", "code": code, "decline_code": decline,
                     "message": message, "payment_intent": {"id": intent["id"]}}
            intent.update(status="requires_payment_method", last_payment_error=error)
            self.intents.append(intent)
            return 402, {"error": {**error, "payment_intent": self._public(intent)}}
        self.intents.append(intent)
        return 200, self._public(intent)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: bytes, kind: str = "application/json") -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Access-Control-Allow-Origin", "*")
                self.send_header("Request-Id", f"req_{secrets.token_hex(6)}")
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path == "/stripe.js":
                    self._send(200, STRIPE_JS.encode(), "application/javascript")
                    return
                self._serve("GET", url.path, _nested(parse_qsl(url.query)), "")

            def do_POST(self) -> None:
                url = urlsplit(self.path)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                self._serve("POST", url.path, _nested(parse_qsl(raw)), raw)

            def _serve(self, method: str, path: str, params: dict[str, Any], raw: str) -> None:
                key = self.headers.get("Idempotency-Key") if method == "POST" else None
                with fake.lock:
                    fake.bodies.append((path, raw))
                    if method == "POST":
                        fake.keys_seen.append((path, key))
                    if fake._fail.get(path):
                        fake._fail[path] -= 1
                        status, body = fake._error(500, "api_error", "Something went wrong")
                        stall = 0.0
                    else:
                        stall = fake._stall[path].pop(0) if fake._stall.get(path) else 0.0
                        if key and key in fake.idempotent:
                            status, body = fake.idempotent[key]
                        else:
                            status, body = fake._route(method, path, params)
                            if key:
                                fake.idempotent[key] = (status, body)
                if stall:
                    time.sleep(stall)
                # the client may have given up waiting (a stalled answer)
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self._send(status, json.dumps(body).encode())

        return Handler


@contextmanager
def running(port: int) -> Iterator[StripeFake]:
    fake = StripeFake(port)
    thread = threading.Thread(target=fake.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake
    finally:
        fake.server.shutdown()
        fake.server.server_close()
