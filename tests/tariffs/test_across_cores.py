"""Tariffs with two core nodes: the serving core's CDR and the reconciling one, running cost updates."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from csms.core.events import TransactionEnded, TransactionStarted
from csms.core.model import Transaction
from csms.store.sites import SqlSites
from csms.store.sql import SqlStore
from csms.store.tariffs import SqlTariffs
from csms.tariffs.pricing import Cost
from csms.tariffs.running_cost import RunningCost
from csms.tariffs.service import RECONCILE_GRACE_S, TariffService
from ocppj.versions import OcppVersion

T0 = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)


class Clock:
    def now(self) -> datetime:
        return T0 + timedelta(hours=1)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    s = await SqlStore.open(str(tmp_path / "shared.sqlite3"))
    try:
        yield s
    finally:
        await s.close()


def _node(store: SqlStore) -> TariffService:
    return TariffService(SqlTariffs(store.db), store, SqlSites(store.db), Clock())


async def test_the_reconciling_core_leaves_a_session_just_ended_elsewhere_to_its_serving_core(
    store: SqlStore,
) -> None:
    await store.upsert_station("CP1")
    tx, _ = await store.start_transaction("CP1", evse_id=1, connector_id=1, id_tag="T", meter_start_wh=0,
                                          ts=T0)
    stopped = await store.stop_transaction("CP1", tx.tx_id, meter_stop_wh=5000, ts=T0 + timedelta(minutes=30),
                                           reason=None, id_tag="T")
    assert stopped.transaction is not None
    reconciler = _node(store)
    reconciler.on_ended_anywhere(TransactionEnded(station_id="CP1", transaction=stopped.transaction))
    assert await reconciler.reconcile() == 0  # the serving core's turn: its readings may still land
    assert await SqlTariffs(store.db).cdr_of("CP1", tx.tx_id) is None

    reconciler.cdr_delay_s = -RECONCILE_GRACE_S - 1.0  # as if the grace had passed without a CDR
    assert await reconciler.reconcile() == 1
    serving = _node(store)  # the serving core's own attempt finds the CDR made: one CDR, kept
    made = await serving.make_cdr("CP1", tx.tx_id)
    assert made is not None and made.tx_id == tx.tx_id
    assert await reconciler.reconcile() == 0


async def test_only_the_core_serving_a_station_sends_its_running_cost() -> None:
    calls: dict[str, list[tuple[str, str]]] = {"a": [], "b": []}
    served = {"a": {"CP1"}, "b": {"CP2"}}

    async def quote(tx: Transaction) -> Cost | None:
        return Cost(currency="EUR", tariff_id="t", tariff_version=1, lines=(), energy_wh=Decimal(1000),
                    charging_s=Decimal(60), idle_s=Decimal(0), billed_idle_s=Decimal(0),
                    excl_vat=Decimal("1.00"), vat=Decimal("0.20"), incl_vat=Decimal("1.20"))

    def node(name: str) -> RunningCost:
        async def call(station_id: str, action: str, payload: dict[str, Any]) -> dict[str, Any]:
            calls[name].append((station_id, action))
            return {}

        return RunningCost(quote, call, 1.0, here=lambda station_id: station_id in served[name])

    a, b = node("a"), node("b")
    for station_id in ("CP1", "CP2"):
        tx = Transaction(station_id=station_id, tx_id=f"tx-{station_id}", evse_id=1, connector_id=1,
                         id_tag="T", started_at=T0, protocol=OcppVersion.V201)
        for n in (a, b):  # every core hears every session's start (the cluster-wide subscription)
            n.on_event(TransactionStarted(station_id=station_id, transaction=tx))
    await a.send_updates()
    await b.send_updates()
    assert calls == {"a": [("CP1", "CostUpdated")], "b": [("CP2", "CostUpdated")]}
    served["a"], served["b"] = set(), {"CP1", "CP2"}  # CP1 reconnected through core b
    await a.send_updates()
    await b.send_updates()
    assert calls["a"] == [("CP1", "CostUpdated")]
    assert calls["b"] == [("CP2", "CostUpdated"), ("CP1", "CostUpdated")]
