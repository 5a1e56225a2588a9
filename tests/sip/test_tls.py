"""Issue 23: the switch ↔ service link over TLS. A second Kamailio (the same kamailio.cfg)
reaches commcredits through a TLS-terminating proxy with a self-signed certificate made
here: with ``CC_CA_FILE`` naming that certificate its ``http_client`` verifies the service
and the call is authorized, answered and charged as over plain HTTP; without it the
certificate is refused (fail-closed: 503 to the caller, nothing charged)."""

from __future__ import annotations

from decimal import Decimal

from tests.payments.conftest import free_port as free_local_port
from tests.sip import tls_proxy
from tests.sip.harness import US, Stack, free_port


def test_kamailio_reaches_the_service_over_verified_tls(stack: Stack) -> None:
    cert, key = tls_proxy.self_signed(stack.workdir)
    with tls_proxy.running(free_local_port(), stack.cc_port, cert, key) as proxy:
        url = f'"https://127.0.0.1:{proxy.port}"'
        trusted = stack.start_kamailio("kamailio-tls", free_port(stack.ports),
                                       free_port(stack.ports), CC_URL=url,
                                       CC_CA_FILE=f'"{cert}"')
        tid = stack.tenant(fund="1.00")
        run = stack.uac(US, tenant=tid, talk_ms=3_000, sip_port=trusted)
        (call,) = run.calls.values()
        assert call.how == "hangup", run.out
        assert proxy.handshakes >= 1  # authorize, answer and end all came through TLS
        (line,) = stack.settled(tid, 1)
        assert stack.reported(call.call_id, "kamailio-tls") == ["200"]
        assert Decimal(line["amount"]) == Decimal("-0.03")
        # the same switch without the CA: the certificate is not trusted, the call refused
        before = proxy.handshakes
        untrusted = stack.start_kamailio("kamailio-no-ca", free_port(stack.ports),
                                         free_port(stack.ports), CC_URL=url)
        other = stack.tenant(fund="1.00")
        refused = stack.uac(US, tenant=other, talk_ms=3_000, sip_port=untrusted)
        (call,) = refused.calls.values()
        assert (call.how, call.sip_code) == ("refused", 503), refused.out
        assert proxy.handshakes == before  # no request was ever sent to the service
        assert stack.credits(other)["balance"] == "1.00"
