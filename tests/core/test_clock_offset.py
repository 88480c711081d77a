"""Per-station clock offsets (``csms.core.clock_offset``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from csms.core.clock_offset import ClockOffsets, median

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def sample(offsets: ClockOffsets, station: str, offset_s: float, at_s: float = 0.0) -> float | None:
    received = T0 + timedelta(seconds=at_s)
    return offsets.add(station, received + timedelta(seconds=offset_s), received)


def test_the_offset_is_the_median_of_the_last_samples_so_one_old_message_does_not_move_it() -> None:
    offsets = ClockOffsets(window=5)
    for i, s in enumerate([7200.0, 7201.0, -3600.0, 7199.0, 7200.5]):  # one message queued for an hour
        sample(offsets, "CP1", s, i)
    assert offsets.offset_s("CP1") == 7200.0
    assert offsets.offset_s("CP2") is None


def test_a_change_is_reported_after_min_samples_then_only_when_it_moves_more_than_the_threshold() -> None:
    offsets = ClockOffsets(min_samples=3, report_change_s=5.0)
    assert sample(offsets, "CP1", 0.2) is None
    assert sample(offsets, "CP1", 0.4) is None
    assert sample(offsets, "CP1", 0.3) == 0.3  # the first report
    assert sample(offsets, "CP1", 3.0) is None  # median 0.35: no news
    for _ in range(5):
        reported = sample(offsets, "CP1", 60.0)
        if reported is not None:
            break
    assert reported is not None and reported > 5.0  # the clock jumped a minute: the median follows
    for _ in range(5):
        sample(offsets, "CP1", 60.0)
    assert offsets.offset_s("CP1") == 60.0


def test_naive_times_are_ignored_and_forget_drops_the_station() -> None:
    offsets = ClockOffsets(min_samples=1)
    assert offsets.add("CP1", T0.replace(tzinfo=None), T0) is None and offsets.offset_s("CP1") is None
    assert sample(offsets, "CP1", -30.0) == -30.0
    assert list(offsets.offsets()) == [-30.0] and len(offsets) == 1
    offsets.forget("CP1")
    assert offsets.offset_s("CP1") is None and len(offsets) == 0


def test_median_of_odd_and_even_counts() -> None:
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 3.0, 2.0]) == 2.5
