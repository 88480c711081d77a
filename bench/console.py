"""The console at fleet scale: 5,000 stations and 100,000 sessions in the store.

    python -m bench.console                          # 5,000 stations, 100,000 sessions
    python -m bench.console --stations 500 --sessions=10000 --requests 20

Fills a SQLite store in bulk (``fill_store`` of the console tests), starts the CSMS on it and
measures, over loopback:

* the paged API routes the console calls (``/api/chargers`` and ``/api/transactions``, first
  page, a filtered page, a page deep in the list): p50 / p95 latency of ``--requests`` calls each;
  the unpaged ``/api/chargers`` (every station) and ``/healthz`` for comparison. Each call opens
  its own connection: on a reused HTTP/1.1 connection the API server adds a ~40 ms stall to small
  responses (delayed ACK; ``/healthz`` shows it too), which would hide the routes' own cost;
* in headless Chromium, the first render of the stations and sessions pages: from navigation
  to the first page of rows in the table (median of ``--loads`` loads).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Page, async_playwright

from bench.report import print_table
from csms.app import running
from csms.config import load_settings
from csms.logging import configure_logging

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "api" / "console"))
from console_kit import CHROMIUM, CHROMIUM_ARGS, SEED_START, fill_store


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def _latency(
    api: httpx.AsyncClient, name: str, path: str, params: dict[str, Any], n: int
) -> dict[str, Any]:
    samples: list[float] = []
    rows = 0
    for _ in range(n):
        t0 = time.perf_counter()
        r = await api.get(path, params=params)
        samples.append((time.perf_counter() - t0) * 1000)
        r.raise_for_status()
        rows = len(r.json())
    return {"what": name, "rows": rows, "p50_ms": round(_pct(samples, 0.5), 1),
            "p95_ms": round(_pct(samples, 0.95), 1)}


async def _deep_cursor(api: httpx.AsyncClient, pages: int) -> str:
    """The cursor of the sessions page ``pages`` pages in (50 each)."""
    params: dict[str, Any] = {"sort": "started_at:desc", "limit": 50}
    for _ in range(pages):
        params["cursor"] = (await api.get("/api/transactions", params=params)).headers["X-Next-Cursor"]
    return str(params["cursor"])


async def _render(page: Page, url: str, rows: str, n: int) -> float:
    times: list[float] = []
    for _ in range(n):
        await page.goto("about:blank")
        t0 = time.perf_counter()
        await page.goto(url)
        await page.locator(rows).nth(49).wait_for(timeout=30_000)
        times.append((time.perf_counter() - t0) * 1000)
    return round(statistics.median(times), 1)


async def run(stations: int, sessions: int, requests: int, loads: int) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "csms.sqlite3"
        t0 = time.perf_counter()
        await fill_store(db, stations=stations, sessions=sessions)
        print(f"filled {stations} stations and {sessions} sessions in {time.perf_counter() - t0:.1f} s")
        settings = load_settings(
            None, {"db": str(db), "ocpp_port": 0, "api_port": 0, "db_synchronous": "NORMAL"}, environ={}
        )
        fresh = httpx.Limits(max_keepalive_connections=0)  # see the module docstring
        async with (
            running(settings) as app,
            httpx.AsyncClient(base_url=app.api_url, timeout=60, limits=fresh) as api,
        ):
            day = SEED_START + timedelta(days=100)
            window = {"from": day.isoformat(), "to": (day + timedelta(days=1)).isoformat()}
            deep = await _deep_cursor(api, 20)
            rows = [
                await _latency(api, "/healthz (reference)", "/healthz", {}, requests),
                await _latency(api, "stations, first page", "/api/chargers", {"limit": 50}, requests),
                await _latency(api, "stations, q + sort last_seen:desc", "/api/chargers",
                               {"limit": 50, "q": "volta", "sort": "last_seen:desc"}, requests),
                await _latency(api, "stations, status=offline, page 40", "/api/chargers",
                               {"limit": 50, "status": "offline", "offset": 2000}, requests),
                await _latency(api, "stations, unpaged (all)", "/api/chargers", {}, max(3, requests // 10)),
                await _latency(api, "sessions, first page", "/api/transactions",
                               {"sort": "started_at:desc", "limit": 50}, requests),
                await _latency(api, "sessions, completed, one day", "/api/transactions",
                               {"sort": "started_at:desc", "limit": 50, "active": "false", **window},
                               requests),
                await _latency(api, "sessions, page 21 (cursor)", "/api/transactions",
                               {"sort": "started_at:desc", "limit": 50, "cursor": deep}, requests),
                await _latency(api, "sessions of one station", "/api/transactions",
                               {"charger_id": "CP00042", "sort": "started_at:desc", "limit": 20}, requests),
            ]
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                try:
                    context = await browser.new_context(viewport={"width": 1360, "height": 900})
                    page = await context.new_page()
                    for what, url, sel in (
                        ("stations page, first render", "/#/stations", "main table tbody tr[data-station]"),
                        ("sessions page, first render", "/#/sessions",
                         "section[aria-labelledby=h-past] tbody tr[data-tx]"),
                    ):
                        rows.append({"what": what, "rows": 50,
                                     "render_ms": await _render(page, app.api_url + url, sel, loads)})
                finally:
                    await browser.close()
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.console", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stations", type=int, default=5000)
    parser.add_argument("--sessions", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=50, help="calls per API route")
    parser.add_argument("--loads", type=int, default=5, help="page loads per console page")
    args = parser.parse_args(argv)
    configure_logging("console", "error")
    rows = asyncio.run(run(args.stations, args.sessions, args.requests, args.loads))
    print_table(f"console at {args.stations} stations, {args.sessions} sessions", rows)


if __name__ == "__main__":
    main()
