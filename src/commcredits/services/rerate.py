"""Re-rating runs (issue 21): a dry run prices a period's calls with a deck and keeps the diff;
applying it posts correcting ledger entries, tenant by tenant.

*Dry run* (:func:`compute`): every settled call of the period is priced again
(``domain.rerate.reprice``: the call's own split, the rate from the deck through the live
lookup ``services.charging.rate_for``); the run keeps, per call, the old and new price and,
per tenant, the totals and what the replay (``services.rerate_ledger``) says the balance,
the forfeitures and the uncollected amounts would become. Nothing but the run is written.

*Apply* (:func:`apply`): per tenant, one transaction holding the tenant's wallet lock (taken
as the charging engine takes it, ``wallet_and_lots``; one wallet per transaction, so no
order to keep with other tenants), so live calls of that tenant wait for at most this
transaction and those of other tenants not at all. The replay is computed again under the
lock, from the ledger as it is then, with the prices the dry run fixed; a call whose price
changed since the dry run (another run corrected it) stops that tenant (``rerate_stale``).
The ``rerate_tenants`` row is written in the same transaction, so a tenant is corrected by
a run once, all or nothing, and running the same run again applies nothing twice. Each
tenant applied is one audit entry.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from commcredits.domain import rerate
from commcredits.domain.calls import Settlement
from commcredits.domain.csv_cells import neutral_row
from commcredits.domain.dates import check_in_span
from commcredits.domain.errors import DomainError, conflict, invalid, not_found
from commcredits.domain.money import ZERO, fmt
from commcredits.domain.numbers import Number
from commcredits.domain.rating import RateDeck
from commcredits.services import audit, cuts
from commcredits.services import rerate_ledger as replay
from commcredits.services.call_records import grant_of, route_data, route_of
from commcredits.services.charging import rate_for
from commcredits.services.ids import new_id
from commcredits.services.reports import Period

if TYPE_CHECKING:
    from commcredits.adapters.db.uow import Database, UnitOfWork

_DECK = re.compile(r"([A-Z]{3})@([0-9]{1,9})")


@dataclass(frozen=True, slots=True)
class Scope:
    tenant_id: str | None
    first: date
    last: date
    deck: str | None  # CURRENCY@VERSION


def parse(body: dict[str, Any]) -> Scope:
    """The run's scope from a request (API body or CLI options); 422 naming the field."""
    tenant_id = body.get("tenant_id")
    if tenant_id is not None and (not isinstance(tenant_id, str) or not tenant_id.strip()):
        raise invalid("validation_error", "tenant_id must be a tenant id")
    first, last = _day(body, "from"), _day(body, "to")
    if first > last:
        raise invalid("validation_error", f"from ({first}) is after to ({last})")
    deck = body.get("deck")
    if deck is not None and (not isinstance(deck, str) or not _DECK.fullmatch(deck.strip())):
        raise invalid("validation_error", "deck must be CURRENCY@VERSION, e.g. USD@7")
    return Scope(tenant_id, first, last, deck.strip() if deck else None)


def _day(body: dict[str, Any], name: str) -> date:
    """A day of the period (``YYYY-MM-DD``, UTC, included); a re-rate may span any years
    of the service's span (no report's one-year limit)."""
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise invalid("validation_error", f"{name} is required (YYYY-MM-DD)")
    text = value.strip()
    try:
        if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
            raise ValueError(text)
        day = date.fromisoformat(text)
    except ValueError:
        raise invalid("validation_error",
                      f"{name} {text[:40]!r} is not a valid date (YYYY-MM-DD)") from None
    check_in_span(day, name)
    return day


def _decks(uow: UnitOfWork, scope: Scope) -> dict[str, tuple[int, RateDeck]]:
    """The deck per currency the run prices with: the named one (it must be that currency's
    current version: earlier versions are not kept) or each currency's current deck."""
    if scope.deck is not None:
        m = _DECK.fullmatch(scope.deck)
        assert m is not None
        currency, version = m.group(1), int(m.group(2))
        current = uow.rates.version(currency)
        if current is None:
            raise not_found("rate deck", currency)
        if current != version:
            raise conflict("deck_version_not_current",
                           f"the {currency} deck is at version {current}; only the current "
                           f"version prices a re-rate (import the deck to re-rate with it)")
        deck = uow.rates.deck_at(currency, version)
        assert deck is not None
        return {currency: (version, deck)}
    out: dict[str, tuple[int, RateDeck]] = {}
    for _, currency in uow.rerates.tenant_ids(scope.tenant_id):
        version = uow.rates.version(currency)
        deck = uow.rates.deck_at(currency, version)
        if version is not None and deck is not None:
            out[currency] = (version, deck)
    return out


# -- the dry run ---------------------------------------------------------------------------
def compute(uow: UnitOfWork, scope: Scope, by: str) -> dict[str, Any]:
    """Price the period again and store the run (status ``dry_run``); returns its view."""
    tenants = uow.rerates.tenant_ids(scope.tenant_id)
    if scope.tenant_id is not None and not tenants:
        raise not_found("tenant", scope.tenant_id)
    decks = _decks(uow, scope)
    if scope.tenant_id is not None and scope.deck is not None and tenants[0][1] not in decks:
        raise invalid("validation_error", f"deck {scope.deck} is not in the tenant's currency "
                                          f"({tenants[0][1]})")
    period = Period(scope.first, scope.last)
    start, end = period.start, period.end
    rows: list[dict[str, Any]] = []
    totals: list[dict[str, Any]] = []
    for tid, currency in tenants:
        if currency not in decks:
            continue
        version, deck = decks[currency]
        calls, summary = _tenant(uow, tid, currency, deck, start, end)
        summary["deck"] = f"{currency}@{version}"
        rows += calls
        totals.append(summary)
    run_id = new_id("rrt")
    diff = {"tenants": totals, "calls": rows}
    uow.rerates.add_run(id=run_id, status="dry_run", period_from=scope.first.isoformat(),
                        period_to=scope.last.isoformat(), deck=scope.deck,
                        tenant_id=scope.tenant_id, diff=json.dumps(diff), created_at=uow.now,
                        created_by=by[:320])
    run = uow.rerates.run(run_id)
    assert run is not None
    return view(run)


def _tenant(uow: UnitOfWork, tid: str, currency: str, deck: RateDeck, start: datetime,
            end: datetime) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """One tenant's calls priced again, and its totals (the replay's effect included)."""
    out: list[dict[str, Any]] = []
    old_total = new_total = ZERO
    n = skipped = 0
    asked: dict[str, Decimal] = {}
    left_alone: list[dict[str, Any]] = []
    for row in uow.rerates.settled_calls(tid, start, end):
        n += 1
        settled = rerate.Settled(row.duration_s, row.included_minutes,
                                 row.credits_charge + row.uncollected, row.overage_charge)
        old_price = settled.credit_charge + settled.overage_charge
        priced = _reprice(row, settled, currency, deck)
        if priced is None:
            skipped += 1
            left_alone.append({"tenant_id": tid, "call_id": row.call_id,
                               "usage_id": row.usage_id, "reason": "split_not_reproducible"})
            old_total += old_price
            new_total += old_price
            continue
        new = priced
        new_price = new.credit_charge + new.overage_charge
        old_total += old_price
        new_total += new_price
        if new_price == old_price:
            continue
        asked[row.usage_id] = new.credit_charge
        out.append({"tenant_id": tid, "call_id": row.call_id, "usage_id": row.usage_id,
                    "currency": currency, "old_charge": str(old_price),
                    "new_charge": str(new_price), "delta": str(new_price - old_price),
                    "new_credit_charge": str(new.credit_charge),
                    "new_overage_charge": str(new.overage_charge),
                    "new_connection_fee": str(new.connection_fee)})
    summary: dict[str, Any] = {"tenant_id": tid, "currency": currency, "calls": n,
                               "left_alone": left_alone,
                               "corrected": len(out), "skipped": skipped,
                               "old_total": str(old_total), "new_total": str(new_total),
                               "delta": str(new_total - old_total)}
    p = replay.plan(uow, tid, asked)
    summary.update(balance_delta=str(p.balance_delta if p else ZERO),
                   forfeiture_delta=str(p.forfeiture_delta if p else ZERO),
                   uncollected_delta=str(_uncollected_delta(uow, tid, p)))
    return out, summary


def _reprice(row: Any, settled: rerate.Settled, currency: str, deck: RateDeck
             ) -> Settlement | None:
    """The call's new settlement at ``deck`` (None: its split cannot be reproduced)."""
    route, data = route_of(row), route_data(row)
    number = data.get("number")
    new_rate = None if not number else rate_for(
        deck, Number(number["e164"], number["digits"], number["country"],
                     number["number_type"]), route.toll_free_inbound)
    priced = rerate.reprice(route, grant_of(row), settled, currency, new_rate,
                            check=row.original_charge is None)
    return None if priced is None else priced[1]


def _uncollected_delta(uow: UnitOfWork, tid: str, p: replay.Plan | None) -> Decimal:
    if p is None:
        return ZERO
    rows = uow.rerates.usage(tid, [r.ref for r in p.outcome.charges])
    return sum((r.uncollected - rows[r.ref].uncollected for r in p.outcome.charges
                if r.ref in rows), ZERO)


# -- views ---------------------------------------------------------------------------------
def _money(value: str, currency: str) -> str:
    return fmt(Decimal(value), currency)


def view(run: Any) -> dict[str, Any]:
    diff = json.loads(run.diff)
    tenants = [{**{k: t[k] for k in ("tenant_id", "currency", "calls", "corrected",
                                     "skipped", "deck")},
                **{k: _money(t[k], t["currency"]) for k in _TOTALS}} for t in diff["tenants"]]
    calls = [{"tenant_id": c["tenant_id"], "call_id": c["call_id"], "usage_id": c["usage_id"],
              **{k: _money(c[k], c["currency"]) for k in ("old_charge", "new_charge",
                                                          "delta")}}
             for c in diff["calls"]]
    return {"id": run.id, "status": run.status, "from": run.period_from, "to": run.period_to,
            "deck": run.deck, "tenant_id": run.tenant_id,
            "created_at": run.created_at.isoformat(), "created_by": run.created_by,
            "applied_at": run.applied_at.isoformat() if run.applied_at else None,
            "applied_by": run.applied_by, "tenants": tenants,
            "currencies": _per_currency(diff["tenants"]), "calls": calls,
            "skipped": [c for t in diff["tenants"] for c in t.get("left_alone", [])]}


_TOTALS = ("old_total", "new_total", "delta", "balance_delta", "forfeiture_delta",
           "uncollected_delta")


def _per_currency(tenants: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The tenants' totals summed per currency (what an ``--all`` run moves in each)."""
    out: dict[str, dict[str, Any]] = {}
    for t in tenants:
        c = out.setdefault(t["currency"], {"currency": t["currency"], "tenants": 0, "calls": 0,
                                           "corrected": 0, **{k: ZERO for k in _TOTALS}})
        c["tenants"] += 1
        c["calls"] += t["calls"]
        c["corrected"] += t["corrected"]
        for k in _TOTALS:
            c[k] += Decimal(t[k])
    return [{**c, **{k: fmt(c[k], cur) for k in _TOTALS}} for cur, c in sorted(out.items())]


def get(uow: UnitOfWork, run_id: str) -> dict[str, Any]:
    run = uow.rerates.run(run_id)
    if run is None:
        raise not_found("rerate", run_id)
    return view(run)


def csv_rows(run: dict[str, Any]) -> list[list[str]]:
    """The per-call diff as CSV rows (header first)."""
    rows = [["tenant_id", "call_id", "usage_id", "old_charge", "new_charge", "delta"]]
    rows += [[str(x) for x in neutral_row([  # a switch's call id is never a formula
        c["tenant_id"], c["call_id"], c["usage_id"], c["old_charge"], c["new_charge"],
        c["delta"]])] for c in run["calls"]]
    return rows


# -- apply ---------------------------------------------------------------------------------
def apply(db: Database, run_id: str, by: str, actor: object = None,
          after: Callable[[list[str], list[str]], None] | None = None) -> dict[str, Any]:
    """Apply the run tenant by tenant (one transaction each, under its wallet lock); a tenant
    already applied is skipped. Returns the run's view with ``applied``: per tenant
    ``applied`` | ``already_applied`` | an error code. ``after(recharges, cuts)`` is told,
    once a tenant committed, the auto-recharge it started and the calls it cut (the
    ``recharge`` and ``cuts`` jobs pick them up anyway)."""
    with db.uow(readonly=True) as uow:
        run = uow.rerates.run(run_id)
        if run is None:
            raise not_found("rerate", run_id)
        diff = json.loads(run.diff)
    results: dict[str, str] = {}
    for summary in diff["tenants"]:
        tid = summary["tenant_id"]
        calls = [c for c in diff["calls"] if c["tenant_id"] == tid]
        try:
            results[tid] = _apply_tenant(db, run_id, tid, calls, by, actor, after)
        except DomainError as e:
            results[tid] = e.code
    with db.uow() as uow:
        done = all(v in {"applied", "already_applied"} for v in results.values())
        if done and uow.rerates.run(run_id).status != "applied":  # type: ignore[union-attr]
            uow.rerates.mark_run_applied(run_id, uow.now, by[:320])
        uow.commit()
        out = get(uow, run_id)
    out["applied"] = [{"tenant_id": tid, "result": r} for tid, r in results.items()]
    return out


def _apply_tenant(db: Database, run_id: str, tid: str, calls: list[dict[str, Any]], by: str,
                  actor: object, after: Callable[[list[str], list[str]], None] | None) -> str:
    with db.uow() as uow:
        uow.actor = actor
        wallet, _ = uow.tenants.wallet_and_lots(tid)  # locked as the charging engine locks it
        if uow.rerates.applied(run_id, tid) is not None:
            return "already_applied"
        current = uow.rerates.usage(tid, [c["usage_id"] for c in calls])
        for c in calls:
            row = current.get(c["usage_id"])
            price = None if row is None else row.credits_charge + row.uncollected + \
                row.overage_charge
            if price is None or price != Decimal(c["old_charge"]):
                raise conflict("rerate_stale", f"call {c['call_id']} is no longer at "
                                               f"{c['old_charge']}: compute a new dry run")
        before = wallet.balance
        asked = {c["usage_id"]: Decimal(c["new_credit_charge"]) for c in calls}
        p = replay.plan(uow, tid, asked)
        posted = replay.post(uow, wallet, tid, p) if p else 0
        if p:
            _update_usage(uow, tid, p, {c["usage_id"]: c for c in calls}, current)
        for c in calls:
            uow.rerates.add_correction(
                id=new_id("cor"), tenant_id=tid, rerate_id=run_id, usage_id=c["usage_id"],
                call_id=c["call_id"], old_charge=Decimal(c["old_charge"]),
                new_charge=Decimal(c["new_charge"]), delta=Decimal(c["delta"]), at=uow.now)
        uow.rerates.mark_applied(rerate_id=run_id, tenant_id=tid, applied_at=uow.now,
                                 applied_by=by[:320], corrections=posted,
                                 balance_delta=wallet.balance - before)
        if calls:  # a tenant with nothing to correct is marked, not audited
            audit.record(uow, tid, "rerate.apply", run_id,
                         before={"balance": str(before)},
                         after={"balance": str(wallet.balance), "calls": len(calls),
                                "entries": posted})
            cuts.cover_reservations(uow, wallet)  # a dearer past may leave less than is
            #                                       reserved: those calls are cut
        uow.commit()
        started, cut = sorted(uow.recharges_requested), sorted(uow.cuts_requested)
    if after is not None and (started or cut):
        after(started, cut)
    return "applied"


def _update_usage(uow: UnitOfWork, tid: str, p: replay.Plan, corrected: dict[str, Any],
                  current: dict[str, Any]) -> None:
    """The usage records follow: what credits took and left uncollected, the lots drawn, and
    for a corrected call its new price (the original kept in ``original_charge``)."""
    touched = [r for r in p.outcome.charges if r.deltas or r.ref in corrected]
    rows = {**uow.rerates.usage(tid, [r.ref for r in touched if r.ref not in current]),
            **current}
    for redrawn in touched:
        row = rows[redrawn.ref]
        values: dict[str, Any] = {"credits_charge": redrawn.collected,
                                  "uncollected": redrawn.uncollected,
                                  "lots": replay.draws_json(redrawn)}
        overage = row.overage_charge
        c = corrected.get(redrawn.ref)
        if c is not None:
            overage = Decimal(c["new_overage_charge"])
            values.update(overage_charge=overage, connection_fee=Decimal(
                c["new_connection_fee"]), original_charge=row.original_charge
                if row.original_charge is not None else row.charge)
        values["charge"] = redrawn.collected + overage
        if values["charge"] == ZERO:
            values["connection_fee"] = ZERO  # as settlement shows it
        uow.rerates.update_usage(tid, redrawn.ref, **values)
