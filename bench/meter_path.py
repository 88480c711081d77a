"""CPU of the core's meter path for one 1.6 MeterValues (8 sampled values, one transaction), in
one process: ``to_samples`` + ``ChargingService.meter``, with the parts that read samples.

* ``no readers`` — nobody subscribes to ``MeterSampled`` and no register feed is attached;
* ``tariffs`` — the tariffs part attached as its plugin does it: each transaction's register is
  queued on the core's ``RegisterFeed`` and handed to ``TariffService.take`` in batches;
* ``one MeterSampled subscriber`` — a bus subscriber that does nothing: the price of building
  and dispatching one event per sample (what any part subscribing to ``MeterSampled`` adds).

Each variant runs ``--rounds`` rounds of ``--calls`` calls and prints the best round's CPU per
call (process time, so other load on the machine moves it less than wall time).

    python -m bench.meter_path [--calls 100000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable
from typing import Any, cast

from bench.loadgen import _values16
from csms.bus import Bus
from csms.core.events import Event, MeterSampled, TransactionEnded, TransactionStarted
from csms.core.ports import Store, SystemClock
from csms.core.service import ChargingService, ServiceSettings
from csms.ocpp.v16.convert import to_samples
from csms.tariffs.service import TariffService
from ocppj.versions import OcppVersion


def _core(variant: str) -> ChargingService:
    bus = Bus()
    core = ChargingService(cast(Store, None), bus.publish, SystemClock(), ServiceSettings(), wants=bus.wants)
    if variant == "tariffs":
        tariffs = TariffService(cast(Any, None), cast(Any, None), cast(Any, None), SystemClock())
        core.registers = tariffs.feed
        bus.subscribe(tariffs.on_event, TransactionStarted, TransactionEnded)
    elif variant == "one MeterSampled subscriber":
        def ignore(_event: Event) -> None:
            return None

        bus.subscribe(ignore, MeterSampled)
    core.connected("CP1", OcppVersion.V16)
    return core


def _message(wh: float) -> list[dict[str, Any]]:
    """The payload's ``meterValue`` as the load generator sends it (the bench's mix)."""
    return [{"timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "sampledValue": _values16(wh)}]


def measure(variant: str, calls: int, rounds: int) -> dict[str, Any]:
    core = _core(variant)
    message = _message(12_345.0)
    meter: Callable[..., None] = core.meter
    best = float("inf")
    gc.collect()
    gc.disable()
    try:
        for _ in range(rounds):
            start = time.process_time()
            for _ in range(calls):
                meter(to_samples("CP1", 1, "7", message))
            best = min(best, (time.process_time() - start) / calls * 1e6)
    finally:
        gc.enable()
    return {"variant": variant, "calls": calls, "rounds": rounds, "us_per_call": round(best, 2)}


VARIANTS = ("no readers", "tariffs", "one MeterSampled subscriber")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.meter_path", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--calls", type=int, default=100_000)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args(argv)
    from bench.report import print_table

    rows = [measure(v, args.calls, args.rounds) for v in VARIANTS]
    base = rows[0]["us_per_call"]
    for r in rows:
        r["added_us"] = round(r["us_per_call"] - base, 2)
    print_table("one 1.6 MeterValues through the core's meter path (best round)", rows)


if __name__ == "__main__":
    main()
