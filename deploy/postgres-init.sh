#!/bin/sh
# PostgreSQL's first start in compose.yaml (/docker-entrypoint-initdb.d): the database and
# its two roles from postgres-roles.sql, with the passwords compose passes.
set -eu
psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d postgres -v db=commcredits \
  -v owner=commcredits_owner -v app=commcredits -f /deploy/postgres-roles.sql
psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d postgres \
  -v owner_pw="$COMMCREDITS_OWNER_PASSWORD" -v app_pw="$COMMCREDITS_APP_PASSWORD" <<'SQL'
ALTER ROLE commcredits_owner PASSWORD :'owner_pw';
ALTER ROLE commcredits PASSWORD :'app_pw';
SQL
