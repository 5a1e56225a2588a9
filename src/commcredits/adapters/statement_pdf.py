"""A monthly statement as PDF (fpdf2), in DejaVu Sans: a Unicode TrueType font, so tenants
that name themselves in Cyrillic, Greek or any script DejaVu covers print as they are.

The font comes from Debian's ``fonts-dejavu-core`` (``scripts/_bootstrap.sh`` installs it
when missing) or from ``COMMCREDITS_PDF_FONT`` (a .ttf path)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fpdf import FPDF

from commcredits.domain import statements as rules

FONT_PATHS = ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
              "/usr/share/fonts/TTF/DejaVuSans.ttf",
              "/usr/share/fonts/dejavu/DejaVuSans.ttf")


def font_path() -> Path:
    configured = os.environ.get("COMMCREDITS_PDF_FONT")
    for candidate in ([configured] if configured else []) + list(FONT_PATHS):
        if Path(candidate).is_file():
            return Path(candidate)
    raise RuntimeError("no Unicode font for PDF statements: apt-get install fonts-dejavu-core "
                       "or set COMMCREDITS_PDF_FONT to a .ttf file")


def render(view: dict[str, Any]) -> bytes:
    """One A4 page: the tenant, the month, each line with its amount, the identity."""
    pdf = FPDF(format="A4")
    pdf.set_title(f"Statement {view['month']}")
    pdf.set_creator("commcredits")
    pdf.add_font("DejaVu", "", str(font_path()))
    pdf.add_page()
    pdf.set_font("DejaVu", size=16)
    pdf.cell(0, 10, "Communications credits statement", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("DejaVu", size=11)
    status = "final" if view["final"] else "not final: the month is not over"
    for text in (f"Tenant: {view['tenant_name']} ({view['tenant_id']})",
                 f"Month: {view['month']} ({status})", f"Currency: {view['currency']}"):
        pdf.cell(0, 7, text, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    for key, label, amount in rules.lines(view):
        strong = key in ("opening_balance", "closing_balance", "usage.total")
        pdf.set_font("DejaVu", size=12 if strong else 11)
        pdf.cell(130, 8, label)
        pdf.cell(0, 8, f"{amount} {view['currency']}", align="R", new_x="LMARGIN",
                 new_y="NEXT")
    fundings = view.get("fundings") or []
    if fundings:
        pdf.ln(2)
        pdf.set_font("DejaVu", size=10)
        for f in fundings:
            pdf.cell(130, 6, rules.paid_how(f))
            pdf.cell(0, 6, f"{f['amount']} {view['currency']}", align="R", new_x="LMARGIN",
                     new_y="NEXT")
    pdf.ln(4)
    pdf.set_font("DejaVu", size=9)
    pdf.multi_cell(0, 5, "opening + purchases + auto-recharges - usage + corrections - "
                         "expiries = closing, to the cent; the closing balance is the next "
                         "month's opening balance. Overage is billed separately.")
    return bytes(pdf.output())
