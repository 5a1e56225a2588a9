#!/bin/sh
# Kamailio in compose.yaml: wait for the demo's switch key (written by the commcredits
# container to the shared volume), then run kamailio.cfg listening on every address.
# Outside the demo, give CC_KEY (a `commcredits keys create --role switch` key) instead.
set -eu
if [ -z "${CC_KEY:-}" ]; then
  keys="${COMMCREDITS_DEMO_KEYS:-/shared/demo-keys.env}"
  echo "waiting for $keys"
  while [ ! -s "$keys" ]; do sleep 1; done
  CC_KEY="$(sed -n 's/^COMMCREDITS_SWITCH_KEY=//p' "$keys")"
fi
exec kamailio -DD -E -f /etc/kamailio/commcredits.cfg -Y /tmp \
  -A "LISTEN_IP=${LISTEN_IP:-0.0.0.0}" -A "SIP_PORT=${SIP_PORT:-5060}" \
  -A "HTTP_LISTEN_IP=${HTTP_LISTEN_IP:-0.0.0.0}" -A "HTTP_PORT=${HTTP_PORT:-5071}" \
  -A "CC_URL=\"${CC_URL:-http://commcredits:8000}\"" -A "CC_KEY=\"$CC_KEY\"" \
  -A "GATEWAY=\"${GATEWAY:-sip:127.0.0.1:5062}\"" -A "CUT_TOKEN=\"${CUT_TOKEN:?set CUT_TOKEN}\"" \
  -A "FAIL_OPEN=${FAIL_OPEN:-0}"
