"""Log uploads for the virtual charger: GetDiagnostics (1.6) and GetLog (1.6 security, 2.0.1).

The charger answers with a file name, reports ``Uploading``, writes a text log of a few KB
(its state and generated entries) and sends it to the location over HTTP(S) with httpx:
1.6 GetDiagnostics as a multipart/form-data POST (field ``file``), GetLog as a raw PUT. Then it
reports ``Uploaded``, or ``UploadFailed`` (1.6 diagnostics) / ``UploadFailure`` (GetLog) when the
upload did not succeed. ``LogUploader(fail_share=...)`` injects failures: that share of uploads
breaks off after half the body, as a dropped connection would.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import structlog

from ocppj.timestamps import format_datetime
from simulators.link import Served
from simulators.model import ChargerOps

log = structlog.get_logger("simulators")

_LEVELS = ("INFO", "INFO", "INFO", "DEBUG", "WARN")
_TOPICS = ("ocpp", "meter", "rcd", "contactor", "network", "thermal")


@dataclass(frozen=True, slots=True)
class SentFile:
    """One upload attempt: where, how, the file's bytes, and whether the server took it."""

    url: str
    method: str  # POST (multipart) or PUT (raw)
    name: str
    body: bytes
    ok: bool
    http_status: int | None = None


def log_file(c: ChargerOps, name: str, *, lines: int = 120) -> bytes:
    """A text log of the charger: a header, each EVSE's state, and ``lines`` generated entries."""
    now = c.clock.stamp()
    rng = random.Random(f"{c.spec.station_id}:{name}:{now.isoformat()}")
    out = [f"# {name}: {c.spec.vendor} {c.spec.model} {c.spec.station_id} firmware {c.spec.firmware_version}",
           f"# written {format_datetime(now)}"]
    for evse in c.evses.values():
        tx = evse.tx.local_id if evse.tx is not None else "-"
        out.append(f"{format_datetime(now)} INFO evse {evse.id}: status={evse.status.value} tx={tx}")
    for i in range(lines):
        level, topic = rng.choice(_LEVELS), rng.choice(_TOPICS)
        out.append(f"{format_datetime(now)} {level} {topic}[{i}]: value={rng.uniform(0, 1000):.3f} "
                   f"code=0x{rng.getrandbits(16):04x}")
    return ("\n".join(out) + "\n").encode()


class LogUploader:
    """A charger's uploads in flight, and every file it sent (``sent``)."""

    def __init__(self, *, fail_share: float = 0.0, seed: int = 0, timeout_s: float = 30.0) -> None:
        self.fail_share = fail_share
        self.timeout_s = timeout_s
        self.sent: list[SentFile] = []
        self._rng = random.Random(seed)
        self._tasks: set[asyncio.Task[bool]] = set()

    def start(
        self, url: str, name: str, body: bytes, *, multipart: bool, report: Callable[[str], None],
        failed: str,
    ) -> None:
        """Report ``Uploading`` and upload in the background; report the outcome when done."""
        report("Uploading")
        fail = self._rng.random() < self.fail_share
        task = asyncio.get_running_loop().create_task(self._upload(url, name, body, multipart, fail))

        def done(t: asyncio.Task[bool]) -> None:
            self._tasks.discard(t)
            if not t.cancelled():
                report("Uploaded" if t.exception() is None and t.result() else failed)

        self._tasks.add(task)
        task.add_done_callback(done)

    async def _upload(self, url: str, name: str, body: bytes, multipart: bool, fail: bool) -> bool:
        """Send one file; whether the server took it (every attempt lands in ``sent``)."""
        method = "POST" if multipart else "PUT"
        if not url.startswith(("http://", "https://")):
            self.sent.append(SentFile(url, method, name, body, ok=False))
            return False
        if multipart:
            envelope = httpx.Request("POST", url, files={"file": (name, body, "text/plain")})
            wire, headers = envelope.read(), {"Content-Type": envelope.headers["Content-Type"]}
        else:
            wire, headers = body, {"Content-Type": "text/plain"}
        headers["Content-Length"] = str(len(wire))
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                response = await client.request(method, url, content=_stream(wire, fail), headers=headers)
        except (httpx.HTTPError, _BrokeOff) as exc:
            log.info("log upload failed", url=url.split("/uploads/")[0], error=type(exc).__name__)
            self.sent.append(SentFile(url, method, name, body, ok=False))
            return False
        self.sent.append(SentFile(url, method, name, body, ok=response.is_success,
                                  http_status=response.status_code))
        return response.is_success

    async def aclose(self) -> None:
        """Cancel the uploads in flight (the charger stops)."""
        for task in list(self._tasks):
            task.cancel()
        with contextlib.suppress(BaseException):
            await asyncio.gather(*self._tasks, return_exceptions=True)


class _BrokeOff(Exception):
    """The injected failure: the connection drops in the middle of the body."""


async def _stream(wire: bytes, fail: bool) -> AsyncIterator[bytes]:
    half = len(wire) // 2
    yield wire[:half]
    if fail:
        await asyncio.sleep(0.05)  # the first half is on its way
        raise _BrokeOff("connection dropped")
    yield wire[half:]


# --- the handlers ------------------------------------------------------------------------------


def get_diagnostics(c: ChargerOps, p: dict[str, Any]) -> Served:
    """1.6 GetDiagnostics: ``fileName``, then DiagnosticsStatusNotification as the upload goes."""
    name = f"{c.spec.station_id}-diagnostics.log"

    def report(status: str) -> None:
        c.enqueue("DiagnosticsStatusNotification", lambda: {"status": status})

    def follow() -> None:
        c.uploads.start(p["location"], name, log_file(c, name), multipart=True, report=report,
                        failed="UploadFailed")

    return Served({"fileName": name}, follow)


def get_log(c: ChargerOps, p: dict[str, Any]) -> Served:
    """GetLog (1.6 security extension and 2.0.1 alike): Accepted with ``filename``, then
    LogStatusNotification with the request id as the upload goes."""
    request_id = p["requestId"]
    name = f"{c.spec.station_id}-{p['logType']}-{request_id}.log"

    def report(status: str) -> None:
        c.enqueue("LogStatusNotification", lambda: {"status": status, "requestId": request_id})

    def follow() -> None:
        c.uploads.start(p["log"]["remoteLocation"], name, log_file(c, name), multipart=False, report=report,
                        failed="UploadFailure")

    return Served({"status": "Accepted", "filename": name}, follow)
