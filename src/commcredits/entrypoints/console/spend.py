"""Spend and forecast (``/console/spend``): daily spend and the balance over the last 28 or
90 days as a server-rendered SVG chart (no script, no CDN), the burn rate and runout date,
the recommended auto-recharge with one click to apply it, and the lots that will expire
unspent at the current burn."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from xml.sax.saxutils import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from commcredits.adapters.db.repositories.credits import closing_balances
from commcredits.domain.access import Action, authorize
from commcredits.domain.errors import DomainError
from commcredits.domain.spend import LotLeft, expiring_unspent
from commcredits.entrypoints.console.common import locale_for, money, render
from commcredits.entrypoints.console.pages import (
    _error_page,
    _runtime,
    _session,
    _status,
    _to_login,
)
from commcredits.services import credits, payment_methods
from commcredits.services.tenants import get_tenant

router = APIRouter(tags=["console"])
WINDOWS = (28, 90)
W, H, LEFT, RIGHT, TOP, BOTTOM = 760, 240, 70, 80, 14, 28


def chart(daily: list[tuple[date, Decimal]], balances: list[Decimal], currency: str,
          locale: str) -> str:
    """An SVG of daily spend (bars, left scale) and the closing balance (line, right scale)."""
    n = len(daily)
    top_spend = max([a for _, a in daily] + [Decimal("0.01")])
    top_balance = max([*balances, Decimal("0.01")])
    plot_w, plot_h = W - LEFT - RIGHT, H - TOP - BOTTOM
    step = plot_w / max(n, 1)
    parts = [f'<svg class="chart" id="spend-chart" viewBox="0 0 {W} {H}" role="img" '
             f'aria-label="Daily spend and balance over {n} days" '
             f'xmlns="http://www.w3.org/2000/svg">']
    parts.append(f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{LEFT + plot_w}" '
                 f'y2="{TOP + plot_h}" stroke="#cfd4dc"/>')
    for i, (day, amount) in enumerate(daily):
        h = amount / top_spend * plot_h  # exact Decimal, formatted to a tenth of a pixel
        label = escape(f"{day.isoformat()}: {money(amount, currency, locale)}")
        parts.append(f'<rect class="spend" x="{LEFT + i * step + step * 0.15:.1f}" '
                     f'y="{TOP + plot_h - h:.1f}" width="{step * 0.7:.1f}" height="{h:.1f}">'
                     f'<title>{label}</title></rect>')
    points = " ".join(f"{LEFT + (i + 0.5) * step:.1f},"
                      f"{TOP + plot_h - b / top_balance * plot_h:.1f}"
                      for i, b in enumerate(balances))
    parts.append(f'<polyline class="balance" points="{points}"/>')
    parts.append(f'<text x="{LEFT - 6}" y="{TOP + 10}" text-anchor="end">'
                 f'{escape(money(top_spend, currency, locale))}</text>')
    parts.append(f'<text x="{LEFT - 6}" y="{TOP + plot_h}" text-anchor="end">0</text>')
    parts.append(f'<text x="{LEFT + plot_w + 6}" y="{TOP + 10}">'
                 f'{escape(money(top_balance, currency, locale))}</text>')
    for i in sorted({0, n // 2, n - 1}) if n else []:
        parts.append(f'<text x="{LEFT + (i + 0.5) * step:.1f}" y="{H - 8}" '
                     f'text-anchor="middle">{daily[i][0].strftime("%d %b")}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _balance_line(uow: Any, tid: str, days: list[date]) -> list[Decimal]:
    since = datetime.combine(days[0], time.min, tzinfo=UTC)
    opening, closing = closing_balances(uow.conn, tid, since)
    out, current = [], opening or Decimal(0)
    for d in days:
        current = closing.get(d.isoformat(), current)
        out.append(current)
    return out


@router.get("/console/spend", response_class=HTMLResponse)
def spend(request: Request, days: str = "28", applied: str = "") -> Response:
    sess = _session(request)
    if sess is None:
        return _to_login()
    window = int(days) if days in {str(w) for w in WINDOWS} else 28
    rt = _runtime(request)
    try:
        authorize(sess.principal, Action.READ, sess.tenant_id)
        with rt.db.uow(readonly=True) as uow:
            tenant = get_tenant(uow, sess.tenant_id)
            fc = credits.forecast_view(uow, sess.tenant_id, rt.settings.min_order, window)
            view = credits.credits_view(uow, sess.tenant_id)
            daily = [(date.fromisoformat(d["date"]), Decimal(d["amount"])) for d in fc["daily"]]
            balances = _balance_line(uow, sess.tenant_id, [d for d, _ in daily])
            pm = view["auto_recharge"]["payment_method_id"] or payment_methods.default_id(
                uow, sess.tenant_id)
            today = uow.now.date()
    except DomainError as e:
        return _error_page(request, sess, _status(e), "Not available", e.message)
    loc = locale_for(tenant.country)
    burn = Decimal(fc["burn_per_day"])
    lots = [LotLeft(x["id"], Decimal(x["remaining"]),
                    datetime.fromisoformat(x["expires_at"]).date()) for x in view["lots"]]
    expiring = expiring_unspent(lots, burn, today)
    return render(request, sess, "spend.html", tenant, fc=fc, window=window, windows=WINDOWS,
                  svg=chart(daily, balances, tenant.currency, loc), expiring=expiring,
                  ar=view["auto_recharge"], pm=pm, applied=bool(applied),
                  runout=(date.fromisoformat(fc["runout_date"]).strftime("%-d %B %Y")
                          if fc["runout_date"] else None),
                  today=today, horizon=today + timedelta(days=366))
