"""The pure parts of a load-test verdict and report: thresholds, the bounded timeline, the
Prometheus buckets of a latency histogram and the HTML page."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from simulators.html_report import nice_ticks, render_html, svg_chart
from simulators.live_metrics import LATENCY_BUCKETS_S, FleetCollector
from simulators.metrics import TIMELINE_ROWS, Histogram, Progress, Recorder, coalesce_timeline
from simulators.report import build_report
from simulators.thresholds import ThresholdError, evaluate, parse_thresholds


def _report() -> dict[str, Any]:
    r = Recorder()
    r.connection_up()
    for ms in (5, 6, 7, 8, 9, 10, 11, 12, 13, 200):
        r.call_done("StartTransaction", ms / 1000)
    r.call_done("Heartbeat", 0.002)
    r.call_failed("Heartbeat", "timeout")
    r.error("call_error:NotSupported")
    r.connect_failures["refused"] += 3
    r.snapshot()
    now = datetime.now(UTC)
    return build_report(r, config={"chargers": 1, "protocol": "1.6", "csms_url": "ws://x", "scenario": "t"},
                        started_at=now, finished_at=now, duration_s=2.0).data


def test_conditions_parse_with_labels_spaces_and_every_operator() -> None:
    parsed = parse_thresholds(" p99_ms > 50 ,errors>=0, calls_per_s<1.5,p95_ms{action=StartTransaction}!=3,"
                              "errors{kind=call_error}==1,calls<=9")
    assert [t.text for t in parsed] == ["p99_ms>50", "errors>=0", "calls_per_s<1.5",
                                        "p95_ms{action=StartTransaction}!=3", "errors{kind=call_error}==1",
                                        "calls<=9"]


def test_the_verdict_reads_the_report_and_says_what_held() -> None:
    data = _report()
    by_action = data["calls"]["by_action"]
    verdicts = evaluate(parse_thresholds(
        "errors>1,connect_failures>2,p99_ms{action=StartTransaction}>100,p50_ms{action=Heartbeat}>1,"
        "errors{kind=call_error}>0,errors{action=Heartbeat}>1,p99_ms{action=Reset}>0,calls_per_s<5,"
        "peak_connected<1"), data)
    assert [(v.threshold.text, v.observed, v.failed) for v in verdicts] == [
        ("errors>1", 2.0, True), ("connect_failures>2", 3.0, True),
        ("p99_ms{action=StartTransaction}>100", by_action["StartTransaction"]["latency_ms"]["p99"], True),
        ("p50_ms{action=Heartbeat}>1", by_action["Heartbeat"]["latency_ms"]["p50"], True),
        ("errors{kind=call_error}>0", 1.0, True), ("errors{action=Heartbeat}>1", 1.0, False),
        ("p99_ms{action=Reset}>0", 0.0, False), ("calls_per_s<5", 6.0, False),
        ("peak_connected<1", 1.0, False),
    ]
    assert 190 < verdicts[2].observed < 210


@pytest.mark.parametrize(("text", "message"), [
    ("latency>5", "unknown metric 'latency'"),
    ("p99_ms", "expected METRIC OP NUMBER"),
    ("p99_ms>fast", "expected METRIC OP NUMBER"),
    ("p99_ms=>5", "expected METRIC OP NUMBER"),
    ("errors{station=A}>0", "errors takes labels action, kind"),
    ("errors{action=}>0", "empty action value"),
    ("p99_ms>1e999", "must be finite"),
    (",", "empty condition"),
])
def test_bad_conditions_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ThresholdError) as info:
        parse_thresholds(text)
    assert message in str(info.value)


def test_a_long_run_keeps_a_bounded_timeline_with_its_error_counts_and_rates() -> None:
    r = Recorder()
    for i in range(TIMELINE_ROWS * 3):
        r.call_done("Heartbeat", 0.001 * (1 + i % 7))
        if i % 10 == 0:
            r.error("timeout")
        r.snapshot()
    assert TIMELINE_ROWS // 2 <= len(r.timeline) <= TIMELINE_ROWS
    assert sum(row["errors_by_kind"].get("timeout", 0) for row in r.timeline) == TIMELINE_ROWS * 3 // 10
    assert r.timeline[-1]["errors"] == TIMELINE_ROWS * 3 // 10
    rows = [{"t_s": 1.0, "connected": 1, "calls_per_s": 10.0, "errors": 0, "window_s": 1.0, "p50_ms": 1.0,
             "p95_ms": 2.0, "p99_ms": 9.0, "errors_by_kind": {"timeout": 1}},
            {"t_s": 4.0, "connected": 3, "calls_per_s": 2.0, "errors": 2, "window_s": 3.0, "p50_ms": 3.0,
             "p95_ms": 1.0, "p99_ms": 4.0, "errors_by_kind": {"timeout": 1, "bad_frame": 1}}]
    (row,) = coalesce_timeline(rows)
    assert row == {"t_s": 4.0, "connected": 3, "calls_per_s": 4.0, "errors": 2, "window_s": 4.0,
                   "p50_ms": 3.0, "p95_ms": 2.0, "p99_ms": 9.0,
                   "errors_by_kind": {"timeout": 2, "bad_frame": 1}}


def test_latency_buckets_count_each_call_once_under_its_bound() -> None:
    h = Histogram()
    for seconds in (0.0004, 0.003, 0.003, 0.04, 0.9, 45.0):
        h.record(seconds)
    cumulative = dict(zip(LATENCY_BUCKETS_S, h.cumulative(LATENCY_BUCKETS_S), strict=True))
    assert cumulative[0.001] == 1 and cumulative[0.0025] == 1 and cumulative[0.005] == 3
    assert cumulative[0.05] == 4 and cumulative[1.0] == 5 and cumulative[30.0] == 5
    collector = FleetCollector()
    families = {f.name: f for f in collector.collect()}
    assert families["csms_sim_connected"].samples[0].value == 0


def test_the_page_has_a_chart_per_plot_with_a_point_per_interval_and_escapes_names() -> None:
    data = _report()
    data["config"]["scenario"] = "<script>alert(1)</script>"
    data["thresholds"] = [{"condition": "errors>1", "observed": 2.0, "failed": True}]
    page = render_html(data)
    assert "<script" not in page and "&lt;script&gt;" in page
    assert page.count('<svg xmlns="http://www.w3.org/2000/svg" class="chart"') == 4
    assert 'data-points="1"' in page and "FAILED: errors&gt;1" in page
    assert "http" not in re.sub(r'xmlns="http://www.w3.org/2000/svg"|ws://x', "", page)  # nothing external
    empty = svg_chart("Nothing", "", [], [])
    assert "no data" in empty
    assert nice_ticks(0)[0] == 0 and nice_ticks(0)[-1] == 1.0
    assert nice_ticks(47)[-1] >= 47 and len(nice_ticks(47)) <= 7


def test_live_totals_of_workers_add_up_for_the_metrics_endpoint() -> None:
    a, b = Recorder(), Recorder()
    a.connection_up()
    b.connection_up()
    a.call_done("Heartbeat", 0.002)
    b.call_done("Heartbeat", 0.004)
    b.call_failed("Authorize", "timeout")
    combined = Progress.combine([a.snapshot().export(), b.snapshot().export()])
    collector = FleetCollector()
    collector.update(combined)
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in collector.collect() for s in family.samples}
    assert samples[("csms_sim_connected", ())] == 2
    assert samples[("csms_sim_calls_total", (("action", "Heartbeat"),))] == 2
    assert samples[("csms_sim_call_errors_total", (("action", "Authorize"),))] == 1
    assert samples[("csms_sim_call_latency_seconds_bucket", (("action", "Heartbeat"), ("le", "0.005")))] == 2
    assert samples[("csms_sim_call_latency_seconds_bucket", (("action", "Heartbeat"), ("le", "0.0025")))] == 1
    assert samples[("csms_sim_errors_total", (("kind", "timeout"),))] == 1
