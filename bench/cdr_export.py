"""CDR export: records per second and the exporting process's peak memory, by record count.

Fills a fresh SQLite database with N charge detail records (each with a cost breakdown and an
OCMF signed meter value, about 1 KiB of CSV), then runs ``csms cdrs export`` in a child process
and reads its peak RSS: a streamed export's memory stays flat as N grows.

    python -m bench.cdr_export                        # 10,000 and 100,000 records, CSV and JSON
    python -m bench.cdr_export --counts 1000 --formats csv
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.report import print_table

BASE = datetime(2026, 11, 1, tzinfo=UTC)
LINES = json.dumps(
    [
        {
            "dimension": "ENERGY",
            "element": 0,
            "quantity": "12.345",
            "unit_price": "0.40",
            "amount": "4.938",
            "vat_percent": "19",
        },
        {
            "dimension": "FLAT",
            "element": 0,
            "quantity": "1",
            "unit_price": "1.00",
            "amount": "1.00",
            "vat_percent": "19",
        },
    ]
)


def _signed(i: int) -> str:
    reading = f'{{"FV":"1.0","GI":"SIM","PG":"T{i}","RD":[{{"RV":{i % 97}.5,"RU":"kWh"}}]}}'
    payload = f'OCMF|{reading}|{{"SD":"{i:064x}"}}'
    return json.dumps(
        [
            {
                "at": "2026-11-01T10:00:00Z",
                "context": "Transaction.End",
                "encoding": "OCMF",
                "signing_method": "ECDSA-secp256r1-SHA256",
                "public_key": "04" + "ab" * 32,
                "data": payload,
            }
        ]
    )


async def fill(db_path: Path, count: int) -> None:
    from csms.store import schema as t
    from csms.store.engine import Database

    db = await Database.open(str(db_path), synchronous="NORMAL")
    try:
        for start in range(0, count, 5000):
            rows: list[dict[str, Any]] = [
                {
                    "station_id": f"CP{i % 5000:05d}",
                    "tx_id": str(i),
                    "site_id": f"site-{i % 40}",
                    "evse_id": 1,
                    "connector_id": 1,
                    "id_tag": f"RFID-{i % 20000:06d}",
                    "started_at": BASE + timedelta(seconds=20 * i),
                    "stopped_at": BASE + timedelta(seconds=20 * i + 3600),
                    "energy_wh": "12345",
                    "duration_s": 3600,
                    "idle_s": 300,
                    "tariff_id": "standard",
                    "tariff_version": 1,
                    "currency": "EUR",
                    "excl_vat": "5.94",
                    "vat": "1.13",
                    "incl_vat": "7.07",
                    "breakdown": LINES,
                    "stop_reason": "EVDisconnected",
                    "signed_data": _signed(i),
                    "flags": "",
                    "created_at": BASE,
                }
                for i in range(start, min(count, start + 5000))
            ]
            async with db.write() as conn:
                await conn.execute(sa.insert(t.cdrs), rows)
    finally:
        await db.close()


def export(db_path: Path, fmt: str) -> dict[str, Any]:
    """Run the export in a child process; its wall time, output size and peak RSS."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    out = db_path.with_suffix(f".{fmt}")
    started = time.perf_counter()
    with out.open("wb") as sink:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "csms",
                "cdrs",
                "--db",
                str(db_path),
                "--log-level",
                "warning",
                "export",
                "--format",
                fmt,
            ],
            stdout=sink,
            check=True,
            timeout=900,
        )
    wall = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux; the largest child so far
    return {
        "wall_s": round(wall, 2),
        "bytes": out.stat().st_size,
        "peak_rss_mib": round(peak / 1024, 1),
        "peak_grew": peak > before,
    }


def run(counts: list[int], formats: list[str]) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="cdr-export-") as tmp:
        for n in sorted(counts):  # ascending: ru_maxrss of children only grows
            db_path = Path(tmp) / f"cdrs-{n}.sqlite3"
            asyncio.run(fill(db_path, n))
            for fmt in formats:
                r = export(db_path, fmt)
                rows.append(
                    {
                        "records": n,
                        "format": fmt,
                        "wall_s": r["wall_s"],
                        "records_per_s": round(n / r["wall_s"]),
                        "mib_out": round(r["bytes"] / 2**20, 1),
                        "peak_rss_mib": r["peak_rss_mib"] if r["peak_grew"] else f"<= {r['peak_rss_mib']}",
                    }
                )
                Path(db_path.with_suffix(f".{fmt}")).unlink()
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--counts", type=int, nargs="+", default=[10_000, 100_000])
    p.add_argument("--formats", nargs="+", choices=["csv", "json"], default=["csv", "json"])
    args = p.parse_args(argv)
    os.environ.setdefault("CSMS_LOG_LEVEL", "warning")
    print_table("CDR export (csms cdrs export, child process peak RSS)", run(args.counts, args.formats))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
