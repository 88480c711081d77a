"""CSMS-initiated calls queued on one station: one is outstanding at a time, and each call's timeout
covers the station's answer to it, not the wait for the calls ahead. Real CSMS, real WebSocket station."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
import pytest
import websockets
from websockets.typing import Subprotocol

from csms.app import CsmsApp, running
from csms.errors import CallQueueTimeout, CallTimeout
from csms.ocpp.session import StationSession
from tests.conftest import make_settings
from tests.simulators.sim_support import wait_until


class SlowStation:
    """A 1.6 station over a real socket that answers every CALL ``delay_s`` after it came (never, when
    ``delay_s`` is None), one at a time, and records when each came and was answered."""

    def __init__(self, delay_s: float | None) -> None:
        self.delay_s = delay_s
        self.calls: list[tuple[str, float, float | None]] = []  # (action, came, answered)

    async def serve(self, ws: websockets.ClientConnection) -> None:
        async for raw in ws:
            frame = orjson.loads(raw)
            if frame[0] != 2:
                continue
            came = time.monotonic()
            if self.delay_s is None:
                self.calls.append((frame[2], came, None))
                continue
            await asyncio.sleep(self.delay_s)
            await ws.send(orjson.dumps([3, frame[1], {"status": "Accepted"}]).decode())
            self.calls.append((frame[2], came, time.monotonic()))


@contextlib.asynccontextmanager
async def station_on(app: CsmsApp, station: SlowStation, sid: str) -> AsyncIterator[StationSession]:
    async with websockets.connect(f"{app.ocpp_url}/{sid}", subprotocols=[Subprotocol("ocpp1.6")]) as ws:
        task = asyncio.create_task(station.serve(ws))
        try:
            yield await wait_until(lambda: app.registry.get(sid), what="the station's session")
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[CsmsApp]:
    async with running(make_settings(tmp_path, call_timeout_s=0.5)) as app:
        yield app


async def test_calls_queued_behind_others_time_out_on_the_answer_only(app: CsmsApp) -> None:
    station = SlowStation(delay_s=0.3)
    async with station_on(app, station, "SLOW1"):
        calls = [app.control.call("SLOW1", "Reset", {"type": "Soft"}) for _ in range(4)]
        answers = await asyncio.gather(*calls, return_exceptions=True)
    assert answers == [{"status": "Accepted"}] * 4  # the last waited ~0.9 s for its turn
    assert len(station.calls) == 4
    for (_, _, answered), (_, came, _) in zip(station.calls, station.calls[1:], strict=False):
        assert answered is not None and came >= answered  # one outstanding call at a time


async def test_each_queued_call_that_gets_no_answer_is_sent_and_times_out_on_its_own(app: CsmsApp) -> None:
    station = SlowStation(delay_s=None)
    async with station_on(app, station, "MUTE1"):
        calls = [app.control.call("MUTE1", "Reset", {"type": "Soft"}, timeout=0.2) for _ in range(3)]
        answers = await asyncio.gather(*calls, return_exceptions=True)
        await wait_until(lambda: len(station.calls) == 3, what="the third call")
    assert all(type(a) is CallTimeout for a in answers), answers
    came = [c[1] for c in station.calls]
    assert came[2] - came[0] >= 0.35  # each went out when the one before it had timed out


async def test_a_call_whose_turn_never_comes_fails_without_being_sent(app: CsmsApp) -> None:
    station = SlowStation(delay_s=0.0)
    async with station_on(app, station, "STUCK1") as session:
        # a call ahead that overruns every bound (what a stalled event loop would look like)
        await session._call_lock.acquire()
        try:
            started = time.monotonic()
            with pytest.raises(CallQueueTimeout, match="nothing was sent"):
                await app.control.call("STUCK1", "Reset", {"type": "Soft"}, timeout=0.3)
            assert time.monotonic() - started >= 0.3
        finally:
            session._call_lock.release()
        assert station.calls == []
        assert await app.control.call("STUCK1", "Reset", {"type": "Soft"}) == {"status": "Accepted"}
