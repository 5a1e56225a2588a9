"""Issue 23: the deploy guide's steps run once, as written, on a clean database.

1. ``deploy/postgres-roles.sql`` with ``psql`` as the superuser: a new database, its owner
   role and the service's role (random names, dropped afterwards);
2. the migration as the owner: ``commcredits db upgrade``;
3. the systemd unit's exact ``ExecStart`` (``deploy/commcredits.service``), its ``${…}``
   expanded from the example environment file as systemd would, the install prefix
   ``/opt/commcredits/venv`` being this checkout's virtualenv; the service answers and
   works as the app role, which cannot change the schema;
4. the container's command (``deploy/container-start.sh``) as compose runs it: migrate as
   the owner, load the demo with usage, serve.

No container engine here: the Containerfile and compose.yaml are checked for what the
guide promises (non-root, slim, the three services and the files they name)."""

from __future__ import annotations

import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
import yaml

from tests.conftest import PG_SERVER
from tests.payments.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PG = sa.engine.make_url(PG_SERVER)
BIN = Path(sys.prefix) / "bin"

pytestmark = pytest.mark.postgres


def _url(role: str, db: str) -> str:
    return f"postgresql+psycopg://{role}@{PG.host}:{PG.port or 5432}/{db}"


@pytest.fixture
def clean_database() -> Iterator[dict[str, str]]:
    tag = secrets.token_hex(4)
    names = {"db": f"cc_deploy_{tag}", "owner": f"cc_owner_{tag}", "app": f"cc_app_{tag}"}
    try:
        yield names
    finally:
        engine = sa.create_engine(PG_SERVER, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{names["db"]}" WITH (FORCE)')
            for role in (names["app"], names["owner"]):
                conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{role}"')
        engine.dispose()


def _psql_roles(names: dict[str, str]) -> None:
    """Step 1, the command line of docs/deployment.md."""
    assert shutil.which("psql"), "psql (postgresql-client) is needed"
    done = subprocess.run(
        ["psql", "-h", PG.host or "127.0.0.1", "-p", str(PG.port or 5432),
         "-U", PG.username or "postgres", "-d", PG.database or "postgres",
         "-v", "ON_ERROR_STOP=1", "-v", f"db={names['db']}", "-v", f"owner={names['owner']}",
         "-v", f"app={names['app']}", "-f", str(DEPLOY / "postgres-roles.sql")],
        capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def _unit_command(env: dict[str, str]) -> list[str]:
    """The unit's ExecStart, expanded as systemd does (``${NAME}`` from the environment)."""
    unit = (DEPLOY / "commcredits.service").read_text()
    (line,) = [x for x in unit.splitlines() if x.startswith("ExecStart=")]
    argv = shlex.split(line.removeprefix("ExecStart="))
    argv = [re.sub(r"\$\{(\w+)\}", lambda m: env[m.group(1)], a) for a in argv]
    assert argv[0] == "/opt/commcredits/venv/bin/commcredits"
    return [str(BIN / "commcredits"), *argv[1:]]


def _env_file(path: Path, **values: str) -> dict[str, str]:
    """The example environment file with this test's values in place of the examples."""
    env: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            env[name] = values.pop(name, value)
    assert not values, f"not in the example file: {sorted(values)}"
    return env


def _wait(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[0].decode(errors="replace")[-3000:]
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.3)
    raise AssertionError("the service did not answer")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run([str(BIN / "commcredits"), *args], env=env, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr + done.stdout
    return done.stdout


def test_roles_migration_and_the_systemd_unit_on_a_clean_database(clean_database, tmp_path):
    names = clean_database
    _psql_roles(names)
    owner_url, app_url = _url(names["owner"], names["db"]), _url(names["app"], names["db"])
    base = {"PATH": f"{BIN}:{os.environ['PATH']}", "HOME": str(tmp_path)}
    _cli(base, "db", "upgrade", "--db", owner_url)  # step 2, as the schema owner
    port = free_port()
    env = {**base, **_env_file(DEPLOY / "commcredits.env.example", COMMCREDITS_DB=app_url,
                               COMMCREDITS_SECRET_KEY=secrets.token_urlsafe(48),
                               COMMCREDITS_PORT=str(port))}
    proc = subprocess.Popen(_unit_command(env), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    try:
        _wait(port, proc)
        key = _cli(env, "keys", "create", "--role", "operator").strip().splitlines()[-1]
        api = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10,
                           headers={"Authorization": f"Bearer {key}"})
        tenant = api.post("/v1/tenants", json={"name": "Fabrikam", "country": "US",
                                               "commerce": "legacy"})
        assert tenant.status_code == 201, tenant.text
        assert api.get(f"/v1/tenants/{tenant.json()['id']}/credits").json()["balance"] == "0.00"
        assert "ledger OK" in _cli(env, "ledger", "verify")
    finally:
        _stop(proc)
    # the service's role has rows, not the schema
    engine = sa.create_engine(app_url)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("SELECT current_schema()").scalar() == "commcredits"
        for ddl in ("CREATE TABLE intruder (x int)", "DROP TABLE tenants",
                    "ALTER TABLE tenants ADD COLUMN x int"):
            with engine.connect() as conn, pytest.raises(sa.exc.ProgrammingError,
                                                         match=r"permission denied|owner"):
                conn.exec_driver_sql(ddl)
    finally:
        engine.dispose()


def test_the_container_command_migrates_loads_the_demo_and_serves(clean_database, tmp_path):
    names = clean_database
    _psql_roles(names)
    port = free_port()
    env = {"PATH": f"{BIN}:{os.environ['PATH']}", "HOME": str(tmp_path),
           "COMMCREDITS_MIGRATE_DB": _url(names["owner"], names["db"]),
           "COMMCREDITS_DB": _url(names["app"], names["db"]),
           "COMMCREDITS_SECRET_KEY": secrets.token_urlsafe(48),
           "COMMCREDITS_DEMO_USAGE_DAYS": "3",
           "COMMCREDITS_DEMO_KEYS": str(tmp_path / "demo-keys.env"),
           "COMMCREDITS_HOST": "127.0.0.1", "COMMCREDITS_PORT": str(port),
           "COMMCREDITS_WORKERS": "2"}
    proc = subprocess.Popen([str(DEPLOY / "container-start.sh")], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        _wait(port, proc, timeout=120)
        keys = dict(line.split("=", 1) for line in
                    (tmp_path / "demo-keys.env").read_text().splitlines()
                    if line.startswith("COMMCREDITS_"))
        tid = keys["COMMCREDITS_DEMO_TENANT"]
        admin = {"Authorization": f"Bearer {keys['COMMCREDITS_GLOBAL_ADMIN_KEY']}"}
        rows = httpx.get(f"http://127.0.0.1:{port}/v1/tenants/{tid}/reports/pstn-usage?days=7",
                         headers=admin, timeout=10).json()
        assert len(rows) > 20  # the console has a few days of usage to show at once
        login = httpx.get(f"http://127.0.0.1:{port}/login", timeout=10)
        assert login.status_code == 200
    finally:
        _stop(proc)


def test_the_container_files_keep_their_promises():
    image = (ROOT / "Containerfile").read_text()
    stages = re.findall(r"^FROM (\S+)", image, re.M)
    assert stages and all("slim" in s for s in stages)  # slim bases only
    users = re.findall(r"^USER (\S+)", image, re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0")  # runs as non-root
    for src in re.findall(r"^COPY (?!--from)(\S+)", image, re.M):
        assert (ROOT / src).exists(), src
    assert os.access(DEPLOY / "container-start.sh", os.X_OK)
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert {"postgres", "migrate", "commcredits", "kamailio"} <= set(services)
    for service in services.values():
        for volume in service.get("volumes", []):
            host = volume.split(":")[0]
            if host.startswith("./"):
                assert (ROOT / host).exists(), host
        build = service.get("build")
        if build:
            assert (ROOT / build["context"] / build["dockerfile"]).exists()
    app = services["commcredits"]["environment"]
    assert app["COMMCREDITS_DEMO_USAGE_DAYS"] == "30"  # a month of demo usage on first start
    assert "commcredits_owner" in services["migrate"]["environment"]["COMMCREDITS_DB"]
    assert "commcredits_owner" not in app["COMMCREDITS_DB"]  # the service is not the owner
    kamailio = (DEPLOY / "kamailio-start.sh").read_text()
    assert "LISTEN_IP=${LISTEN_IP:-0.0.0.0}" in kamailio
    for name in ("LISTEN_IP", "HTTP_LISTEN_IP", "CC_URL", "CC_CA_FILE"):
        assert f"#!ifndef {name}" in (ROOT / "integrations/kamailio/kamailio.cfg").read_text() \
            or f"#!ifdef {name}" in (ROOT / "integrations/kamailio/kamailio.cfg").read_text()
