#!/bin/sh
# The container's command (Containerfile): optionally migrate, optionally load the demo,
# then serve. Settings come from the environment (compose.yaml):
#   COMMCREDITS_MIGRATE_DB   a URL to run `commcredits db upgrade` against first (the schema
#                            owner's; the service itself runs as a role without DDL)
#   COMMCREDITS_DEMO_USAGE_DAYS  load the demo with that many days of usage (keys on stdout
#                            and in $COMMCREDITS_DEMO_KEYS when set)
#   COMMCREDITS_HOST, COMMCREDITS_PORT, COMMCREDITS_WORKERS  where and how to serve
# tests/integration/test_deploy_guide.py runs this script as it is.
set -eu
if [ -n "${COMMCREDITS_MIGRATE_DB:-}" ]; then
  commcredits db upgrade --db "$COMMCREDITS_MIGRATE_DB"
fi
if [ -n "${COMMCREDITS_DEMO_USAGE_DAYS:-}" ]; then
  keys="${COMMCREDITS_DEMO_KEYS:-/tmp/commcredits-demo-keys.env}"
  commcredits demo --usage "$COMMCREDITS_DEMO_USAGE_DAYS" > "$keys.part"
  mv "$keys.part" "$keys"
  cat "$keys"
fi
exec commcredits serve --host "${COMMCREDITS_HOST:-0.0.0.0}" --port "${COMMCREDITS_PORT:-8000}" \
  --workers "${COMMCREDITS_WORKERS:-2}"
