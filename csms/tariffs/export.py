"""CDR exports read page by page (a keyset cursor), so any number of records streams in bounded
memory: CSV (a header row, RFC 4180 quoting, CRLF line ends, UTF-8) or a JSON array."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from dataclasses import replace

from csms.store.tariffs import CdrQuery, SqlTariffs
from csms.tariffs.cdr import CSV_COLUMNS, Cdr, cdr_json, csv_row

CHUNK = 1000


async def cdr_pages(store: SqlTariffs, query: CdrQuery, chunk: int = CHUNK) -> AsyncIterator[list[Cdr]]:
    after = query.after
    while True:
        page = await store.list_cdrs(replace(query, after=after, limit=chunk))
        if page:
            yield page
        if len(page) < chunk:
            return
        last = page[-1]
        assert last.cdr_id is not None
        after = (last.stopped_at, last.cdr_id)


async def csv_chunks(store: SqlTariffs, query: CdrQuery) -> AsyncIterator[bytes]:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    yield buf.getvalue().encode("utf-8")
    async for page in cdr_pages(store, query):
        buf.seek(0)
        buf.truncate()
        writer.writerows(csv_row(c) for c in page)
        yield buf.getvalue().encode("utf-8")


async def json_chunks(store: SqlTariffs, query: CdrQuery) -> AsyncIterator[bytes]:
    yield b"["
    first = True
    async for page in cdr_pages(store, query):
        parts = [json.dumps(cdr_json(c), ensure_ascii=False) for c in page]
        yield (("" if first else ",") + ",\n".join(parts)).encode("utf-8")
        first = False
    yield b"]\n"
