"""``instances_scaling``: authorize + end cycles per second over HTTP with two ``commcredits
serve`` instances (separate commands on their own ports, one PostgreSQL database, the client
processes spread over them as a load balancer would) divided by one instance, measured in the
same run (PostgreSQL). Each instance is the real command with one worker and jobs off; the
switches are ``bench.loadgen``'s, and after each load the money is proven as in
``bench.cycles`` (``ledger verify``, every balance fell by exactly the charges answered)."""

from __future__ import annotations

import os
from contextlib import ExitStack

from bench.common import Databases, Metric, runtime
from bench.cycles import CLIENTS, TENANTS, USERS, proven_load, seed_tenants
from bench.loadgen import Load, serving
from commcredits.entrypoints.embedded import free_port
from commcredits.entrypoints.runtime import Runtime
from commcredits.services import access


def _load(rt: Runtime, url: str, key: str, ids: list[str], upns: list[str], instances: int,
          seconds: float) -> Load:
    with ExitStack() as stack:
        bases = [stack.enter_context(serving(url, 1, port=free_port()))
                 for _ in range(instances)]
        return proven_load(rt, url, key, ids, upns, bases, seconds, f"inst{instances}")


def run(quick: bool, dbs: Databases, backends: list[str]) -> list[Metric]:
    if "postgresql" not in backends:
        return []
    seconds = 4.0 if quick else 15.0
    with dbs.url("postgresql") as url, runtime(url) as rt:
        ids, upns = seed_tenants(rt, TENANTS)
        with rt.db.uow() as uow:
            _, key, _ = access.create_api_key(uow, "switch", None)
            uow.commit()
        one = _load(rt, url, key, ids, upns, 1, seconds)
        two = _load(rt, url, key, ids, upns, 2, seconds)
    note = (f"{CLIENTS} switches in 4 client processes spread over the instances, {TENANTS} "
            f"tenants x {USERS} users, {seconds:.0f} s, {os.cpu_count()} CPUs")
    return [
        Metric("http_cycles_per_s_1_instance_pg", one.per_s, "cycles/s",
               f"authorize + end over HTTP, one commcredits serve (reference); {note}"),
        Metric("http_cycles_per_s_2_instances_pg", two.per_s, "cycles/s",
               "the same, two commcredits serve instances on one database"),
        Metric("instances_scaling", two.per_s / one.per_s, "x",
               "2 instances ÷ 1 (one machine: the instances, clients and PostgreSQL share "
               "the CPUs)"),
    ]
