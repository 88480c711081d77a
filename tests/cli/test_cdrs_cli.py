"""``csms cdrs export`` streams every record in range, across page boundaries, as CSV or JSON."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from csms.cli import main
from csms.store import schema as t
from csms.store.engine import Database

BASE = datetime(2026, 12, 1, tzinfo=UTC)


async def _fill(db_path: Path, count: int) -> None:
    db = await Database.open(str(db_path))
    try:
        rows = [
            {
                "station_id": f"CP{i % 50}",
                "tx_id": str(i),
                "site_id": "harbour" if i % 2 else None,
                "evse_id": 1,
                "connector_id": 1,
                "id_tag": 'TAG, "quoted"',
                "started_at": BASE + timedelta(minutes=i),
                "stopped_at": BASE + timedelta(minutes=i, seconds=30 + i % 7),
                "energy_wh": "1234.5",
                "duration_s": 30,
                "idle_s": 0,
                "tariff_id": "standard",
                "tariff_version": 1,
                "currency": "EUR",
                "excl_vat": "1.49",
                "vat": "0.28",
                "incl_vat": "1.77",
                "breakdown": "[]",
                "stop_reason": "Local",
                "signed_data": json.dumps([{"data": f'OCMF|{{"n":{i}}}|{{"SD":"00"}}', "encoding": "OCMF"}]),
                "flags": "",
                "created_at": BASE,
            }
            for i in range(count)
        ]
        async with db.write() as conn:
            await conn.execute(sa.insert(t.cdrs), rows)
    finally:
        await db.close()


def test_export_streams_every_record_in_range_as_csv_and_json(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    db = tmp_path / "csms.sqlite3"
    asyncio.run(_fill(db, 2500))
    until = (BASE + timedelta(minutes=2200)).isoformat()
    assert main(["cdrs", "--db", str(db), "export", "--from", BASE.isoformat(), "--to", until]) == 0
    text = capsysbinary.readouterr().out.decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert len(rows) == 2200 and len({r["id"] for r in rows}) == 2200
    assert [r["stopped_at"] for r in rows] == sorted(r["stopped_at"] for r in rows)
    assert rows[0]["id_tag"] == 'TAG, "quoted"' and json.loads(rows[7]["signed_meter_values"])[0]["data"] == (
        'OCMF|{"n":7}|{"SD":"00"}'
    )

    assert main(["cdrs", "--db", str(db), "export", "--format", "json", "--site", "harbour"]) == 0
    records = json.loads(capsysbinary.readouterr().out)
    assert len(records) == 1250 and {r["site_id"] for r in records} == {"harbour"}
    assert main(["cdrs", "--db", str(db), "export", "--from", "yesterday"]) == 2
