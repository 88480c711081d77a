"""The audit log: who told the CSMS to do what, to which target, with what outcome.

An ``AuditEntry`` names the actor (``token:operator``, ``console:operator``, ``cli:<user>``,
``local`` when the API needs no token), the command, its target, the sha256 of its canonical
JSON parameters (never the parameters themselves: they may hold secrets) and the result
(``ok`` or the API error code). ``AuditLog`` is the port the store implements.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One recorded operator command (``id`` is None until stored)."""

    at: datetime
    actor: str
    action: str
    target: str
    digest: str
    result: str
    id: int | None = None


@runtime_checkable
class AuditLog(Protocol):
    async def record_audit(self, entry: AuditEntry) -> int: ...

    async def list_audit(self, *, limit: int, before_id: int | None = None) -> Sequence[AuditEntry]: ...


def digest(params: Mapping[str, Any] | bytes | None) -> str:
    """sha256 (hex) of the parameters as canonical JSON (sorted keys, no spaces); of b"" for None.

    Raw bytes that are JSON are canonicalised first, so the same command gives the same digest.
    """
    if params is None:
        return hashlib.sha256(b"").hexdigest()
    if isinstance(params, bytes):
        try:
            value: Any = json.loads(params) if params else None
        except (ValueError, RecursionError):
            return hashlib.sha256(params).hexdigest()
    else:
        value = params
    canonical = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()
