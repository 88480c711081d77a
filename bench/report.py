"""Plain-text tables for benchmark output."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def print_table(title: str, rows: Sequence[dict[str, Any]]) -> None:
    print(f"\n== {title}")
    if not rows:
        print("(no rows)")
        return
    cols: list[str] = []
    for row in rows:
        cols += [c for c in row if c not in cols]
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in cols}
    print("  ".join(c.rjust(widths[c]) for c in cols))
    for row in rows:
        print("  ".join(str(row.get(c, "")).rjust(widths[c]) for c in cols))
