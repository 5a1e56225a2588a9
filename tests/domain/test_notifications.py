"""Notices about lots: text and a dedupe key so that jobs that run twice send once."""

from __future__ import annotations

from commcredits.domain.notifications import NoticeKind, lot_expired, lot_expiring


def test_lot_expiring() -> None:
    n = lot_expiring("Contoso", "lot_1", "12.50", "USD", "2028-01-31T10:00:00+00:00")
    assert n.kind is NoticeKind.LOT_EXPIRING
    assert n.subject == "Contoso: 12.50 USD of communications credits expire on 2028-01-31"
    assert "2028-01-31T10:00:00+00:00" in n.body
    assert n.dedupe == "lot_expiring:lot_1"


def test_lot_expired() -> None:
    n = lot_expired("Contoso", "lot_1", "3.00", "EUR", "40.00")
    assert n.kind is NoticeKind.LOT_EXPIRED
    assert n.subject == "Contoso: 3.00 EUR of communications credits expired"
    assert "balance is now 40.00 EUR" in n.body
    assert n.dedupe == "lot_expired:lot_1"
    assert n.dedupe != lot_expiring("Contoso", "lot_1", "3", "EUR", "x").dedupe
