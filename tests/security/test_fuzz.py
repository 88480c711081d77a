"""Schema-driven fuzzing of every charger->CSMS action of both versions against the live
server, with 50 normal charging sessions alongside.

Valid payloads come from the official JSON schemas (hypothesis-jsonschema); mutated ones
drop required keys, add unknown keys, swap values for arbitrary JSON (huge integers, NaN,
deep lists) or replace the payload. Every CALL must get exactly one answer with its own id
(also when the JSON parser refuses the frame: its head names the id), none an InternalError;
afterwards the fleet must have every confirmed transaction exactly once, and the server's
background tasks must be alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import threading
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.sync.client import ClientConnection, connect
from websockets.typing import Subprotocol

from csms.app import CsmsApp
from csms.ocpp.v16.handlers import HANDLERS as V16_HANDLERS
from csms.ocpp.v201.handlers import HANDLERS as V201_HANDLERS
from tests.conftest import make_settings
from tests.schema_payloads import valid_requests
from tests.security.fleet import FleetReport, run_fleet

# The last test checks what every fuzz test of this module did to one live server (a module
# fixture), so under pytest-xdist the whole module runs in one worker (``--dist=loadgroup``).
pytestmark = pytest.mark.xdist_group("fuzz-live-server")

EXAMPLES_PER_ACTION = 10
FLEET_SIZE = 50
ACTIONS = {
    "ocpp1.6": sorted({*V16_HANDLERS, "SignCertificate"}),
    "ocpp2.0.1": sorted({*V201_HANDLERS, "SignCertificate", "Get15118EVCertificate", "GetCertificateStatus"}),
}


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
HOSTILE = st.sampled_from([2**64, -(2**63) - 1, 10**30, float("nan"), float("inf"), 1e308, -0.0, "",
                           "x" * 6000, [[[[[[[[[[[[]]]]]]]]]]]], {"": None}])


@st.composite
def payloads(draw: st.DrawFn, version: str, action: str) -> tuple[str, Any]:
    """('valid' or the mutation, payload)."""
    valid = draw(valid_requests(version, action))
    mutation = draw(st.sampled_from(["valid", "valid", "drop", "extra", "swap", "hostile", "replace"]))
    if mutation == "valid" or not isinstance(valid, dict):
        return "valid", valid
    out = dict(valid)
    keys = sorted(out)
    if mutation == "drop" and keys:
        out.pop(draw(st.sampled_from(keys)))
    elif mutation == "extra":
        out[draw(st.text(min_size=1, max_size=12))] = draw(JSON)
    elif mutation in ("swap", "hostile") and keys:
        out[draw(st.sampled_from(keys))] = draw(JSON if mutation == "swap" else HOSTILE)
    elif mutation == "replace":
        return mutation, draw(JSON)
    return mutation, out


@dataclass
class Live:
    app: CsmsApp
    loop: asyncio.AbstractEventLoop
    fleet: Future[None]
    stop: asyncio.Event
    report: FleetReport
    sockets: dict[str, ClientConnection] = field(default_factory=dict)
    stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    answers: list[tuple[str, str, str, Any]] = field(default_factory=list)  # version, action, kind, reply


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """The CSMS and the fleet on their own event loop thread; the fuzzer talks to it synchronously.

    WebSocket pings are off on both sides: websockets draws ping payloads from the global
    ``random``, and hypothesis rejects draws during which another thread moved that state.
    """
    tmp = tmp_path_factory.mktemp("fuzz")
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="csms-under-fuzz", daemon=True)
    thread.start()
    app = CsmsApp(make_settings(tmp, accept_unknown_tags=True, call_timeout_s=5, ping_interval_s=0))
    asyncio.run_coroutine_threadsafe(app.start(), loop).result(30)
    stop = asyncio.Event()
    report = FleetReport()
    fleet = asyncio.run_coroutine_threadsafe(run_fleet(app.ocpp_url, FLEET_SIZE, report, stop), loop)
    live = Live(app, loop, fleet, stop, report)
    try:
        yield live
    finally:
        live.stack.close()
        loop.call_soon_threadsafe(stop.set)
        try:
            fleet.result(60)
        finally:
            asyncio.run_coroutine_threadsafe(app.stop(), loop).result(30)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            loop.close()


_uids = itertools.count(1)


def _exchange(live: Live, version: str, action: str, payload: Any) -> None:
    ws = live.sockets.get(version)
    if ws is None:
        ws = live.stack.enter_context(connect(
            f"{live.app.ocpp_url}/FUZZ-{version}", subprotocols=[Subprotocol(version)], open_timeout=10,
            max_size=None, ping_interval=None))
        live.sockets[version] = ws
    uid = f"f{next(_uids)}"
    frame = json.dumps([2, uid, action, payload])  # stdlib: emits NaN, Infinity and 2**64 as they are
    expected = uid  # answered with the CALL's id even when the JSON parser refuses the frame
    ws.send(frame)
    while True:
        reply = orjson.loads(ws.recv(timeout=10))
        if reply[0] == 2:  # a CSMS CALL (e.g. after an accepted SignCertificate): ignore it
            continue
        break
    assert reply[0] in (3, 4) and reply[1] == expected, (action, frame[:200], reply)
    kind = "result" if reply[0] == 3 else reply[2]
    live.answers.append((version, action, kind, reply))
    assert kind != "InternalError", (action, frame[:500], reply)


FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES_PER_ACTION, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)


@pytest.mark.parametrize("action", ACTIONS["ocpp1.6"])
@FUZZ_SETTINGS
@given(data=st.data())
def test_fuzz_v16_every_call_gets_one_answer(live: Live, action: str, data: st.DataObject) -> None:
    _mutation, payload = data.draw(payloads("ocpp1.6", action))
    _exchange(live, "ocpp1.6", action, payload)


@pytest.mark.parametrize("action", ACTIONS["ocpp2.0.1"])
@FUZZ_SETTINGS
@given(data=st.data())
def test_fuzz_v201_every_call_gets_one_answer(live: Live, action: str, data: st.DataObject) -> None:
    _mutation, payload = data.draw(payloads("ocpp2.0.1", action))
    _exchange(live, "ocpp2.0.1", action, payload)


def test_fleet_beside_the_fuzzer_lost_and_duplicated_nothing(live: Live) -> None:
    assert len(live.answers) >= EXAMPLES_PER_ACTION * 10, "the fuzzer ran"
    assert {a for _v, a, _k, _r in live.answers} >= set(ACTIONS["ocpp1.6"]) | set(ACTIONS["ocpp2.0.1"])
    live.loop.call_soon_threadsafe(live.stop.set)
    live.fleet.result(120)
    report = live.report
    assert report.failures == []
    assert len(report.confirmed) == FLEET_SIZE
    app = live.app
    assert app.store is not None

    async def stored() -> dict[str, list[Any]]:
        assert app.store is not None
        store = app.store
        return {sid: await store.list_transactions(station_id=sid, limit=1000) for sid in report.confirmed}

    rows = asyncio.run_coroutine_threadsafe(stored(), live.loop).result(30)
    for sid, confirmed in report.confirmed.items():
        assert len(confirmed) >= 2, sid
        got = sorted((tx.tx_id, tx.meter_stop_wh) for tx in rows[sid])
        assert got == sorted(confirmed), sid  # each confirmed once, nothing else
        assert all(tx.stopped_at is not None and "unknown_transaction" not in tx.flags for tx in rows[sid])
    flush = next(t for t in app._tasks if t.get_name() == "store-flush")
    assert not flush.done()
    assert {s.station_id for s in app.registry} >= {"FUZZ-ocpp1.6", "FUZZ-ocpp2.0.1"}
