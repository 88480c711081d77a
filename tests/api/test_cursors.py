"""Paging cursors round-trip and refuse what their listing did not make."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from csms.api.cursors import BadCursor, offset_cursor, read_offset, read_tx_cursor, tx_cursor
from csms.core.ports import TxKey, TxOrder


def test_a_transaction_cursor_keeps_its_order_and_key_to_the_microsecond() -> None:
    key = TxKey(datetime(2026, 11, 1, 8, 0, 0, 123456, tzinfo=UTC), "CP/1 é", "tx-9")
    assert read_tx_cursor(tx_cursor(TxOrder.STARTED_ASC, key)) == (TxOrder.STARTED_ASC, key)
    no_start = TxKey(None, "CP1", "7")
    assert read_tx_cursor(tx_cursor(TxOrder.STARTED_DESC, no_start)) == (TxOrder.STARTED_DESC, no_start)


def test_an_offset_cursor_round_trips() -> None:
    assert read_offset(offset_cursor(4950)) == 4950


@pytest.mark.parametrize("cursor", [
    "", "!!!", "e30",  # not base64 JSON / an empty object
    offset_cursor(50),  # another listing's
    "eyJrIjoidHJhbnNhY3Rpb25zIiwicyI6InNpZGV3YXlzIiwidCI6bnVsbCwiYyI6IkEiLCJ4IjoiMSJ9",  # unknown order
])
def test_a_transaction_cursor_from_elsewhere_is_refused(cursor: str) -> None:
    with pytest.raises(BadCursor):
        read_tx_cursor(cursor)


@pytest.mark.parametrize("cursor", ["", "e30", tx_cursor(TxOrder.STARTED_ASC, TxKey(None, "A", "1")),
                                    "eyJrIjoic3RhdGlvbnMiLCJvIjotMX0"])  # offset -1
def test_an_offset_cursor_from_elsewhere_is_refused(cursor: str) -> None:
    with pytest.raises(BadCursor):
        read_offset(cursor)
