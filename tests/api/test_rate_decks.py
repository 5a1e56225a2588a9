"""Rate decks: all-or-nothing import with line numbers, and lookup by longest prefix."""

from __future__ import annotations

from tests.api.voice import DECK


def put_deck(api, text, currency="USD", key=None):
    return api.client.put(f"/v1/rate-decks/{currency}", content=text.encode(),
                          headers={"Authorization": f"Bearer {key or api.operator}",
                                   "Content-Type": "text/csv"})


def lookup(api, number, currency="USD", **params):
    return api.client.get(f"/v1/rates/{currency}/lookup", params={"number": number, **params},
                          headers={"Authorization": f"Bearer {api.operator}"})


def test_import_and_lookup(api):
    r = put_deck(api, DECK)
    assert r.status_code == 200 and r.json()["rows"] == 11 and r.json()["currency"] == "USD"
    assert lookup(api, "+447400123456").json() == {
        "prefix": "447", "destination": "United Kingdom mobile", "number_type": "mobile",
        "per_minute": "0.10", "connection_fee": "0.05", "increment_s": 1, "currency": "USD",
        "number": "+447400123456", "country": "GB"}
    uk = lookup(api, "+442079460123").json()
    assert (uk["prefix"], uk["number_type"], uk["per_minute"]) == ("44", "any", "0.02")
    tf = lookup(api, "+18005550100").json()
    assert (tf["prefix"], tf["number_type"]) == ("1800", "toll_free")
    inbound = lookup(api, "+442079460123", number_type="toll_free_inbound").json()
    assert inbound["per_minute"] == "0.08"
    r = lookup(api, "+81312345678")
    assert r.status_code == 404 and r.json()["error"]["code"] == "no_rate"
    assert lookup(api, "+1", currency="EUR").status_code in {404, 422}
    assert lookup(api, "not a number").json()["error"]["code"] == "invalid_number"


def test_bad_deck_is_refused_whole_with_line_numbers(api):
    put_deck(api, DECK)
    bad = ("prefix,destination,number_type,per_minute,connection_fee,increment_s\n"
           "1,United States,any,0.01,0,60\n"
           "+44,UK,any,0.02,0,60\n"
           "33,France,fixed,0.03,0,6\n"
           "49,Germany,any,-0.01,0,60\n"
           "1,United States again,any,0.02,0,60\n"
           "61,Australia,any,0.03,0\n")
    r = put_deck(api, bad)
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["code"] == "validation_error"
    assert [d["line"] for d in error["details"]] == [3, 4, 5, 6, 7]
    assert "line 3" in error["message"]
    # nothing was imported: the old deck still prices
    assert lookup(api, "+442079460123").json()["per_minute"] == "0.02"
    assert put_deck(api, "wrong,header\n1,2\n").status_code == 422
    assert put_deck(api, DECK, currency="XYZ").status_code == 422


def test_a_deck_that_is_not_csv_is_422_with_its_line_not_500(api):
    # found by schemathesis: a stray carriage return or a quote opened and never closed
    for text in ("\r0", 'prefix,destination,number_type,per_minute,connection_fee,increment_s\n'
                         '44,"United\x00 Kingdom,any,0.02,0,60\n',
                 "prefix,destination,number_type,per_minute,connection_fee,increment_s\n"
                 '44,United "Kingdom,any,0.02,0,60\n4"4\r,x\n'):
        r = put_deck(api, text)
        assert r.status_code == 422, (text, r.text)
        assert r.json()["error"]["code"] == "validation_error"


def test_only_the_operator_loads_decks(api):
    tid = api.tenant()
    r = put_deck(api, DECK, key=api.new_key("global_admin", tid))
    assert r.status_code == 403


def test_cli_rates_import(api, db_url, tmp_path):
    from typer.testing import CliRunner

    from commcredits.entrypoints.cli import app as cli
    good = tmp_path / "deck.csv"
    good.write_text(DECK)
    runner = CliRunner()
    r = runner.invoke(cli, ["rates", "import", str(good), "--currency", "GBP", "--db", db_url])
    assert r.exit_code == 0 and "imported 11 rates for GBP" in r.output
    bad = tmp_path / "bad.csv"
    bad.write_text(DECK + "99,Nowhere,any,abc,0,60\n")
    r = runner.invoke(cli, ["rates", "import", str(bad), "--currency", "GBP", "--db", db_url])
    assert r.exit_code == 1 and "line 13" in r.output
    assert lookup(api, "+442079460123", currency="GBP").json()["per_minute"] == "0.02"
