"""Issue 9 item 12: the CLI's database, its messages, and files it cannot read."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from commcredits.entrypoints.cli import app as cli

runner = CliRunner()

DECK_HEADER = "prefix,destination,number_type,per_minute,connection_fee,increment_s\n"


def run(*args: str) -> tuple[int, str]:
    r = runner.invoke(cli, list(args))
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    return r.exit_code, r.output


def test_default_database_does_not_follow_the_current_folder(tmp_path, monkeypatch):
    data = tmp_path / "data"
    monkeypatch.setenv("XDG_DATA_HOME", str(data))
    monkeypatch.delenv("COMMCREDITS_DB", raising=False)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, out = run("ledger", "verify")  # nothing there yet: said, not silently created
    assert code == 2
    assert "no database at" in out and str(data / "commcredits" / "commcredits.sqlite3") in out
    assert not list(elsewhere.rglob("*.sqlite3"))
    code, out = run("db", "upgrade")
    assert code == 0 and "created the schema" in out
    assert f"database: sqlite:///{data}/commcredits/commcredits.sqlite3" in out
    code, out = run("db", "upgrade")
    assert code == 0 and "up to date" in out
    monkeypatch.chdir(tmp_path)  # another folder, the same database
    code, out = run("ledger", "verify")
    assert code == 0 and "ledger OK" in out
    assert not list(elsewhere.rglob("*.sqlite3"))


def test_keys_create_names_the_flag(db_url):
    code, out = run("keys", "create", "--role", "global_admin", "--db", db_url)
    assert code == 2 and "--tenant" in out and "tenant_id" not in out


@pytest.mark.parametrize("content", [
    "prefix,destination\n1,US\n".encode("utf-16"),
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\x00",
    b"upn\nj\xe9r\xf4me@contoso.com\n",  # Latin-1, not UTF-8
])
def test_unreadable_files_are_a_clear_error(db_url, tmp_path: Path, content: bytes):
    f = tmp_path / "input.csv"
    f.write_bytes(content)
    for args in (("rates", "import", str(f), "--currency", "USD"), ("cdrs", "import", str(f)),
                 ("licenses", "assign", "--tenant", "t", "--sku", "MCOPSTNPP",
                  "--users-file", str(f))):
        code, out = run(*args, "--db", db_url)
        assert code == 2, out
        assert "Traceback" not in out
        assert "UTF-16" in out or "not UTF-8" in out or "binary" in out


def test_rates_import_lists_each_bad_line_once(db_url, tmp_path: Path):
    f = tmp_path / "deck.csv"
    f.write_text(DECK_HEADER + "1,US,any,x,0,60\n44,UK,any,0.1,0,0\n")
    code, out = run("rates", "import", str(f), "--currency", "USD", "--db", db_url)
    assert code == 1
    assert out.count("line 2") == 1 and out.count("line 3") == 1


def test_cdrs_import_lists_every_problem_of_a_line(db_url, tmp_path: Path):
    f = tmp_path / "cdrs.csv"
    f.write_text("call_id,tenant_id,call_type,from,to,upn,organizer_upn,start_time,duration_s\n"
                 "a,t1,user_sideways,+1,+2,,,yesterday,-5\n")
    code, out = run("cdrs", "import", str(f), "--db", db_url)
    assert code == 1
    assert "call_type" in out and "start_time" in out and "duration_s" in out
