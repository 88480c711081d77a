"""Sessions priced from the core's register feed: the samples of a message reach pricing after the
message, in order, each counted as if it had come alone; a quote sees the latest one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from csms.app import default_plugins, running
from csms.core.events import Event, MeterSampled, TransactionStarted
from csms.core.model import MeterSample, SampledValue, Transaction
from csms.core.ports import SystemClock
from csms.core.service import ChargingService, ServiceSettings
from csms.store.sites import SqlSites
from csms.store.sql import SqlStore
from csms.store.tariffs import SqlTariffs
from csms.tariffs import codec
from csms.tariffs.pricing import MeterReading
from csms.tariffs.service import TariffService
from tests.conftest import make_settings

T0 = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
# 0.40/kWh + 1.00 per session + 0.10 per idle minute after 5 idle minutes, VAT 19 %
TARIFF = {
    "tariff_id": "standard",
    "currency": "EUR",
    "vat_percent": "19",
    "idle_grace_s": 300,
    "elements": [{"price_components": [
        {"type": "ENERGY", "price": "0.40", "step_size": 1},
        {"type": "FLAT", "price": "1.00"},
        {"type": "PARKING_TIME", "price": "6.00", "step_size": 60},
    ]}],
}


def register(minutes: float, wh: float, tx_id: str = "7") -> MeterSample:
    return MeterSample("CP1", 1, 1, T0 + timedelta(minutes=minutes),
                       (SampledValue("Energy.Active.Import.Register", wh, "Wh"),), tx_id)


@dataclass
class Priced:
    core: ChargingService
    service: TariffService
    tariffs: SqlTariffs
    published: list[Event]


@pytest.fixture
async def priced(tmp_path: Path) -> AsyncIterator[Priced]:
    store = await SqlStore.open(str(tmp_path / "t.sqlite3"), synchronous="NORMAL")
    try:
        tariffs = SqlTariffs(store.db)
        await tariffs.save_tariff(codec.from_json(TARIFF))
        await tariffs.assign("default", "", "standard")
        published: list[Event] = []
        core = ChargingService(store, published.append, SystemClock(), ServiceSettings(),
                               wants=lambda _cls: False)
        service = TariffService(tariffs, store, SqlSites(store.db), SystemClock(), reading_interval_s=60)
        core.registers = service.feed
        yield Priced(core, service, tariffs, published)
    finally:
        await store.close()


async def test_every_sample_of_one_message_is_kept_as_if_it_came_alone(priced: Priced) -> None:
    tx = Transaction("CP1", "7", 1, 1, "T1", T0, meter_start_wh=0.0)
    priced.service.on_event(TransactionStarted(station_id="CP1", transaction=tx))
    await priced.service.step()  # keeps the tariff in force at the start
    # one message with four readings (a StopTransaction's transactionData, readings held back
    # while offline); 30:20 is within a minute of 30:00: not kept, but the latest until 60:00
    priced.core.meter([register(30, 5000), register(30 + 1 / 3, 5100), register(60, 10_000),
                       register(80, 10_000), register(5, 50, tx_id="8")])
    assert priced.service.feed.queued == 5 and priced.published == []  # queued, nothing built per sample

    ended = replace(tx, stopped_at=T0 + timedelta(minutes=80), meter_stop_wh=10_000.0)
    cost = await priced.service.quote(ended)
    # 10 kWh in the first hour, then 20 idle minutes (15 billed): the 60:00 reading counted.
    # Had only the newest register been read (80:00), no minute would have been idle: 5.95.
    assert cost is not None and cost.incl_vat == Decimal("7.74")
    assert priced.service.feed.queued == 0

    await priced.service.flush()
    minutes = [(r.at - T0) / timedelta(minutes=1) for r in await priced.tariffs.readings("CP1", "7")]
    assert minutes == [0, 30, 60, 80]
    assert await priced.tariffs.readings("CP1", "8") == [MeterReading(T0 + timedelta(minutes=5), Decimal(50))]


async def test_a_running_quote_sees_the_register_of_the_message_just_answered(priced: Priced) -> None:
    tx = Transaction("CP1", "7", 1, 1, "T1", T0, meter_start_wh=0.0)
    priced.service.on_event(TransactionStarted(station_id="CP1", transaction=tx))
    await priced.service.step()  # keeps the tariff in force at the start
    priced.core.meter([register(30, 5000)])
    first = await priced.service.quote(tx, T0 + timedelta(minutes=30))
    priced.core.meter([register(30.5, 5500)])  # within a minute: not kept, yet the latest
    second = await priced.service.quote(tx, T0 + timedelta(minutes=30.5))
    assert first is not None and second is not None
    assert second.excl_vat - first.excl_vat == Decimal("0.20")  # 500 Wh at 0.40/kWh


async def test_with_every_default_part_on_no_meter_sample_becomes_an_event(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    async with running(settings, plugins=default_plugins(settings)) as app:
        core = app.service
        assert core is not None and app.parts.tariffs is not None
        assert core.registers is app.parts.tariffs.feed
        assert not app.bus.wants(MeterSampled)  # no telemetry configured: nobody reads samples
    assert core.registers is None  # detached when the part stopped
