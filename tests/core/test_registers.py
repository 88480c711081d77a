"""RegisterFeed: readings reach their one reader in order, in bounded batches, and a failing reader
never fails the station's message that queued them."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest

from csms.core.registers import Reading, RegisterFeed

T0 = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


def test_readings_arrive_in_order_when_a_batch_is_full_or_on_flush() -> None:
    got: list[list[Reading]] = []
    feed = RegisterFeed(got.append, batch=3)
    for i in range(4):
        feed.add(("CP1", "7"), T0 + timedelta(seconds=i), float(i))
    assert [[wh for _, _, wh in b] for b in got] == [[0.0, 1.0, 2.0]] and feed.queued == 1
    feed.flush()
    feed.flush()  # nothing queued: the reader is not called
    assert [[wh for _, _, wh in b] for b in got] == [[0.0, 1.0, 2.0], [3.0]] and feed.queued == 0
    assert got[1] == [(("CP1", "7"), T0 + timedelta(seconds=3), 3.0)]


def test_a_failing_reader_is_logged_and_later_readings_still_arrive(caplog: pytest.LogCaptureFixture) -> None:
    got: list[Reading] = []

    def reader(readings: list[Reading]) -> None:
        if readings[0][2] < 0:
            raise ValueError("bad register")
        got.extend(readings)

    feed = RegisterFeed(reader, batch=1)
    with caplog.at_level(logging.ERROR, logger="csms.core.registers"):
        feed.add(("CP1", "7"), T0, -1.0)  # raises inside: the caller goes on
    assert "register reader failed" in caplog.text
    feed.add(("CP1", "7"), T0, 5.0)
    assert got == [(("CP1", "7"), T0, 5.0)]
