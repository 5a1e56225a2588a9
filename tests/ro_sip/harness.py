"""The real parts of the Diameter Ro scenarios: ``commcredits serve --diameter-port`` on
PostgreSQL, Kamailio with ``integrations/kamailio-ro/kamailio.cfg`` (cdp + ims_charging as the
Ro client), a SIPp gateway (UAS) and SIPp callers (UAC, the scenarios of ``tests/sip``), all
on 127.0.0.1: Diameter in 13868-13899, SIP in 15060-15099, HTTP in 18500-18599. Run by
``./scripts/test-diameter``."""

from __future__ import annotations

import os
import random
import re
import secrets
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.sip.harness import SCENARIOS, Uac, UacRun, started, stop, wait_tcp, wait_udp_bound

ROOT = Path(__file__).resolve().parents[2]
KAMAILIO_CFG = ROOT / "integrations" / "kamailio-ro" / "kamailio.cfg"
CDP_CFG = ROOT / "integrations" / "kamailio-ro" / "diametercfg.xml"
PG_SERVER = os.environ.get("COMMCREDITS_TEST_PG",
                           "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SLICE_S = 10  # commcredits grants 10 s at a time, so a call sees several CCR-Updates
SERVICE_ENV = {"COMMCREDITS_GRANT_SLICE_S": str(SLICE_S), "COMMCREDITS_CALL_GRACE_S": "5",
               "COMMCREDITS_JOBS_INTERVAL_S": "1", "COMMCREDITS_AUTH_TTL_S": "30",
               "COMMCREDITS_MIN_ORDER": "0.01", "COMMCREDITS_MANUAL_CLOCK": "false"}
# per-second rates: every second of talk shows in the charge
DECK = """prefix,destination,number_type,per_minute,connection_fee,increment_s
1,United States,any,0.6000,0.0000,1
44,United Kingdom,any,1.2000,0.0500,1
"""
UK = "+442079460123"
REPLAY_PEER = "replay.test"  # a second Ro client: the tests' own (tests/diameter/client.py)
RANGES = {"diameter": (13868, 13899), "sip": (15060, 15099), "http": (18500, 18599)}


def free_port(kind: str, taken: set[int]) -> int:
    low, high = RANGES[kind]
    for port in random.sample(range(low, high + 1), high - low + 1):
        if port in taken:
            continue
        try:
            for proto in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                with socket.socket(socket.AF_INET, proto) as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        taken.add(port)
        return port
    raise RuntimeError(f"no free {kind} port in {low}-{high}")


@dataclass
class Stack:
    workdir: Path
    db_url: str
    env: dict[str, str]
    operator: str = ""
    cc_port: int = 0
    dia_port: int = 0
    sip_port: int = 0
    uas_port: int = 0
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    ports: set[int] = field(default_factory=set)

    # -- commcredits over HTTP ------------------------------------------------------------------
    def http(self, method: str, path: str, body: Any = None, *, expect: int | None = 200,
             **kw: Any) -> Any:
        r = httpx.request(method, f"http://127.0.0.1:{self.cc_port}{path}", json=body,
                          headers={"Authorization": f"Bearer {self.operator}"}, timeout=30,
                          **kw)
        if expect is not None:
            assert r.status_code == expect, (method, path, r.status_code, r.text)
        return r.json() if r.content else None

    def subscriber(self, fund: str | None, skus: tuple[str, ...] = (
            "MCOEV", "MCOPSTN_PAYG", "MCOPSTNPP")) -> tuple[str, str]:
        """A tenant with one user whose phone number is the Subscription-Id: (tenant, number)."""
        tid = self.http("POST", "/v1/tenants", {"name": f"Ro {secrets.token_hex(3)}",
                                                "country": "US", "commerce": "legacy"},
                        expect=201)["id"]
        for sku in ("MCOEV", "MCOPSTN_PAYG"):
            self.http("POST", f"/v1/tenants/{tid}/subscriptions", {"sku": sku, "quantity": 5},
                      expect=201)
        number = f"+1425{random.randint(2000000, 9999999)}"
        self.http("POST", f"/v1/tenants/{tid}/users", {
            "upn": "caller@contoso.com", "usage_location": "US", "phone_number": number},
            expect=201)
        for sku in skus:
            self.http("PUT", f"/v1/tenants/{tid}/users/caller@contoso.com/licenses/{sku}")
        if fund:
            pm = self.http("POST", f"/v1/tenants/{tid}/payment-methods", {
                "type": "card", "card_number": "4242424242424242", "exp_month": 12,
                "exp_year": 2035}, expect=201)["id"]
            self.http("POST", f"/v1/tenants/{tid}/credits/orders",
                      {"amount": fund, "payment_method_id": pm}, expect=None)
            assert self.credits(tid)["balance"] == fund
        return tid, number

    def credits(self, tid: str) -> dict[str, Any]:
        return self.http("GET", f"/v1/tenants/{tid}/credits")

    def charges(self, tid: str) -> list[dict[str, Any]]:
        return [t for t in self.http("GET", f"/v1/tenants/{tid}/credits/transactions")
                if (t["reference"] or "").startswith("call ro:")]

    # -- what commcredits saw over Diameter (its log) -------------------------------------------
    def ccrs(self, session: str | None = None) -> list[tuple[str, int, str, int, int]]:
        """(type, number, session, used, result) of every CCR answered so far."""
        text = (self.workdir / "commcredits.log").read_text(errors="replace")
        found = re.findall(r"diameter CCR (\w+) #(\d+) of (\S+) used (\d+)s: (\d+)", text)
        rows = [(t, int(n), s, int(u), int(r)) for t, n, s, u, r in found]
        return [r for r in rows if session is None or r[2] == session]

    def sessions(self) -> list[str]:
        return list(dict.fromkeys(r[2] for r in self.ccrs() if r[0] == "INITIAL"))

    def asrs(self) -> list[str]:
        text = (self.workdir / "commcredits.log").read_text(errors="replace")
        return re.findall(r"diameter ASR for (\S+) sent", text)

    # -- processes ------------------------------------------------------------------------------
    def start_service(self) -> None:
        self.cc_port = free_port("http", self.ports)
        self.dia_port = free_port("diameter", self.ports)
        cmd = ["commcredits", "serve", "--db", self.db_url, "--port", str(self.cc_port),
               "--diameter-port", str(self.dia_port), "--origin-host", "localhost",
               "--origin-realm", "test", "--peer", "kamailio.test", "--peer", REPLAY_PEER]
        log = (self.workdir / "commcredits.log").open("ab")
        proc = started(self.workdir, subprocess.Popen(
            cmd, env={**os.environ, **self.env}, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True))
        self.procs["commcredits"] = proc
        wait_tcp(self.cc_port, proc, "commcredits")
        wait_tcp(self.dia_port, proc, "commcredits diameter")

    def start_gateway(self) -> None:
        self.uas_port = free_port("sip", self.ports)
        run = self.workdir / "uas"
        run.mkdir(exist_ok=True)
        proc = started(self.workdir, subprocess.Popen(
            ["sipp", "-sf", str(SCENARIOS / "uas.xml"), "-i", "127.0.0.1", "-p",
             str(self.uas_port), "-nostdin", "-trace_err", "-error_file",
             str(run / "errors.log")], cwd=run, stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT, start_new_session=True))
        self.procs["uas"] = proc
        wait_udp_bound(self.uas_port, proc, "sipp gateway")

    def start_kamailio(self) -> None:
        self.sip_port = free_port("sip", self.ports)
        accept = free_port("diameter", self.ports)
        rundir = self.workdir / "kamailio"
        rundir.mkdir(exist_ok=True)
        cdp = rundir / "diametercfg.xml"
        cdp.write_text(CDP_CFG.read_text().replace('port="3868"', f'port="{self.dia_port}"')
                       .replace('port="3869"', f'port="{accept}"'))
        values = {"SIP_PORT": self.sip_port, "GATEWAY": f'"sip:127.0.0.1:{self.uas_port}"',
                  "CDP_CFG": f'"{cdp}"', "RESERVE_S": SLICE_S, "INTERIM_S": SLICE_S,
                  "TIMER_BUFFER_S": 3}
        cmd = ["kamailio", "-f", str(KAMAILIO_CFG), "-DD", "-E", "-Y", str(rundir),
               "-P", str(rundir / "kamailio.pid"), "-m", "64", "-M", "16"]
        for k, v in values.items():
            cmd += ["-A", f"{k}={v}"]
        log = (self.workdir / "kamailio.log").open("ab")
        proc = started(self.workdir, subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        self.procs["kamailio"] = proc
        wait_udp_bound(self.sip_port, proc, "kamailio")

    def uac(self, frm: str, to: str = UK, *, talk_ms: int = 10_000, ring_ms: int = 0,
            timeout_s: int = 90) -> UacRun:
        """One call through Kamailio; waits until it is over."""
        return self.uac_start(frm, to, talk_ms=talk_ms, ring_ms=ring_ms,
                              timeout_s=timeout_s).wait()

    def uac_start(self, frm: str, to: str = UK, *, talk_ms: int, ring_ms: int = 0,
                  timeout_s: int = 90) -> Uac:
        """Start one SIPp caller in the background (``.wait()`` for its result)."""
        tag = secrets.token_hex(4)
        run = self.workdir / f"uac-{tag}"
        run.mkdir()
        port = free_port("sip", self.ports)
        cmd = ["sipp", f"127.0.0.1:{self.sip_port}", "-sf", str(SCENARIOS / "uac.xml"),
               "-i", "127.0.0.1", "-p", str(port), "-s", to, "-m", "1", "-d", str(talk_ms),
               "-key", "from", frm, "-key", "tenant", "-", "-key", "call_type", "user_out",
               "-key", "upn", "-", "-key", "ring_ms", str(ring_ms),
               "-cid_str", f"ro-{tag}-%u-%p@%s", "-nostdin", "-timeout", f"{timeout_s}s",
               "-trace_logs", "-log_file", str(run / "calls.log"),
               "-trace_err", "-error_file", str(run / "errors.log")]
        proc = started(self.workdir, subprocess.Popen(
            cmd, cwd=run, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True))
        return Uac(proc, run, tag, timeout_s + 30)

    def stop_all(self) -> None:
        for proc in reversed(list(self.procs.values())):
            stop(proc)


def start_stack(workdir: Path) -> Iterator[Stack]:
    """A PostgreSQL schema, commcredits (HTTP + Diameter), the SIPp gateway and Kamailio
    connected to commcredits over Diameter; all stopped (and the schema dropped) after."""
    import sqlalchemy as sa

    schema = f"cc_ro_{secrets.token_hex(4)}"
    engine = sa.create_engine(PG_SERVER)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    db_url = f"{PG_SERVER}?options=-csearch_path%3D{schema}"
    env = {**os.environ, **SERVICE_ENV, "COMMCREDITS_DB": db_url,
           "COMMCREDITS_SECRET_KEY": secrets.token_hex(32)}
    env.pop("COMMCREDITS_SWITCH_CUT_URL", None)
    stack = Stack(workdir, db_url, env)
    try:
        subprocess.run(["commcredits", "db", "upgrade"], env=env, check=True,
                       capture_output=True)
        done = subprocess.run(["commcredits", "keys", "create", "--role", "operator"], env=env,
                              check=True, capture_output=True, text=True)
        stack.operator = done.stdout.strip().splitlines()[-1]
        stack.start_service()
        r = httpx.put(f"http://127.0.0.1:{stack.cc_port}/v1/rate-decks/USD",
                      content=DECK.encode(), timeout=30,
                      headers={"Authorization": f"Bearer {stack.operator}",
                               "Content-Type": "text/csv"})
        assert r.status_code == 200, r.text
        stack.start_gateway()
        stack.start_kamailio()
        deadline = time.monotonic() + 30  # cdp connects, then exchanges capabilities
        log = workdir / "kamailio.log"
        while f"Peer localhost:{stack.dia_port} connected" not in log.read_text(
                errors="replace"):
            assert time.monotonic() < deadline, "cdp never connected to commcredits"
            time.sleep(0.2)
        time.sleep(1)
        yield stack
    finally:
        stack.stop_all()
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        engine.dispose()
