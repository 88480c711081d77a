"""Firmware files and campaigns in the store, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from csms.firmware.campaign import CampaignSpec, CampaignState, LiveStation, StationState, Window
from csms.store.firmware import FirmwareFile, SqlFirmware
from csms.store.sql import SqlStore

T0 = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)


def _online(cid: str) -> LiveStation:
    return LiveStation(True, "1.0.0")


async def test_files_are_kept_listed_in_pages_and_deleted(store: SqlStore) -> None:
    fw = SqlFirmware(store.db)
    for i in range(3):
        await fw.add_file(FirmwareFile(f"{i:032x}", f"fw{i}.bin", 10 + i, "ab" * 32, T0))
    first = await fw.list_files(limit=2)
    assert [f.name for f in first] == ["fw0.bin", "fw1.bin"]
    assert [f.name for f in await fw.list_files(limit=2, after=first[-1].file_id)] == ["fw2.bin"]
    assert (await fw.get_file(f"{1:032x}")) == FirmwareFile(f"{1:032x}", "fw1.bin", 11, "ab" * 32, T0)
    assert await fw.delete_file(f"{0:032x}") == (True, True)  # the same content is still used
    assert await fw.delete_file(f"{0:032x}") == (False, False)


async def test_a_campaign_and_every_station_transition_survive_a_reload(store: SqlStore) -> None:
    fw = SqlFirmware(store.db)
    spec = CampaignSpec(version="2.0.0", file_id="f" * 32, wave_size=2, window=Window(time(1), time(5)),
                        retrieve_at=T0, signature="c2ln", signing_certificate="PEM", max_retries=3)
    c = await fw.create_campaign(spec, {"group": "depot"}, ["A", "B", "C"], T0)
    assert c.id >= 1 and await fw.file_in_active_campaign("f" * 32) == c.id
    orders = c.tick(T0.replace(hour=2), _online)
    assert [o.charger_id for o in orders] == ["A", "B"]
    c.on_sent("A", True, None, T0 + timedelta(seconds=1))
    c.on_status("B", "DownloadFailed", T0 + timedelta(seconds=2))
    c.pause(T0 + timedelta(seconds=3))
    await fw.save(c)

    (loaded,) = await fw.load_active()
    assert loaded.spec == spec
    assert loaded.state is CampaignState.PAUSED
    a, b, cc = (loaded.stations[x] for x in "ABC")
    assert (a.state, a.last_status, a.attempts) == (StationState.UPDATING, "Accepted", 1)
    assert a.request_id == c.id * 1000 + 1
    assert (b.state, b.last_status, b.attempts) == (StationState.PENDING, "DownloadFailed", 1)
    assert (cc.state, cc.wave) == (StationState.PENDING, 1)
    assert await fw.targets_of(c.id) == {"group": "depot"}
    counts = await fw.station_counts([c.id])
    assert counts[c.id]["updating"] == 1 and counts[c.id]["pending"] == 2

    loaded.abort(T0 + timedelta(seconds=4))
    loaded.on_boot("A", "2.0.0", T0 + timedelta(seconds=5))
    await fw.save(loaded)
    assert await fw.load_active() == []  # aborted, nothing updating any more
    again = await fw.load(c.id)
    assert again is not None and again.state is CampaignState.ABORTED
    assert again.counts() == {"pending": 0, "updating": 0, "installed": 1, "failed": 0, "cancelled": 2}
    assert await fw.file_in_active_campaign("f" * 32) is None
    assert [x.id for x in await fw.list_campaigns(limit=10)] == [c.id]
    assert await fw.list_campaigns(limit=10, before=c.id) == []
