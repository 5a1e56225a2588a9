"""``commcredits rerate``: a dry run prints the totals and writes the per-call CSV, changes
nothing; ``--apply`` corrects; exactly one of ``--tenant``/``--all``; bad options exit 2,
an unknown tenant 1."""

from __future__ import annotations

import csv

from typer.testing import CliRunner

from commcredits.entrypoints.cli import app as cli
from tests.api.voice import UK, make_voice
from tests.rerate.test_api import DEAR
from tests.rerate.world import put_deck


def test_rerate_dry_run_csv_then_apply(api, db_url, tmp_path):
    voice = make_voice(api)
    voice.fund("5.00")
    voice.call("uk", UK)
    voice.end("uk", 600)
    put_deck(api, DEAR)
    out = tmp_path / "diff.csv"
    base = ["rerate", "--from", "2030-03-01", "--to", "2030-03-31", "--db", db_url]
    r = CliRunner().invoke(cli, [*base, "--tenant", voice.tid, "--csv", str(out)])
    assert r.exit_code == 0, r.output
    assert "dry_run" in r.output and "0.30" in r.output
    rows = list(csv.reader(out.open(newline="")))
    assert rows[1][1:] == ["uk", rows[1][2], "0.20", "0.50", "0.30"]
    assert voice.credits()["balance"] == "4.80"
    r = CliRunner().invoke(cli, [*base, "--all", "--apply"])
    assert r.exit_code == 0, r.output
    assert f"{voice.tid}: applied" in r.output
    assert voice.credits()["balance"] == "4.50"


def test_rerate_refuses_bad_options(api, db_url):
    base = ["rerate", "--from", "2030-03-01", "--to", "2030-03-31", "--db", db_url]
    r = CliRunner().invoke(cli, base)
    assert r.exit_code == 2 and "--tenant T or --all" in r.output
    r = CliRunner().invoke(cli, [*base, "--all", "--tenant", "x"])
    assert r.exit_code == 2
    r = CliRunner().invoke(cli, ["rerate", "--all", "--from", "2030-02-31", "--to",
                                 "2030-03-31", "--db", db_url])
    assert r.exit_code == 2 and "from '2030-02-31' is not a valid date" in r.output
    r = CliRunner().invoke(cli, [*base, "--tenant", "tnt_nope"])
    assert r.exit_code == 1 and "not_found" in r.output
