-- The database and its two roles (docs/deployment.md § 1). Run as a PostgreSQL superuser:
--   psql -v ON_ERROR_STOP=1 -v db=commcredits -v owner=commcredits_owner -v app=commcredits \
--        -f deploy/postgres-roles.sql
-- then give both roles a password (\password commcredits_owner, \password commcredits) unless
-- they sign in by peer or certificate. tests/integration/test_deploy_guide.py runs this file.
--
-- owner: owns the schema and every table; only migrations sign in as it
--        (commcredits db upgrade). app: what the service runs as: rows only, no DDL, and
--        the ledger's triggers refuse it UPDATE and DELETE on ledger rows like anyone else.
CREATE ROLE :"owner" LOGIN;
CREATE ROLE :"app" LOGIN;
CREATE DATABASE :"db" OWNER :"owner";
\connect :"db"
CREATE SCHEMA commcredits AUTHORIZATION :"owner";
REVOKE ALL ON SCHEMA public FROM PUBLIC;
REVOKE CREATE ON SCHEMA commcredits FROM PUBLIC;
GRANT USAGE ON SCHEMA commcredits TO :"app";
ALTER ROLE :"owner" IN DATABASE :"db" SET search_path = commcredits;
ALTER ROLE :"app" IN DATABASE :"db" SET search_path = commcredits;
-- whatever a migration creates later is the service's to use, and nothing more
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA commcredits
  GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"app";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA commcredits
  GRANT USAGE, SELECT ON SEQUENCES TO :"app";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA commcredits
  GRANT EXECUTE ON FUNCTIONS TO :"app";
