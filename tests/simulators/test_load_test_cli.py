"""``csms-sim run`` as a load-testing tool against the real CSMS: thresholds set the exit code,
the HTML report renders its plots in a browser, live metrics are served while it runs."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import async_playwright
from sim_support import register_tags

from csms.app import CsmsApp
from simulators.cli import main
from simulators.scenario import load_scenario

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def _cli(*args: str) -> AsyncIterator[asyncio.subprocess.Process]:
    """``csms-sim run ARGS`` in a child process, killed on every exit path."""
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "simulators", "run", *args,
                                                stderr=asyncio.subprocess.PIPE)
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def _run_args(csms: CsmsApp, *extra: str) -> list[str]:
    return ["--csms", csms.ocpp_url, "--scenario", "smoke", "--chargers", "2", "--duration", "4",
            "--progress-interval", "0.5", *extra]


async def test_thresholds_pass_and_the_html_report_and_live_metrics_show_the_run(
    csms: CsmsApp, api: httpx.AsyncClient, tmp_path: Path
) -> None:
    await register_tags(api, list(load_scenario("smoke").id_tags))
    out = tmp_path / "run.html"
    port = _free_port()
    conditions = "p99_ms>60000,errors>0,connect_failures>0,p99_ms{action=StartTransaction}>60000"
    async with _cli(*_run_args(csms, "--fail-on", conditions, "--report", str(out),
                               "--metrics-port", str(port))) as proc:
        scraped = ""
        async with httpx.AsyncClient() as client:
            for _ in range(100):
                await asyncio.sleep(0.1)
                with contextlib.suppress(httpx.HTTPError):
                    scraped = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
                booted = 'csms_sim_calls_total{action="BootNotification"}' in scraped
                if booted and "csms_sim_connected 2" in scraped:
                    break
        _, stderr = await asyncio.wait_for(proc.communicate(), 60)
    text = stderr.decode()
    assert proc.returncode == 0, text
    assert 'csms_sim_call_latency_seconds_bucket{action="BootNotification",le="+Inf"}' in scraped, scraped
    assert "csms_sim_connected 2.0" in scraped, scraped
    assert "thresholds   4 passed, 0 failed" in text
    data = json.loads(out.with_suffix(".json").read_text())
    assert [v["failed"] for v in data["thresholds"]] == [False] * 4
    assert data["thresholds"][0]["observed"] == data["latency_ms"]["p99"] > 0
    assert len(data["timeline"]) >= 4 and all("p95_ms" in row for row in data["timeline"])

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page(viewport={"width": 1360, "height": 1000})
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            await page.goto(out.as_uri())
            charts = await page.eval_on_selector_all("svg.chart", """svgs => svgs.map(s => ({
                label: s.getAttribute('aria-label'),
                lines: [...s.querySelectorAll('polyline')].map(p => p.points.numberOfItems),
                height: s.getBoundingClientRect().height}))""")
            verdict = await page.inner_text(".verdict")
            actions = await page.eval_on_selector_all("table.actions tbody tr td:first-child",
                                                      "tds => tds.map(td => td.textContent)")
        finally:
            await browser.close()
    assert [c["label"] for c in charts] == ["Connected chargers", "Calls per second", "Latency per interval",
                                            "Errors per interval by kind"]
    assert all(c["height"] > 100 for c in charts)
    points = len(data["timeline"])
    assert [c["lines"] for c in charts] == [[points], [points], [points] * 3, [points]]
    assert verdict == "All thresholds passed"
    assert {"BootNotification", "StatusNotification"} <= set(actions)
    assert requests == [out.as_uri()]  # self-contained: nothing else is fetched


async def test_a_failed_threshold_exits_4_and_names_the_condition_and_the_observed_value(
    csms: CsmsApp, api: httpx.AsyncClient, tmp_path: Path
) -> None:
    await register_tags(api, list(load_scenario("smoke").id_tags))
    out = tmp_path / "run.json"
    async with _cli(*_run_args(csms, "--fail-on", "errors>1000,p50_ms>0,calls{action=BootNotification}<100",
                               "--report", str(out), "--quiet")) as proc:
        _, stderr = await asyncio.wait_for(proc.communicate(), 60)
    text = stderr.decode()
    assert proc.returncode == 4, text
    assert "thresholds failed: p50_ms>0, calls{action=BootNotification}<100" in text
    assert "FAILED  calls{action=BootNotification}<100  (observed 2)" in text
    data = json.loads(out.read_text())
    assert [(v["condition"], v["failed"]) for v in data["thresholds"]] == [
        ("errors>1000", False), ("p50_ms>0", True), ("calls{action=BootNotification}<100", True)]
    assert not out.with_suffix(".html").exists()


@pytest.mark.parametrize(("conditions", "message"), [
    ("p99>50", "unknown metric 'p99'"),
    ("p99_ms>>50", "cannot read 'p99_ms>>50'"),
    ("p99_ms>50,", "empty condition"),
    ("connect_failures{action=Heartbeat}>0", "connect_failures takes no label"),
])
def test_a_bad_fail_on_is_a_usage_error(
    conditions: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--csms", "ws://127.0.0.1:9/ocpp", "--fail-on", conditions])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
