"""A re-rate diff's CSV hands a spreadsheet no formula: a switch chose the call ids."""

from commcredits.services.rerate import csv_rows


def test_call_ids_are_text_and_amounts_stay_numbers() -> None:
    run = {"calls": [{"tenant_id": "ten_1", "call_id": "@SUM(1+1)", "usage_id": "use_1",
                      "old_charge": "0.20", "new_charge": "0.05", "delta": "-0.15"}]}
    header, row = csv_rows(run)
    assert header[1] == "call_id"
    assert row == ["ten_1", "'@SUM(1+1)", "use_1", "0.20", "0.05", "-0.15"]
