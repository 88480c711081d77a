"""The campaign state machine: waves, retries, timeouts, windows, pause/resume/abort (a fake clock)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from csms.firmware.campaign import (
    Campaign,
    CampaignSpec,
    CampaignState,
    LiveStation,
    StationState,
    TransitionNotAllowed,
    Window,
)
from csms.firmware.files import DownloadTokens
from csms.firmware.service import FirmwareService

T0 = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)
IDS = [f"CP{i:02d}" for i in range(7)]


def spec(**kw: object) -> CampaignSpec:
    base: dict[str, object] = {"version": "2.0.0", "file_id": "f" * 32, "wave_size": 3, "max_retries": 1,
                               "station_timeout_s": 60}
    base.update(kw)
    return CampaignSpec(**base)  # type: ignore[arg-type]


def online(version: str = "1.0.0") -> LiveStation:
    return LiveStation(True, version)


def all_online(cid: str) -> LiveStation:
    return online()


def sent(orders: list[object]) -> list[str]:
    return [o.charger_id for o in orders]  # type: ignore[attr-defined]


def install(c: Campaign, cid: str, now: datetime) -> None:
    c.on_sent(cid, True, None, now)
    for status in ("Downloading", "Downloaded", "Installing", "Installed"):
        c.on_status(cid, status, now)
    c.on_boot(cid, "2.0.0", now)


def test_waves_start_in_order_and_the_next_only_once_the_current_is_installed() -> None:
    c = Campaign.new(1, spec(), IDS, T0)
    assert [r.wave for r in c.stations.values()] == [0, 0, 0, 1, 1, 1, 2]
    assert sent(c.tick(T0, all_online)) == IDS[:3]
    assert c.tick(T0, all_online) == []  # nothing twice
    for cid in IDS[:2]:
        install(c, cid, T0)
    assert c.tick(T0, all_online) == []  # one of the wave is still updating
    install(c, IDS[2], T0)
    assert sent(c.tick(T0, all_online)) == IDS[3:6]
    assert c.current_wave == 1
    for cid in IDS[3:6]:
        install(c, cid, T0)
    assert sent(c.tick(T0, all_online)) == IDS[6:]
    install(c, IDS[6], T0)
    assert c.tick(T0, all_online) == []
    assert c.state is CampaignState.DONE
    assert c.counts()["installed"] == 7


def test_installed_only_after_booting_the_target_version() -> None:
    c = Campaign.new(1, spec(), IDS[:1], T0)
    c.tick(T0, all_online)
    c.on_sent("CP00", True, None, T0)
    c.on_status("CP00", "Installed", T0)
    assert c.stations["CP00"].state is StationState.UPDATING
    c.on_boot("CP00", "2.0.0", T0)
    assert c.stations["CP00"].state is StationState.INSTALLED


def test_a_boot_with_another_version_after_installed_is_a_failed_attempt() -> None:
    c = Campaign.new(1, spec(max_retries=0), IDS[:1], T0)
    c.tick(T0, all_online)
    c.on_status("CP00", "Installed", T0)
    c.on_boot("CP00", "1.0.0", T0)
    assert c.stations["CP00"].state is StationState.FAILED


def test_failures_are_retried_up_to_max_retries_then_failed() -> None:
    c = Campaign.new(1, spec(max_retries=1), IDS[:1], T0)
    assert sent(c.tick(T0, all_online)) == ["CP00"]
    c.on_status("CP00", "DownloadFailed", T0)
    run = c.stations["CP00"]
    assert (run.state, run.attempts, run.last_status) == (StationState.PENDING, 1, "DownloadFailed")
    orders = c.tick(T0, all_online)
    assert [o.attempt for o in orders] == [2]
    c.on_status("CP00", "InstallationFailed", T0)
    assert run.state is StationState.FAILED
    assert c.tick(T0, all_online) == []
    assert c.state is CampaignState.DONE


def test_a_rejected_command_is_a_failed_attempt() -> None:
    c = Campaign.new(1, spec(max_retries=0), IDS[:1], T0)
    c.tick(T0, all_online)
    c.on_sent("CP00", False, "Rejected", T0)
    assert c.stations["CP00"].state is StationState.FAILED
    assert c.stations["CP00"].last_status == "Rejected"


def test_failed_stations_do_not_block_the_next_wave() -> None:
    c = Campaign.new(1, spec(max_retries=0), IDS[:6], T0)
    c.tick(T0, all_online)
    c.on_status("CP00", "DownloadFailed", T0)
    install(c, "CP01", T0)
    install(c, "CP02", T0)
    assert sent(c.tick(T0, all_online)) == IDS[3:6]


def test_a_success_threshold_below_one_starts_the_next_wave_early() -> None:
    c = Campaign.new(1, spec(success_threshold=0.6), IDS[:6], T0)
    c.tick(T0, all_online)
    install(c, "CP00", T0)
    assert c.tick(T0, all_online) == []  # 1 of 3 < ceil(0.6 x 3) = 2
    install(c, "CP01", T0)
    assert sent(c.tick(T0, all_online)) == IDS[3:6]


def test_silence_past_the_station_timeout_is_a_failed_attempt() -> None:
    c = Campaign.new(1, spec(max_retries=1, station_timeout_s=60), IDS[:1], T0)
    c.tick(T0, all_online)
    c.on_status("CP00", "Downloading", T0 + timedelta(seconds=50))
    assert c.tick(T0 + timedelta(seconds=100), all_online) == []  # progress 50 s ago
    orders = c.tick(T0 + timedelta(seconds=111), all_online)
    assert [o.attempt for o in orders] == [2]


def test_an_offline_station_waits_then_counts_as_a_failed_attempt() -> None:
    c = Campaign.new(1, spec(max_retries=1, station_timeout_s=60), IDS[:1], T0)

    def offline(cid: str) -> LiveStation:
        return LiveStation(False, None)

    assert c.tick(T0, offline) == []
    assert c.stations["CP00"].last_status == "offline"
    assert c.tick(T0 + timedelta(seconds=61), offline) == []
    assert c.stations["CP00"].attempts == 1
    assert sent(c.tick(T0 + timedelta(seconds=62), all_online)) == ["CP00"]  # it came back
    c.on_status("CP00", "DownloadFailed", T0 + timedelta(seconds=63))
    assert c.stations["CP00"].state is StationState.FAILED


def test_a_station_already_on_the_version_is_installed_without_a_command() -> None:
    c = Campaign.new(1, spec(), IDS[:2], T0)
    assert sent(c.tick(T0, lambda cid: online("2.0.0" if cid == "CP00" else "1.0.0"))) == ["CP01"]
    assert c.stations["CP00"].state is StationState.INSTALLED


def test_sends_only_inside_the_window_wrapping_midnight() -> None:
    window = Window(time(23, 0), time(2, 0))
    c = Campaign.new(1, spec(window=window), IDS[:1], T0)
    assert c.tick(T0, all_online) == []  # 12:00
    assert sent(c.tick(T0.replace(hour=23, minute=30), all_online)) == ["CP00"]
    assert window.contains(T0.replace(hour=1)) and not window.contains(T0.replace(hour=2))


def test_pause_stops_new_sends_and_resume_continues() -> None:
    c = Campaign.new(1, spec(), IDS[:6], T0)
    c.tick(T0, all_online)
    c.pause(T0)
    for cid in IDS[:3]:
        install(c, cid, T0)  # the stations already updating go on
    assert c.tick(T0, all_online) == []
    assert c.counts()["installed"] == 3
    with pytest.raises(TransitionNotAllowed):
        c.pause(T0)
    c.resume(T0)
    assert sent(c.tick(T0, all_online)) == IDS[3:6]


def test_abort_cancels_the_stations_not_started_and_is_final() -> None:
    c = Campaign.new(1, spec(), IDS[:6], T0)
    c.tick(T0, all_online)
    c.abort(T0)
    assert c.state is CampaignState.ABORTED
    assert c.tick(T0, all_online) == []
    assert c.counts()["cancelled"] == 3 and c.counts()["updating"] == 3
    install(c, "CP00", T0)  # one already updating still finishes
    assert c.stations["CP00"].state is StationState.INSTALLED
    c.on_status("CP01", "DownloadFailed", T0)  # no retries once aborted
    assert c.stations["CP01"].state is StationState.FAILED
    for action in (c.pause, c.resume, c.abort):
        with pytest.raises(TransitionNotAllowed):
            action(T0)


def test_an_order_not_yet_sent_when_the_campaign_is_aborted_is_withdrawn() -> None:
    c = Campaign.new(1, spec(), IDS[:2], T0)
    c.tick(T0, all_online)
    assert c.unsent("CP00", T0) is False  # running: send it
    c.abort(T0)
    assert c.unsent("CP00", T0) is True
    run = c.stations["CP00"]
    assert (run.state, run.attempts) == (StationState.CANCELLED, 0)


def test_a_notification_naming_another_request_is_ignored() -> None:
    c = Campaign.new(7, spec(), IDS[:1], T0)
    (order,) = c.tick(T0, all_online)
    assert order.request_id == 7001
    c.on_status("CP00", "DownloadFailed", T0, request_id=42)
    assert c.stations["CP00"].state is StationState.UPDATING


def test_changes_are_reported_once_for_persisting() -> None:
    c = Campaign.new(1, spec(), IDS[:2], T0)
    c.take_changes()
    c.tick(T0, all_online)
    _, runs = c.take_changes()
    assert [r.charger_id for r in runs] == IDS[:2]
    assert c.take_changes() == (False, [])
    c.pause(T0)
    assert c.take_changes()[0] is True


@pytest.mark.parametrize("kw, message", [
    ({"file_id": None}, "exactly one of location and file_id"),
    ({"location": "http://x/y"}, "exactly one of location and file_id"),
    ({"wave_size": 0}, "wave_size"),
    ({"success_threshold": 1.5}, "success_threshold"),
    ({"max_retries": -1}, "max_retries"),
    ({"signature": "abc"}, "signature and signing_certificate"),
    ({"station_timeout_s": 0}, "station_timeout_s"),
])
def test_specs_that_make_no_sense_are_refused(kw: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        spec(**kw)


def test_a_campaign_needs_stations() -> None:
    with pytest.raises(ValueError, match="no registered station"):
        Campaign.new(1, spec(), [], T0)


def test_the_service_holds_every_order_while_no_download_address_is_known() -> None:
    service = FirmwareService(
        None, None, DownloadTokens("k"), None, None, all_online, None,  # type: ignore[arg-type]
    )
    service.campaigns[1] = Campaign.new(1, spec(), IDS, T0)
    assert service.tick(T0) == []  # the HTTP server's address is not known yet
    assert all(r.state is StationState.PENDING for r in service.campaigns[1].stations.values())
    service.public_base_url = "http://csms.example"
    assert [o.order.charger_id for o in service.tick(T0)] == IDS[:3]
