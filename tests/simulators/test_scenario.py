"""Scenarios, arrivals and the report: pure, no network."""

from __future__ import annotations

import asyncio
import importlib.util
import random
import tomllib
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from csms.balancer.topology import topology_from_config
from ocppj.versions import OcppVersion
from simulators.arrivals import CITY_PROFILE, ArrivalConfig, dwell_s, first_arrival_wall_s, next_arrival_s
from simulators.clock import SimClock, Sleeper
from simulators.ev import SupplyKind
from simulators.metrics import Histogram, Progress, Recorder
from simulators.report import build_report, progress_line, write_plots
from simulators.scenario import (
    BUNDLED,
    Scenario,
    ScenarioError,
    apportion,
    balancer_topology,
    load_scenario,
    parse_scenario,
)


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_scenarios_load_and_their_topology_is_valid_for_the_balancer(name: str) -> None:
    scenario = load_scenario(name)
    topology = topology_from_config(balancer_topology(scenario))
    assert len(topology.evses) == sum(len(s.evses) for s in scenario.charger_specs() if s.node)


def test_default_scenario_starts_most_sessions_within_ten_seconds() -> None:
    scenario = load_scenario(None)
    assert scenario.name == "default"
    arrivals = scenario.arrivals
    assert arrivals.first_within_wall_s <= 10 and arrivals.first_share >= 0.9
    rng = random.Random(1)
    early = [first_arrival_wall_s(rng, arrivals) for _ in range(1000)]
    assert sum(1 for d in early if d is not None and d <= 10) >= 900


def test_model_city_is_sized_like_the_architecture_describes() -> None:
    city = load_scenario("model-city")
    nodes = {n.id: n for n in city.grid}
    substations = [n for n in city.grid if n.parent == "city"]
    feeders = [n for n in city.grid if n.parent in {s.id for s in substations}]
    areas = [n for n in city.grid if n.limit_a is not None and "-T" in n.id]
    assert 2_000 <= city.chargers <= 5_000  # "a few thousand stations"
    assert len(substations) >= 3
    assert all(8 <= sum(f.parent == s.id for f in feeders) <= 10 for s in substations)
    assert all(575 <= (a.limit_a or 0) <= 915 for a in areas)  # 400-630 kVA at 3 x 230 V
    per_node = Counter(spec.node for spec in city.charger_specs())
    assert all(10 <= per_node[a.id] <= 50 for a in areas)
    depots = [n for n in city.grid if "-D" in n.id]
    assert depots and all(nodes[d.parent or ""].parent in {s.id for s in substations} for d in depots)
    kinds = Counter(e.kind for spec in city.charger_specs() for e in spec.evses)
    assert kinds[SupplyKind.AC] > kinds[SupplyKind.DC] > 0
    assert city.time_acceleration * city.duration_s >= 86_400  # a day in minutes


def test_charger_specs_are_deterministic_per_seed_and_follow_the_protocol_mix() -> None:
    city = load_scenario("model-city")
    assert city.charger_specs(range(50)) == city.charger_specs(range(50))
    assert city.with_options(seed=9).charger_specs(range(50)) != city.charger_specs(range(50))
    versions = Counter(s.version for s in city.charger_specs())
    share = versions[OcppVersion.V201] / city.chargers
    assert abs(share - city.v201_share) < 0.05
    only16 = city.with_options(protocol="1.6", chargers=100)
    assert {s.version for s in only16.charger_specs()} == {OcppVersion.V16}


def test_overriding_the_charger_count_spreads_chargers_over_the_grid_in_proportion() -> None:
    smaller = load_scenario("model-city").with_options(chargers=310)
    per_node = Counter(spec.node for spec in smaller.charger_specs())
    assert sum(per_node.values()) == 310
    assert len(per_node) > 100  # still spread over (nearly) every area and depot
    topology = balancer_topology(smaller)
    assert {e["station_id"] for e in topology["evses"]} == {smaller.station_id(i) for i in range(310)}


def test_workers_partition_covers_every_charger_once() -> None:
    scenario = load_scenario("smoke").with_options(chargers=7)
    parts = [scenario.charger_specs(range(w, 7, 3)) for w in range(3)]
    ids = [s.station_id for part in parts for s in part]
    assert sorted(ids) == [scenario.station_id(i) for i in range(7)]
    assert {s.station_id: s for s in scenario.charger_specs()} == {s.station_id: s for p in parts for s in p}


@given(st.integers(0, 10_000), st.lists(st.floats(0.1, 100), min_size=1, max_size=30))
def test_apportion_hands_out_exactly_the_total_in_proportion(total: int, weights: list[float]) -> None:
    counts = apportion(total, weights)
    assert sum(counts) == total
    whole = sum(weights)
    assert all(abs(c - total * w / whole) < 1 for c, w in zip(counts, weights, strict=True))


def test_dc_evses_enter_the_topology_as_three_phase_loads() -> None:
    city = load_scenario("model-city")
    dc = next(e for e in balancer_topology(city)["evses"] if e["min_a"] == 0.0)
    assert dc["phases"] == 3
    assert dc["max_a"] in (round(50_000 / 690, 1), round(150_000 / 690, 1))


@pytest.mark.parametrize(("toml", "message"), [
    ("chargerz = 3", "unknown key(s) chargerz"),
    ("[fleet]\nchargers = 'many'", "[fleet]: chargers must be int"),
    ("[fleet]\nprotocol = '2.1'", "protocol must be one of"),
    ("[fleet]\nchargers = 0", "chargers must be 1..1000000"),
    ("[fleet]\nid_prefix = 'a/b'", "id_prefix"),
    ("[arrivals]\ndaily_profile = [1, 2]", "daily_profile needs 24 weights"),
    ("[arrivals]\ndwell_min_s = 100\ndwell_mean_s = 10", "dwell_min_s <= dwell_mean_s"),
    ("[[models]]\nname = 'x'\nkind = 'DC'", "a DC model needs max_power_kw"),
    ("[[models]]\nname = 'x'\nphases = 2", "phases 1 or 3"),
    ("[faults]\noffline_s = [10, 5]", "offline_s must be [min, max]"),
    ("[[grid.nodes]]\nid = 'a'\nparent = 'nowhere'", "unknown parent 'nowhere'"),
    ("[[grid.nodes]]\nid = 'a'\nchargers = 1\nmodels = ['nope']", "unknown model 'nope'"),
    ("start_time = 'tea time'", "start_time 'tea time'"),
    ("[grid.generate]\nsubstations = 0", "need >= 1 substation"),
])
def test_bad_scenarios_are_rejected_with_the_place_and_the_reason(toml: str, message: str) -> None:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(tomllib.loads(toml), "bad.toml")
    assert message in str(info.value)
    assert "bad.toml" in str(info.value)


def test_load_scenario_reports_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot read scenario"):
        load_scenario(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("[fleet\n")
    with pytest.raises(ScenarioError, match=r"broken\.toml: not valid TOML"):
        load_scenario(broken)


def test_start_time_accepts_a_clock_time_today_in_utc() -> None:
    scenario = parse_scenario({"start_time": "16:00"})
    assert scenario.start_time is not None
    assert (scenario.start_time.hour, scenario.start_time.minute) == (16, 0)
    assert scenario.start_time.date() == datetime.now(UTC).date()


def test_id_tags_are_generated_from_prefix_and_count_or_listed() -> None:
    assert parse_scenario({"id_tags": {"prefix": "T", "count": 3}}).id_tags == ("T0001", "T0002", "T0003")
    assert parse_scenario({"id_tags": {"list": ["A", "B"]}}).id_tags == ("A", "B")


# --- arrivals ---------------------------------------------------------------------------------


def test_arrivals_follow_the_daily_profile() -> None:
    cfg = ArrivalConfig(sessions_per_day=40, daily_profile=CITY_PROFILE)
    rng = random.Random(5)
    start = datetime(2025, 6, 2, tzinfo=UTC)
    hours: Counter[int] = Counter()
    t = 0.0
    while t < 100 * 86_400:  # 100 days, ~4,000 arrivals
        t += next_arrival_s(rng, cfg, start + timedelta(seconds=t))
        hours[int(t // 3600) % 24] += 1
    assert 3_500 < sum(hours.values()) < 4_500
    evening, night = range(17, 21), range(1, 5)
    expected = sum(CITY_PROFILE[h] for h in evening) / sum(CITY_PROFILE[h] for h in night)
    observed = sum(hours[h] for h in evening) / sum(hours[h] for h in night)
    assert 0.75 * expected < observed < 1.33 * expected


def test_no_arrivals_when_the_rate_is_zero() -> None:
    cfg = ArrivalConfig(sessions_per_day=0)
    assert next_arrival_s(random.Random(1), cfg, datetime.now(UTC)) == float("inf")


@given(st.integers(0, 2**32))
def test_dwell_stays_within_its_bounds(seed: int) -> None:
    cfg = ArrivalConfig(dwell_mean_s=3600, dwell_min_s=600, dwell_max_s=7200)
    assert 600 <= dwell_s(random.Random(seed), cfg) <= 7200


def test_mean_dwell_is_close_to_the_configured_mean() -> None:
    cfg = ArrivalConfig(dwell_mean_s=3600, dwell_min_s=1, dwell_max_s=10**6)
    rng = random.Random(2)
    mean = sum(dwell_s(rng, cfg) for _ in range(20_000)) / 20_000
    assert abs(mean - 3600) / 3600 < 0.03


# --- time ----------------------------------------------------------------------------------------


def test_sim_clock_runs_rate_times_faster_from_its_start() -> None:
    start = datetime(2025, 6, 2, 16, 0, tzinfo=UTC)
    clock = SimClock(start, rate=60.0)
    assert clock.real_s(3600.0) == 60.0
    assert start <= clock.now() < start + timedelta(seconds=60)
    assert clock.at(90.0) == start + timedelta(seconds=90)
    with pytest.raises(ValueError, match="rate"):
        SimClock(rate=0)


def test_charger_timestamps_are_the_wall_clock_whatever_the_acceleration_plus_an_explicit_skew() -> None:
    start = datetime(2025, 6, 2, 16, 0, tzinfo=UTC)  # simulated morning, far from now
    before = datetime.now(UTC)
    assert before <= SimClock(start, rate=600.0).stamp() <= datetime.now(UTC)
    skewed = SimClock(start, rate=600.0, skew_s=7200.0).stamp() - timedelta(hours=2)
    assert before <= skewed <= datetime.now(UTC)


def test_clock_skew_comes_from_the_scenario_or_the_command_line_and_must_be_finite() -> None:
    assert parse_scenario({"clock_skew_s": -30}).clock_skew_s == -30.0
    assert parse_scenario({}).with_options(clock_skew_s=7200.0).clock_skew_s == 7200.0
    with pytest.raises(ScenarioError, match="clock_skew_s"):
        parse_scenario({"clock_skew_s": float("inf")})


async def test_sleeper_wakes_early_and_remembers_a_wake_while_awake() -> None:
    sleeper = Sleeper()
    task = asyncio.create_task(sleeper.sleep(10.0))
    await asyncio.sleep(0)
    sleeper.wake()
    assert await asyncio.wait_for(task, 1.0) is True
    sleeper.wake()  # nobody sleeping: the next sleep returns at once
    assert await asyncio.wait_for(sleeper.sleep(10.0), 1.0) is True
    assert await sleeper.sleep(0.01) is False


# --- metrics and report -----------------------------------------------------------------------


def test_histogram_quantiles_are_within_two_percent() -> None:
    rng = random.Random(3)
    values = sorted(rng.lognormvariate(-6, 1) for _ in range(10_000))
    h = Histogram()
    for v in values:
        h.record(v)
    for q in (0.5, 0.9, 0.99):
        exact = values[int(q * len(values)) - 1]
        assert abs(h.quantile(q) - exact) / exact < 0.02
    assert h.max_s == values[-1]


def test_recorders_merge_like_one_recorder() -> None:
    one, a, b = Recorder(), Recorder(), Recorder()
    for i in range(200):
        for rec in (one, a if i % 2 else b):
            rec.call_done("Heartbeat", 0.001 * (i + 1))
            rec.count("transactions_started")
    a.call_failed("MeterValues", "call_error:FormationViolation")
    one.call_failed("MeterValues", "call_error:FormationViolation")
    merged = Recorder()
    merged.merge(a.export())
    merged.merge(b.export())
    assert merged.calls_total == one.calls_total == 201
    assert merged.calls["Heartbeat"].latency.quantile(0.9) == one.calls["Heartbeat"].latency.quantile(0.9)
    assert merged.counters == one.counters
    assert merged.protocol_errors == one.protocol_errors == 1


def test_report_has_the_documented_fields_and_counts_protocol_errors() -> None:
    rec = Recorder()
    rec.count("connections_requested", 3)
    for _ in range(3):
        rec.connection_up()
    rec.connect_failures["refused"] += 1
    rec.call_done("BootNotification", 0.002)
    rec.call_failed("Authorize", "timeout:Authorize")
    rec.error("connection_lost")
    rec.snapshot()
    now = datetime.now(UTC)
    report = build_report(rec, config={"chargers": 3, "protocol": "mixed", "csms_url": "ws://x"},
                          started_at=now, finished_at=now, duration_s=2.0)
    data: dict[str, Any] = report.data
    assert set(data) >= {"schema", "config", "connections", "calls", "latency_ms", "latency_ms_until_stop",
                         "errors", "transactions",
                         "energy_wh", "timeline", "inbound_calls", "boots"}
    assert data["connections"] == {**data["connections"], "requested": 3, "established": 3, "failed": 1}
    assert data["calls"]["total"] == 2 and data["calls"]["per_second"] == 1.0
    assert data["calls"]["by_action"]["Authorize"]["errors"] == 1
    assert data["errors"] == {"total": 2, "protocol": 1,
                              "by_kind": {"connection_lost": 1, "timeout:Authorize": 1}}
    assert report.protocol_errors == 1
    assert "csms-sim: 3 chargers" in report.summary()
    assert "connected" in progress_line(rec.snapshot())


def test_plots_are_written_only_when_matplotlib_is_installed(tmp_path: Path) -> None:
    rec = Recorder()
    rec.call_done("Heartbeat", 0.001)
    rec.snapshot()
    now = datetime.now(UTC)
    report = build_report(rec, config={}, started_at=now, finished_at=now, duration_s=1.0)
    written = write_plots(report, tmp_path)
    if importlib.util.find_spec("matplotlib") is None:
        assert written is None
    else:
        assert written is not None and all(p.stat().st_size > 0 for p in written)


def test_scenario_defaults_are_valid() -> None:
    assert parse_scenario({}) == Scenario(name="scenario", arrivals=Scenario().arrivals,
                                          behaviour=Scenario().behaviour)


def test_progress_shows_no_rate_for_the_closing_sub_second_window() -> None:
    def progress(window_s: float, calls: int) -> Progress:
        return Progress(elapsed_s=90.0, connected=0, calls=500, errors=0, protocol_errors=0,
                        window_s=window_s, window_calls=calls, window_latency=Histogram(),
                        transactions_started=25, transactions_stopped=25)

    assert "calls/s    100.0" in progress_line(progress(10.0, 1000))
    assert "calls/s        -" in progress_line(progress(0.02, 25))  # 25 stop calls in 20 ms: not 1,250/s
