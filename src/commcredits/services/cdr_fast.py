"""Rating a finished call in memory: what ``authorize_call`` (asking for the whole talk, the
call having happened) followed at once by ``end_call`` does, without their per-request work.

It runs on a batch's :class:`~commcredits.services.cdr_batch.BatchWork` (the wallet, lots,
pool counters, users and deck read once per batch, under the wallet locks) and uses the
same rules as the live path: ``charging._route`` for who pays, ``domain.calls.extend`` for
the grant, ``domain.calls.settle`` for the split, the settlement's own collection (FIFO
across lots, a ledger entry, balance events), pool counting (alerts) and usage record. What
it leaves out is only what cannot change the outcome of a call that is authorized and
settled in the same instant: the route stored as JSON and read back, the reservation
written and released (both are applied in memory, so the counters come out the same).

:func:`rate` returns None, having changed nothing, for what it does not handle: an unknown
tenant, a per-user daily cap, a blocked call. The caller rates those with the live code.
"""

from __future__ import annotations

import json
import secrets
import textwrap
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from commcredits.domain import call_clock
from commcredits.domain import calls as rules
from commcredits.domain.calls import Grant, Party, Route
from commcredits.domain.numbers import Number
from commcredits.domain.pools import PoolKey, month_of
from commcredits.domain.wallet import RechargeStatus, Wallet
from commcredits.services import charging, settlement
from commcredits.services.call_records import pool_total, settle_pool

if TYPE_CHECKING:
    from commcredits.adapters.db.repositories.tenants import WalletRow
    from commcredits.domain.tenancy import Tenant
    from commcredits.services.cdr_batch import BatchWork


@dataclass(slots=True)
class _Call:
    """What the settlement reads of a call row."""

    call_id: str
    conference_id: str | None
    from_number: str
    to_number: str
    call_type: str
    started_at: datetime
    answered_at: datetime | None = None


#: JSON pieces of immutable values (routes, numbers): the same for every batch and tenant
_HEADS: dict[Route, str] = {}
_NUMBERS: dict[Number | None, str] = {}


class Rater:
    """Rates the new CDRs of one batch on ``work``; keeps small per-batch caches."""

    def __init__(self, work: BatchWork) -> None:
        self.work = work
        self.parties: dict[tuple[str, str], Party | None] = {}
        self.totals: dict[tuple[str, PoolKey], int] = {}
        if len(_HEADS) + len(_NUMBERS) > 100_000:  # kept from batch to batch, bounded
            _HEADS.clear()
            _NUMBERS.clear()
        self.heads, self.numbers = _HEADS, _NUMBERS
        self.people: dict[Party | None, str] = {}
        self.random: list[str] = []

    # -- reads kept for the batch ------------------------------------------------------------
    def _party(self, tenant_id: str, upn: str | None) -> Party | None:
        if not upn:
            return None
        key = (tenant_id, upn)
        if key not in self.parties:
            user = self.work.directory.user(tenant_id, upn)
            self.parties[key] = None if user is None else Party(
                user.id, user.upn, user.display_name, user.usage_location, user.licenses)
        return self.parties[key]

    def _pool_left(self, tenant_id: str, key: PoolKey, month: str) -> int:
        """``call_records.pool_left_s`` with the pool's size kept for the batch."""
        row = self.work.charging.pool(tenant_id, month, key.code, lock=True)
        if (tenant_id, key) not in self.totals:
            self.totals[(tenant_id, key)] = pool_total(self.work, tenant_id, key)  # type: ignore[arg-type]
        total = self.totals[(tenant_id, key)]
        return max(0, total * 60 - row.used_minutes * 60 - row.reserved_s)

    def _available(self, wallet: WalletRow) -> Decimal:
        lots = tuple(self.work.lots[wallet.tenant_id]) if wallet.tenant_id in self.work.lots \
            else tuple(self.work.credits.lots(wallet.tenant_id))
        return Wallet(wallet.tenant_id, wallet.currency, lots, wallet.reserved).available(
            self.work.now)

    # -- what is stored with the call (as ``call_records.route_json`` writes it) --------------
    def route_json(self, route: Route, number: Number | None, party: Party | None) -> str:
        """The same text, from pieces kept for the batch (the parts of a route repeat)."""
        head = self.heads.get(route)
        if head is None:
            rate = None if route.rate is None else {
                "prefix": route.rate.prefix, "destination": route.rate.destination,
                "number_type": route.rate.number_type,
                "per_minute": str(route.rate.per_minute),
                "connection_fee": str(route.rate.connection_fee),
                "increment_s": route.rate.increment_s}
            head = self.heads[route] = json.dumps({
                "blocked": route.blocked, "pool": route.pool.code if route.pool else None,
                "credits": route.credits, "overage": route.overage, "free": route.free,
                "no_pay_reason": route.no_pay_reason, "capability": route.capability,
                "toll_free_inbound": route.toll_free_inbound, "rate": rate})[:-1]
        num = self.numbers.get(number)
        if num is None:
            num = self.numbers[number] = "null" if number is None else json.dumps({
                "e164": number.e164, "digits": number.digits, "country": number.country,
                "number_type": number.number_type})
        who = self.people.get(party)
        if who is None:
            who = self.people[party] = "null" if party is None else json.dumps({
                "id": party.id, "upn": party.upn, "display_name": party.display_name,
                "usage_location": party.usage_location})
        return f'{head}, "number": {num}, "party": {who}}}'

    def usage_id(self) -> str:
        """``new_id("use")``, the random digits drawn a thousand ids at a time."""
        if not self.random:
            self.random = [f"use_{h}" for h in textwrap.wrap(secrets.token_hex(12_000), 24)]
        return self.random.pop()

    # -- one CDR -----------------------------------------------------------------------------
    def rate(self, body: dict[str, Any], start: datetime,
             duration_s: int) -> dict[str, Any] | None:
        """Authorize and settle one new call (the ``end`` answer), or None (nothing done)."""
        work = self.work
        tenant = work.tenants.get(body["tenant_id"])
        if tenant is None or tenant.user_daily_cap is not None:
            return None
        call_type = body["call_type"]
        upn = body.get("organizer_upn") if call_type in rules.CONFERENCE_OUT else None
        party = None if call_type in rules.BOT_CALLS else self._party(tenant.id,
                                                                       upn or body.get("upn"))
        deck = work.rates.deck(tenant.currency)
        route, number = charging._route(work, tenant, call_type, body, party,  # type: ignore[arg-type]
                                        deck)
        if route.blocked:
            return None
        month = month_of(start)
        want = max(duration_s, 1)
        grant, final, pool_take = Grant(), False, 0
        wallet = None
        if not (route.free and route.pool is None):
            wallet = work.tenants.wallet(tenant.id, lock=True)
            pool_left = self._pool_left(tenant.id, route.pool, month) if route.pool else 0
            ext = rules.extend(route, Grant(), want, pool_left, self._available(wallet),
                               tenant.currency)
            grant, pool_take = ext.grant, ext.pool_take_s
            recharge = wallet.auto_recharge.enabled and \
                wallet.auto_recharge.status is not RechargeStatus.SUSPENDED
            final = call_clock.is_final(grant.max_duration_s, want, recharge)
        else:
            grant = Grant(tail="free")
        funding = rules.first_funding(route, grant)
        if not funding:
            if rules.block_reason(route) != "insufficient_credits":
                return None  # blocked: the live path records it
            funding = "credits"  # it happened: settled below, what credits lack uncollected
        elif pool_take and route.pool:  # the reservation, released again by settle_pool
            row = work.charging.pool(tenant.id, month, route.pool.code, lock=True)
            work.charging.update_pool(tenant.id, month, route.pool.code,
                                      reserved_s=row.reserved_s + pool_take)
        text = self.route_json(route, number, party)
        call_id = str(body["call_id"])
        work.charging.add_call(
            call_id=call_id, tenant_id=tenant.id, call_type=call_type,
            from_number=str(body.get("from") or "")[:40], to_number=str(body.get("to") or "")[:40],
            user_id=party.id if party else None, conference_id=body.get("conference_id"),
            decision="allowed", reason=None, route=text,
            pool=route.pool.code if route.pool else None,
            pool_month=month if route.pool else None, pool_s=grant.pool_s,
            credit_s=grant.credit_s, credit_reserved=grant.credit_reserved,
            with_fee=grant.with_fee, tail=grant.tail, status="active", started_at=start,
            last_seen_at=work.now, elapsed_s=0, final=final)
        call = _Call(call_id, body.get("conference_id"), str(body.get("from") or "")[:40],
                     str(body.get("to") or "")[:40], call_type, start)
        data = {"number": None if number is None else {  # the route as settlement reads it
            "e164": number.e164, "digits": number.digits, "country": number.country,
            "number_type": number.number_type},
            "party": None if party is None else {
                "id": party.id, "upn": party.upn, "display_name": party.display_name,
                "usage_location": party.usage_location}}
        return self._settle(tenant, wallet, call, route, data, grant, month, duration_s,
                            pool_take)

    def _settle(self, tenant: Tenant, wallet: WalletRow | None, call: _Call, route: Route,
                data: dict[str, Any], grant: Grant, month: str, duration_s: int,
                pool_take: int) -> dict[str, Any]:
        """``settlement.settle`` of the call just authorized (its reservation nets out)."""
        work = self.work
        cur = tenant.currency
        if wallet is None:
            wallet = work.tenants.wallet(tenant.id, lock=True)
        # the live path reserved grant.credit_reserved and releases it here: nothing to do
        pool_left = 0
        if route.pool and grant.credit_s == 0 and grant.tail is None \
                and duration_s > grant.pool_s:
            pool_left = self._pool_left(tenant.id, route.pool, month)
        covered = self._available(wallet) if route.overage and grant.tail is None else None
        s = rules.settle(route, grant, duration_s, cur, pool_left, covered)
        charged, draws = settlement._collect(work, wallet, s.credit_charge,  # type: ignore[arg-type]
                                             call.call_id)
        if route.pool:
            settle_pool(work, tenant, route.pool, month, grant.pool_s,  # type: ignore[arg-type]
                        s.pool_minutes)
        work.charging.add_usage(
            id=self.usage_id(), tenant_id=tenant.id, kind="call", ref=call.call_id,
            **settlement._usage(call, data, route, s, charged,  # type: ignore[arg-type]
                                s.credit_charge - charged, cur),
            lots=json.dumps([[d.lot_id, str(d.amount)] for d in draws]))
        return settlement._ended(work, call, s, charged, cur, "switch")  # type: ignore[arg-type]
