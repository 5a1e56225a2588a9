"""The real parts of the switch tests: ``commcredits serve`` on PostgreSQL, Kamailio with
``integrations/kamailio/kamailio.cfg``, a SIPp gateway (UAS) and SIPp callers (UAC), all on
127.0.0.1, on free ports in 25000-25999. Run by ``./scripts/test-sip``."""

from __future__ import annotations

import contextlib
import os
import random
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = Path(__file__).resolve().parent / "scenarios"
KAMAILIO_CFG = ROOT / "integrations" / "kamailio" / "kamailio.cfg"
PG_SERVER = os.environ.get("COMMCREDITS_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/test")

# Short grants so the whole run takes a couple of minutes (see scripts/test-sip).
SERVICE_ENV = {
    "COMMCREDITS_GRANT_SLICE_S": "4",
    "COMMCREDITS_CALL_GRACE_S": "3",
    "COMMCREDITS_JOBS_INTERVAL_S": "1",
    "COMMCREDITS_AUTH_TTL_S": "12",
    "COMMCREDITS_MIN_ORDER": "0.01",
    "COMMCREDITS_MANUAL_CLOCK": "false",
}

# per-second rates so every second of talk shows in the charge
DECK = """prefix,destination,number_type,per_minute,connection_fee,increment_s
1,United States,any,0.6000,0.0000,1
1800,United States toll-free,toll_free,0.0000,0.0000,60
44,United Kingdom,any,1.2000,0.0500,1
1,US toll-free inbound,toll_free_inbound,0.6000,0.0000,1
"""
US = "+14255550100"
UK = "+442079460123"
CALLER = "+14255550123"
USERS = {
    "payg@contoso.com": ["MCOEV", "MCOPSTN_PAYG", "MCOPSTNPP"],
    "bare@contoso.com": ["MCOEV"],
}


def free_port(taken: set[int]) -> int:
    """A port free for both UDP and TCP in 25000-25999 (random, so parallel runs rarely meet)."""
    for _ in range(500):
        port = random.randint(25000, 25999)
        if port in taken:
            continue
        try:
            for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                with socket.socket(socket.AF_INET, kind) as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        taken.add(port)
        return port
    raise RuntimeError("no free port in 25000-25999")


def wait_tcp(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what} is not listening on {port}")


def wait_udp_bound(port: int, proc: subprocess.Popen[bytes], what: str,
                   timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.bind(("127.0.0.1", port))
        except OSError:
            return  # somebody (the process) holds it
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not bind udp {port}")


def started(workdir: Path, proc: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
    """Note the process in ``<workdir>/pids`` (./scripts/test-sip stops what is left there,
    even when pytest itself is killed): each runs in a session (process group) of its own."""
    with (workdir / "pids").open("a") as f:
        f.write(f"{proc.pid}\n")
    return proc


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(proc.pid, signal.SIGCONT)  # a paused process cannot die
        proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@dataclass
class Call:
    call_id: str
    answered_ms: int | None = None
    ended_ms: int | None = None
    how: str | None = None  # hangup | cut | refused
    sip_code: int | None = None
    reason: str | None = None

    @property
    def talk_s(self) -> float:
        assert self.answered_ms is not None and self.ended_ms is not None, self
        return (self.ended_ms - self.answered_ms) / 1000


@dataclass
class UacRun:
    returncode: int
    calls: dict[str, Call]
    setup_ms: list[float]
    out: str

    def by(self, how: str) -> list[Call]:
        return [c for c in self.calls.values() if c.how == how]


@dataclass
class Uac:
    proc: subprocess.Popen[bytes]
    run: Path
    tag: str
    timeout_s: int

    def call_id(self, n: int = 1) -> str:
        """The Call-ID of this run's ``n``-th call (``-cid_str cc-<tag>-%u-%p@%s``)."""
        return f"cc-{self.tag}-{n}-{self.proc.pid}@127.0.0.1"

    def wait(self) -> UacRun:
        try:
            out, _ = self.proc.communicate(timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            stop(self.proc)
            out, _ = self.proc.communicate()
        return UacRun(self.proc.returncode, _parse_calls(self.run / "calls.log"),
                      _parse_rtt(self.run), (out or b"").decode(errors="replace")[-2000:]
                      + _tail(self.run / "errors.log") + _tail(self.run / "screen.log"))


@dataclass
class Stack:
    """Everything the scenarios need, started once per test session."""

    workdir: Path
    cc_port: int
    sip_port: int
    http_port: int
    uas_port: int
    db_url: str
    env: dict[str, str]
    operator: str = ""
    switch: str = ""
    cut_token: str = ""
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    ports: set[int] = field(default_factory=set)

    # -- commcredits over HTTP --------------------------------------------------------------
    def http(self, method: str, path: str, body: Any = None, *, key: str | None = None,
             expect: int | None = 200, **kw: Any) -> Any:
        r = httpx.request(method, f"http://127.0.0.1:{self.cc_port}{path}", json=body,
                          headers={"Authorization": f"Bearer {key or self.operator}"},
                          timeout=30, **kw)
        if expect is not None:
            assert r.status_code == expect, (method, path, r.status_code, r.text)
        return r.json() if r.content else None

    def tenant(self, fund: str | None = None) -> str:
        tid = self.http("POST", "/v1/tenants", {"name": f"SIP {secrets.token_hex(3)}",
                                                "country": "US", "commerce": "legacy"},
                        expect=201)["id"]
        for sku in ("MCOEV", "MCOPSTN_PAYG"):
            self.http("POST", f"/v1/tenants/{tid}/subscriptions", {"sku": sku, "quantity": 10},
                      expect=201)
        for upn, skus in USERS.items():
            self.http("POST", f"/v1/tenants/{tid}/users",
                      {"upn": upn, "display_name": upn.split("@")[0], "usage_location": "US"},
                      expect=201)
            for sku in skus:
                self.http("PUT", f"/v1/tenants/{tid}/users/{upn}/licenses/{sku}")
        if fund:
            self.fund(tid, fund)
        return tid

    def toll_free_number(self, tid: str) -> str:
        """Give the tenant a toll-free number of its own (numbers are unique across tenants)."""
        number = f"+1800555{random.randint(0, 9999):04d}"
        self.http("POST", f"/v1/tenants/{tid}/numbers", {"number": number, "type": "toll_free"},
                  expect=201)
        return number

    def fund(self, tid: str, amount: str) -> None:
        pm = self.http("POST", f"/v1/tenants/{tid}/payment-methods",
                       {"type": "card", "card_number": "4242424242424242", "exp_month": 12,
                        "exp_year": 2035}, expect=201)["id"]
        self.http("POST", f"/v1/tenants/{tid}/credits/orders",
                  {"amount": amount, "payment_method_id": pm}, expect=None)
        assert self.credits(tid)["balance"] == amount

    def credits(self, tid: str) -> dict[str, Any]:
        return self.http("GET", f"/v1/tenants/{tid}/credits")

    def usage(self, tid: str) -> list[dict[str, Any]]:
        """Ledger lines of call charges, oldest first."""
        return [t for t in self.http("GET", f"/v1/tenants/{tid}/credits/transactions")
                if (t["reference"] or "").startswith("call ")]

    def settled(self, tid: str, n: int, timeout: float = 15) -> list[dict[str, Any]]:
        """The call charges in the ledger once ``n`` of them are there (the switch reports
        ``end`` from a timer, a moment after the call is over), or at the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.usage(tid)
            if len(lines) >= n or time.monotonic() > deadline:
                return lines
            time.sleep(0.3)

    def report(self, tid: str) -> list[dict[str, Any]]:
        return self.http("GET", f"/v1/tenants/{tid}/reports/pstn-usage?days=7&format=json")

    # -- SIPp ---------------------------------------------------------------------------------
    def uac(self, to: str, *, tenant: str, talk_ms: int = 60_000, ring_ms: int = 0,
            calls: int = 1, rate: float = 1, limit: int | None = None,
            call_type: str = "user_out", upn: str = "payg@contoso.com", frm: str = CALLER,
            sip_port: int | None = None, timeout_s: int = 120) -> UacRun:
        """Place ``calls`` calls through Kamailio and wait for all of them to finish."""
        return self.uac_start(to, tenant=tenant, talk_ms=talk_ms, ring_ms=ring_ms, calls=calls,
                              rate=rate, limit=limit, call_type=call_type, upn=upn, frm=frm,
                              sip_port=sip_port, timeout_s=timeout_s).wait()

    def uac_start(self, to: str, *, tenant: str, talk_ms: int = 60_000, ring_ms: int = 0,
                  calls: int = 1, rate: float = 1, limit: int | None = None,
                  call_type: str = "user_out", upn: str = "payg@contoso.com",
                  frm: str = CALLER, sip_port: int | None = None,
                  timeout_s: int = 120) -> Uac:
        """Start SIPp callers in the background (``.wait()`` for the result)."""
        tag = secrets.token_hex(4)
        run = self.workdir / f"uac-{tag}"
        run.mkdir()
        port = free_port(self.ports)
        cmd = ["sipp", f"127.0.0.1:{sip_port or self.sip_port}", "-sf", str(SCENARIOS / "uac.xml"),
               "-i", "127.0.0.1", "-p", str(port), "-s", to, "-m", str(calls),
               "-r", str(rate), "-l", str(limit or calls), "-d", str(talk_ms),
               "-key", "from", frm, "-key", "tenant", tenant, "-key", "call_type", call_type,
               "-key", "upn", upn, "-key", "ring_ms", str(ring_ms),
               "-cid_str", f"cc-{tag}-%u-%p@%s", "-nostdin", "-timeout", f"{timeout_s}s",
               "-trace_logs", "-log_file", str(run / "calls.log"),
               "-trace_err", "-error_file", str(run / "errors.log"),
               "-trace_rtt", "-rtt_freq", "1", "-trace_screen",
               "-screen_file", str(run / "screen.log")]
        proc = started(self.workdir, subprocess.Popen(
            cmd, cwd=run, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True))
        self.procs[f"uac-{tag}"] = proc
        return Uac(proc, run, tag, timeout_s + 30)

    # -- processes ------------------------------------------------------------------------------
    def start_kamailio(self, name: str = "kamailio", sip_port: int | None = None,
                       http_port: int | None = None, **defines: str | int) -> int:
        sip_port = sip_port or self.sip_port
        http_port = http_port or self.http_port
        rundir = self.workdir / name
        rundir.mkdir(exist_ok=True)
        values: dict[str, str | int] = {
            "SIP_PORT": sip_port, "HTTP_PORT": http_port,
            "GATEWAY": f'"sip:127.0.0.1:{self.uas_port}"',
            "CC_URL": f'"http://127.0.0.1:{self.cc_port}"', "CC_KEY": f'"{self.switch}"',
            "CUT_TOKEN": f'"{self.cut_token}"', "CC_TIMEOUT_S": 2, "INTERIM_LEAD_S": 2,
            "LEGACY_API": os.environ.get("COMMCREDITS_SIP_LEGACY_API", "0"), **defines}
        cmd = ["kamailio", "-f", str(KAMAILIO_CFG), "-DD", "-E", "-Y", str(rundir),
               "-P", str(rundir / "kamailio.pid"), "-m", "64", "-M", "16"]
        for k, v in values.items():
            cmd += ["-A", f"{k}={v}"]
        log = (self.workdir / f"{name}.log").open("ab")
        proc = started(self.workdir, subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        self.procs[name] = proc
        wait_udp_bound(sip_port, proc, "kamailio")
        wait_tcp(http_port, proc, "kamailio xhttp")
        return sip_port

    def stop_all(self) -> None:
        for proc in reversed(list(self.procs.values())):
            stop(proc)

    def reported(self, call_id: str, kamailio: str = "kamailio") -> list[str]:
        """How commcredits answered the switch's end reports for ``call_id`` (Kamailio's log):
        HTTP status codes, or curl's error code (28: timed out)."""
        text = (self.workdir / f"{kamailio}.log").read_text(errors="replace")
        mark = f"reported the end of {call_id}: "
        return [line.split(mark, 1)[1].split()[0] for line in text.splitlines() if mark in line]

    @property
    def service(self) -> subprocess.Popen[bytes]:
        return self.procs["commcredits"]

    def cut(self, call_id: str, reason: str = "operator") -> httpx.Response:
        """What commcredits sends to the switch's cut URL."""
        return httpx.post(f"http://127.0.0.1:{self.http_port}/cut",
                          json={"call_id": call_id, "tenant_id": "", "reason": reason},
                          headers={"Authorization": f"Bearer {self.cut_token}"}, timeout=10)


def _tail(path: Path, n: int = 2000) -> str:
    return f"\n--- {path.name}\n" + path.read_text(errors="replace")[-n:] if path.exists() else ""


def _parse_calls(path: Path) -> dict[str, Call]:
    calls: dict[str, Call] = {}
    if not path.exists():
        return calls
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) < 2 or parts[0] not in {"answered", "hangup", "cut", "refused"}:
            continue
        c = calls.setdefault(parts[1], Call(parts[1]))
        if parts[0] == "answered":
            c.answered_ms = int(parts[2])
        elif parts[0] == "refused":
            c.how, c.sip_code = "refused", int(parts[2])
            c.reason = parts[3] if len(parts) > 3 else None
        elif c.how is None:  # the first end wins (a BYE race logs both)
            c.how, c.ended_ms = parts[0], int(parts[2])
    return calls


def _parse_rtt(run: Path) -> list[float]:
    """INVITE -> 180 Ringing per call, in ms (SIPp's -trace_rtt file)."""
    out: list[float] = []
    for f in run.glob("*_rtt.csv"):
        for line in f.read_text().splitlines()[1:]:
            cells = line.split(";")
            if len(cells) >= 3 and cells[2].strip() == "setup":
                out.append(float(cells[1]))
    return out


def start_stack(workdir: Path) -> Iterator[Stack]:
    """Create a PostgreSQL schema, start commcredits, the SIPp gateway and Kamailio; stop
    them all (and drop the schema) afterwards."""
    import sqlalchemy as sa

    schema = f"cc_sip_{secrets.token_hex(4)}"
    engine = sa.create_engine(PG_SERVER)
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    db_url = f"{PG_SERVER}?options=-csearch_path%3D{schema}"
    ports: set[int] = set()
    stack = Stack(workdir, free_port(ports), free_port(ports), free_port(ports),
                  free_port(ports), db_url, {}, ports=ports)
    stack.cut_token = secrets.token_hex(16)
    stack.env = {**os.environ, **SERVICE_ENV, "COMMCREDITS_DB": db_url,
                 "COMMCREDITS_SECRET_KEY": secrets.token_hex(32),
                 "COMMCREDITS_SWITCH_CUT_URL": f"http://127.0.0.1:{stack.http_port}/cut",
                 "COMMCREDITS_SWITCH_CUT_TOKEN": stack.cut_token}
    try:
        subprocess.run(["commcredits", "db", "upgrade"], env=stack.env, check=True,
                       capture_output=True)
        stack.operator = _key(stack.env, "operator")
        stack.switch = _key(stack.env, "switch")
        log = (workdir / "commcredits.log").open("ab")
        stack.procs["commcredits"] = started(workdir, subprocess.Popen(
            ["commcredits", "serve", "--host", "127.0.0.1", "--port", str(stack.cc_port)],
            env=stack.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True))
        wait_tcp(stack.cc_port, stack.service, "commcredits")
        r = httpx.put(f"http://127.0.0.1:{stack.cc_port}/v1/rate-decks/USD",
                      content=DECK.encode(), timeout=30,
                      headers={"Authorization": f"Bearer {stack.operator}",
                               "Content-Type": "text/csv"})
        assert r.status_code == 200, r.text
        uas_log = (workdir / "uas.log").open("ab")
        stack.procs["uas"] = started(workdir, subprocess.Popen(
            ["sipp", "-sf", str(SCENARIOS / "uas.xml"), "-i", "127.0.0.1",
             "-p", str(stack.uas_port), "-nostdin", "-trace_err",
             "-error_file", str(workdir / "uas-errors.log")],
            cwd=workdir, stdout=uas_log, stderr=subprocess.STDOUT, start_new_session=True))
        wait_udp_bound(stack.uas_port, stack.procs["uas"], "sipp uas")
        stack.start_kamailio()
        yield stack
    finally:
        stack.stop_all()
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        engine.dispose()


def _key(env: dict[str, str], role: str) -> str:
    done = subprocess.run(["commcredits", "keys", "create", "--role", role], env=env,
                          check=True, capture_output=True, text=True)
    return done.stdout.strip().splitlines()[-1]
