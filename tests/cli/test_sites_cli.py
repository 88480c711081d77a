"""``csms sites`` and ``csms stations place`` on a real SQLite database."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from csms.cli import main
from csms.store.sql import SqlStore


def _csms(db: Path, *argv: str) -> int:
    return main([argv[0], "--db", str(db), *argv[1:]])


async def _placement(db: Path, station_id: str) -> tuple[str | None, tuple[str, ...]]:
    store = await SqlStore.open(str(db))
    try:
        p = await store.sites.placement(station_id)
        return p.site_id, p.groups
    finally:
        await store.close()


def test_a_station_is_placed_at_a_site_and_in_groups(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "csms.sqlite3"
    assert _csms(db, "stations", "add", "CP1") == 0
    assert _csms(db, "sites", "add", "harbour", "--name", "Harbour", "--time-zone", "Europe/Berlin") == 0
    place = ("--site", "harbour", "--group", "north", "--group", "fast")
    assert _csms(db, "stations", "place", "CP1", *place) == 0
    assert asyncio.run(_placement(db, "CP1")) == ("harbour", ("fast", "north"))
    capsys.readouterr()
    assert _csms(db, "sites", "list") == 0
    assert "site harbour\tHarbour\tstations=1" in capsys.readouterr().out

    assert _csms(db, "stations", "place", "CP1", "--site", "nowhere") == 2
    assert "no site 'nowhere'" in capsys.readouterr().err
    assert _csms(db, "stations", "place", "CP1", "--group", "has space") == 2
    assert _csms(db, "sites", "add", "harbour", "--name", "H", "--time-zone", "Mars/Base") == 2
    assert _csms(db, "stations", "place", "CP1", "--site", "") == 0  # clears the site, keeps the groups
    assert asyncio.run(_placement(db, "CP1")) == (None, ("fast", "north"))
