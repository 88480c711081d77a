"""Register the fleet's stations with our CSMS through its operator API before a run.

``PUT {api}/api/chargers/{id}`` with ``{"security_profile": N, "password": ...}`` per station,
concurrently but bounded (the CSMS hashes every password with a slow hash). Plain
``urllib`` in threads: the fleet needs no HTTP client library for a few hundred requests.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit


@dataclass(frozen=True, slots=True)
class Registration:
    """The outcome: how many stations were registered and why the others were not."""

    registered: int
    failed: dict[str, str] = field(default_factory=dict)  # station id -> error

    def summary(self) -> str:
        text = f"registered {self.registered} station{'s' if self.registered != 1 else ''}"
        if self.failed:
            first = next(iter(self.failed.items()))
            text += f", {len(self.failed)} failed (e.g. {first[0]}: {first[1]})"
        return text


async def register_stations(
    api_url: str, station_ids: Sequence[str], *, profile: int, password_for: Callable[[str], str | None],
    token: str | None = None, ca_file: str | None = None, concurrency: int = 8, timeout_s: float = 30.0,
) -> Registration:
    """Register every station; never raises for a refused station (see ``failed``)."""
    base = api_url.rstrip("/")
    if urlsplit(base).scheme not in ("http", "https"):
        raise ValueError(f"the API URL must be http:// or https://, got {api_url!r}")
    context = ssl.create_default_context(cafile=ca_file) if base.startswith("https") else None
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"

    def put(station_id: str) -> str | None:
        body: dict[str, object] = {"security_profile": profile}
        password = password_for(station_id)
        if password is not None:
            body["password"] = password
        request = urllib.request.Request(f"{base}/api/chargers/{quote(station_id, safe='')}",
                                         data=json.dumps(body).encode(), headers=headers, method="PUT")
        try:
            with urllib.request.urlopen(request, timeout=timeout_s, context=context) as response:
                response.read()
            return None
        except urllib.error.HTTPError as exc:
            return f"HTTP {exc.code}: {_error_text(exc.read())}"
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            return f"cannot reach the API at {base}: {reason}"

    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="csms-sim-register") as pool:
        errors = await asyncio.gather(*(loop.run_in_executor(pool, put, sid) for sid in station_ids))
    failed = {sid: err for sid, err in zip(station_ids, errors, strict=True) if err is not None}
    return Registration(len(station_ids) - len(failed), failed)


def _error_text(body: bytes) -> str:
    """The API's ``{error, detail}`` (or FastAPI's ``{detail}``) as one line."""
    try:
        data = json.loads(body)
    except ValueError:
        return body.decode(errors="replace")[:200]
    if isinstance(data, dict):
        detail = data.get("detail")
        if isinstance(detail, list):  # validation errors
            detail = "; ".join(str(d.get("msg", d)) if isinstance(d, dict) else str(d) for d in detail)
        error = data.get("error")
        return f"{error}: {detail}" if error else str(detail)
    return str(data)[:200]
