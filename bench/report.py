"""Plain-text tables for benchmark output."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def _cell(value: Any) -> str:
    if isinstance(value, float) and value.is_integer() and abs(value) >= 1000:
        return f"{int(value):,}"
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10000:
        return f"{value:,}"
    return "" if value is None else str(value)


def print_table(title: str, rows: Sequence[dict[str, Any]]) -> None:
    """Columns are the union of the rows' keys; numbers right-aligned, text left-aligned."""
    print(f"\n== {title}")
    if not rows:
        print("(no rows)")
        return
    cols: list[str] = []
    for row in rows:
        cols += [c for c in row if c not in cols]
    numeric = {
        c: all(isinstance(r.get(c), int | float) for r in rows if r.get(c) not in ("", None)) for c in cols
    }
    widths = {c: max(len(c), *(len(_cell(r.get(c))) for r in rows)) for c in cols}

    def fmt(c: str, text: str) -> str:
        return text.rjust(widths[c]) if numeric[c] else text.ljust(widths[c])

    print("  ".join(fmt(c, c) for c in cols).rstrip())
    for row in rows:
        print("  ".join(fmt(c, _cell(row.get(c))) for c in cols).rstrip())
