"""Sites, groups, connector specs, tariffs and CDRs on SQLite and PostgreSQL alike: column sizes,
parameter limits and uniqueness that only one of the two would enforce."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from csms.core.model import Transaction
from csms.core.sites import ConnectorSpec, ConnectorStandard, PowerType, Site
from csms.core.targets import Targets
from csms.store.sql import SqlStore
from csms.store.tariffs import CdrQuery, SqlTariffs
from csms.tariffs import codec
from csms.tariffs.cdr import build_cdr
from csms.tariffs.model import Restrictions
from csms.tariffs.pricing import MeterReading, SessionUsage, price_session

T0 = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
TARIFF = {
    "tariff_id": "night",
    "currency": "EUR",
    "vat_percent": "19",
    "elements": [
        {"price_components": [{"type": "ENERGY", "price": "0.30"}], "restrictions": {"start_time": "10:20"}},
        {"price_components": [{"type": "ENERGY", "price": "0.40"}, {"type": "FLAT", "price": "1.00"}]},
    ],
}


async def test_connector_specs_of_every_power_type_and_huge_target_lists(store: SqlStore) -> None:
    await store.upsert_station("CP1", security_profile=0, password_hash=None)
    specs = [
        ConnectorSpec(1, 1, ConnectorStandard.IEC_62196_T2, 22_000, power_type=PowerType.AC_3_PHASE),
        ConnectorSpec(2, 1, ConnectorStandard.IEC_62196_T2_COMBO, 150_000, power_type=PowerType.DC),
        ConnectorSpec(3, 1, ConnectorStandard.DOMESTIC_F, 3_700, power_type=PowerType.AC_1_PHASE),
    ]
    await store.sites.set_connector_specs("CP1", specs)
    assert await store.sites.connector_specs("CP1") == specs
    many = (*(f"X{i:06d}" for i in range(40_000)), "CP1")  # beyond PostgreSQL's 32,767 parameters
    assert await store.sites.resolve(Targets(stations=many)) == ["CP1"]
    await store.sites.add_to_group("g", ["CP1"])
    assert await store.sites.remove_from_group("g", list(many)) == 1
    await store.sites.put_site(Site("harbour", "Harbour", time_zone="Europe/Berlin"))
    await store.sites.set_station_site("CP1", "harbour")
    assert await store.sites.resolve(Targets(site="harbour")) == ["CP1"]


async def test_a_cdr_with_an_energy_split_mid_interval_is_kept_exactly(store: SqlStore) -> None:
    tariffs = SqlTariffs(store.db)
    version = await tariffs.save_tariff(codec.from_json(TARIFF))
    assert version.tariff.elements[0].restrictions == Restrictions(
        start_time=version.tariff.elements[0].restrictions.start_time
    )
    # 1 kWh over 30 minutes, cut at 10:20: thirds that no float or short column would keep
    usage = SessionUsage(
        T0,
        T0 + timedelta(minutes=30),
        (MeterReading(T0, Decimal(0)), MeterReading(T0 + timedelta(minutes=30), Decimal(1000))),
    )
    cost = price_session(version.tariff, usage)
    tx = Transaction("CP1", "7", 1, 1, "TAG", T0, T0 + timedelta(minutes=30), 0.0, 1000.0, "Local")
    cdr = build_cdr(tx, cost, [], site_id=None, energy_wh=Decimal(1000))
    assert await tariffs.insert_cdr(cdr) and not await tariffs.insert_cdr(cdr)  # once per transaction
    [kept] = await tariffs.list_cdrs(CdrQuery(since=T0))
    assert kept.energy_wh == Decimal(1000) and kept.incl_vat == cost.incl_vat
    energy = sorted(str(ln["quantity"]) for ln in kept.lines if ln["dimension"] == "ENERGY")
    assert energy == ["0.333333", "0.666667"]
    assert await tariffs.tariff_at("night", T0 - timedelta(days=1)) is None  # none in force back then
    await tariffs.remember_tariff("CP1", "7", "night", 1, "Europe/Berlin")
    await tariffs.remember_tariff("CP1", "7", "other", 9, "UTC")  # the first kept stays
    assert await tariffs.tariff_of("CP1", "7") == ("night", 1, "Europe/Berlin")
    assert await tariffs.retire_tariff("night") and not await tariffs.retire_tariff("night")
