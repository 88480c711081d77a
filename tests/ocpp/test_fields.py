"""Payload fields read alike by the 1.6 and 2.0.1 handlers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from csms.ocpp.fields import read_timestamp
from csms.ocpp.session import HandlerError
from ocppj.framing import ErrorKind, code_for
from ocppj.versions import OcppVersion


def test_a_readable_timestamp_is_utc() -> None:
    assert read_timestamp("2026-01-01T11:00:00+01:00") == datetime(2026, 1, 1, 10, tzinfo=UTC)


@pytest.mark.parametrize("text", ["2026-12-31T23:59:60Z", "yesterday"])
def test_an_unreadable_timestamp_is_one_property_violation_in_both_versions(text: str) -> None:
    with pytest.raises(HandlerError) as info:
        read_timestamp(text)
    assert info.value.kind is ErrorKind.PROPERTY
    codes = {code_for(info.value.kind, version) for version in OcppVersion}
    assert codes == {"PropertyConstraintViolation"}
