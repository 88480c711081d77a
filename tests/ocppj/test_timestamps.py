"""OCPP timestamps: lenient parsing to UTC, formatting in UTC with a 'Z'."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from ocppj.timestamps import Timespec, as_utc, format_datetime, parse_datetime


@pytest.mark.parametrize("text", ["2026-01-01T10:00:00Z", "2026-01-01T10:00:00", "2026-01-01T11:00:00+01:00",
                                  "2026-01-01T10:00:00.000z", " 2026-01-01T10:00:00Z ",
                                  "2026-01-01T05:00:00-05:00"])
def test_timestamps_are_parsed_leniently_to_utc(text: str) -> None:
    parsed = parse_datetime(text)
    assert parsed == datetime(2026, 1, 1, 10, tzinfo=UTC) and parsed.tzinfo is UTC


@pytest.mark.parametrize("text", ["", "yesterday", "2026-13-01T10:00:00Z", "2026-01-01T10:00:00ZZ"])
def test_unreadable_timestamps_raise_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        parse_datetime(text)


def test_timestamps_are_formatted_in_utc_with_z() -> None:
    assert format_datetime(datetime(2026, 1, 1, 10, 0, 0, 123456, tzinfo=UTC)) == "2026-01-01T10:00:00.123Z"


@pytest.mark.parametrize(
    "text",
    [
        "2025-01-06T10:00:00Z",
        "2025-01-06T10:00:00z",
        "2025-01-06T10:00:00",
        "2025-01-06T10:00:00.000Z",
        "2025-01-06T11:00:00+01:00",
        "2025-01-06T10:00:00.0000000Z",
        " 2025-01-06T10:00:00+00:00 ",
    ],
)
def test_fleet_timestamps_are_parsed_leniently_as_utc(text: str) -> None:
    assert parse_datetime(text) == datetime(2025, 1, 6, 10, tzinfo=UTC)
    assert parse_datetime(text).tzinfo is UTC


def test_formatting_can_keep_whole_seconds_or_every_digit() -> None:
    whole = datetime(2026, 1, 1, 10, tzinfo=UTC)
    assert format_datetime(whole, timespec="seconds") == "2026-01-01T10:00:00Z"
    assert format_datetime(whole) == "2026-01-01T10:00:00.000Z"
    assert format_datetime(whole.replace(microsecond=5), timespec="auto") == "2026-01-01T10:00:00.000005Z"
    assert format_datetime(whole, timespec="auto") == "2026-01-01T10:00:00Z"


def test_offsets_are_formatted_in_utc_and_naive_values_taken_as_utc() -> None:
    plus_two = datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    assert format_datetime(plus_two) == "2026-01-01T10:00:00.000Z"
    assert format_datetime(datetime(2026, 1, 1, 10)) == "2026-01-01T10:00:00.000Z"
    assert as_utc(plus_two).tzinfo is UTC and as_utc(plus_two) == plus_two


@pytest.mark.parametrize("timespec", ["seconds", "milliseconds", "auto"])
def test_formatted_timestamps_parse_back_to_the_same_instant(timespec: Timespec) -> None:
    moment = datetime(2026, 6, 30, 23, 59, 59, 999000, tzinfo=UTC)
    expected = moment.replace(microsecond=0) if timespec == "seconds" else moment
    assert parse_datetime(format_datetime(moment, timespec=timespec)) == expected
