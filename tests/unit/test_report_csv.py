"""Reports as CSV: every list's rows, a section column when there are several, safe cells."""

import csv
import io

from gateway.report_csv import report_csv


def rows(text):
    return list(csv.reader(io.StringIO(text)))


def test_one_list_is_one_table_and_summary_fields_stay_out():
    report = {
        "items": [{"status": "lead", "owner": None, "customers": 2}],
        "total": 2,
        "as_of": "2026-01-01T00:00:00+00:00",
    }
    assert rows(report_csv(report)) == [["status", "owner", "customers"], ["lead", "", "2"]]


def test_several_lists_share_one_table_with_a_section_column():
    report = {
        "performance": [{"owner": "sam", "won": 1, "win_rate": 0.5}],
        "forecast": [{"owner": "kim", "weighted_amount": "10.00"}],
        "lag_seconds": 0.2,
    }
    assert rows(report_csv(report)) == [
        ["section", "owner", "won", "win_rate", "weighted_amount"],
        ["performance", "sam", "1", "0.5", ""],
        ["forecast", "kim", "", "", "10.00"],
    ]


def test_cells_a_spreadsheet_would_run_are_defused_but_numbers_are_not():
    report = {"items": [{"owner": "=HYPERLINK(1)", "amount": "-12.50", "note": "+cmd"}]}
    assert rows(report_csv(report))[1] == ["'=HYPERLINK(1)", "-12.50", "'+cmd"]
