"""Run a fleet of virtual chargers: in this event loop, or over worker processes.

``run_fleet`` is the one entry point (the CLI and ``csms demo`` use it)::

    report = await run_fleet(FleetConfig(csms_url="ws://127.0.0.1:9000/ocpp",
                                         scenario=load_scenario("smoke")))

Chargers start at ``scenario.ramp_up_per_s``; the run ends after ``duration_s``
(wall-clock; 0 means "until ``stop`` is set"), then every charger ends its sessions,
sends what it queued and closes (bounded by ``behaviour.stop_grace_s``). With
``workers > 1`` the chargers are split over processes (charger i goes to worker
i mod K); their progress and reports are merged. Workers die with the parent process
(:mod:`simulators.lifeline`), however it ends.

``urls`` adds CSMS URLs to fail over to (a station that cannot connect tries the next one);
``security`` gives the stations passwords, CAs and client certificates
(:mod:`simulators.security`); ``ledger`` names a file where every transaction message the CSMS
acknowledged is written down as it is (:mod:`simulators.ledger`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import queue
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnProcess
from typing import Any

from simulators import failures, host
from simulators.charger import VirtualCharger
from simulators.clock import SimClock
from simulators.ledger import Ledger
from simulators.ledger import reset as ledger_reset
from simulators.lifeline import die_with_parent, watch_parent
from simulators.logs import LEVELS, configure_logging
from simulators.metrics import Progress, Recorder
from simulators.report import Report, build_report
from simulators.runtime import fast_loop, raise_nofile, tune_gc
from simulators.scenario import Scenario, balancer_topology
from simulators.security import Endpoints, SecurityOptions

ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True, slots=True, kw_only=True)
class FleetConfig:
    """What to run and against which CSMS (``ws://HOST:PORT/PATH``; ids are appended)."""

    csms_url: str
    scenario: Scenario
    duration_s: float | None = None  # None: the scenario's; 0: until ``stop``
    workers: int = 1
    progress_interval_s: float = 5.0
    urls: tuple[str, ...] = ()  # more CSMS URLs to fail over to, after ``csms_url``
    security: SecurityOptions | None = None
    ledger: str = ""  # a file for the acknowledged transaction messages (simulators.ledger); "" = none

    @property
    def all_urls(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((self.csms_url, *self.urls)))

    def describe(self) -> dict[str, Any]:
        s = self.scenario
        extra: dict[str, Any] = {}
        if self.urls:
            extra["csms_urls"] = list(self.all_urls)
        if self.ledger:
            extra["ledger"] = self.ledger
        if self.security is not None:
            extra["security"] = {"profile": self.security.profile(self.csms_url), **self.security.describe()}
        return {
            **extra,
            "csms_url": self.csms_url, "scenario": s.name, "chargers": s.chargers, "protocol": s.protocol,
            "workers": self.workers, "seed": s.seed, "ramp_up_per_s": s.ramp_up_per_s,
            "time_acceleration": s.time_acceleration, "meter_interval_s": s.meter_interval_s,
            "clock_skew_s": s.clock_skew_s,
            "duration_s": self.run_seconds,
        }

    @property
    def run_seconds(self) -> float:
        return self.scenario.duration_s if self.duration_s is None else self.duration_s


def topology(scenario: Scenario) -> dict[str, Any]:
    """The balancer topology of a scenario (see :func:`simulators.scenario.balancer_topology`)."""
    return balancer_topology(scenario)


async def run_fleet(
    config: FleetConfig, *, stop: asyncio.Event | None = None, progress: ProgressCallback | None = None,
) -> Report:
    """Run the fleet until its duration passes or ``stop`` is set; return the report."""
    if config.workers < 1:
        raise ValueError("workers must be >= 1")
    started_at = datetime.now(UTC)
    t0 = time.monotonic()
    before = host.sample()
    recorder = Recorder()
    stop = stop or asyncio.Event()
    if config.ledger:
        ledger_reset(config.ledger)  # this run's lines only; workers append
    if config.workers == 1:
        await _run_local(config, range(config.scenario.chargers), recorder, stop, progress)
    else:
        await _run_workers(config, recorder, stop, progress)
    report = build_report(recorder, config=config.describe(), started_at=started_at,
                          finished_at=datetime.now(UTC), duration_s=time.monotonic() - t0,
                          host=host.usage(before, host.sample(), workers=config.workers))
    causes = failures.explain(recorder.connect_failures, config.all_urls)
    return Report({**report.data, "connect_failure_causes": causes,
                   "tls_sessions_resumed": recorder.counters["tls_resumed"]})


async def _run_local(
    config: FleetConfig, indices: range, recorder: Recorder, stop: asyncio.Event,
    progress: ProgressCallback | None,
) -> None:
    """Run the chargers at ``indices`` in this event loop."""
    s = config.scenario
    clock = SimClock(s.start_time, s.time_acceleration, skew_s=s.clock_skew_s)
    endpoints = Endpoints(config.all_urls, config.security)
    ledger = Ledger(config.ledger) if config.ledger else None
    chargers = [
        VirtualCharger(spec, url=config.csms_url, clock=clock, recorder=recorder, behaviour=s.behaviour,
                       arrivals=s.arrivals, id_tags=s.id_tags, endpoints=endpoints, ledger=ledger)
        for spec in s.charger_specs(indices)
    ]
    tasks: list[asyncio.Task[None]] = []
    reporter = asyncio.create_task(_report_progress(recorder, config.progress_interval_s, progress))
    ramp = asyncio.create_task(_ramp_up(chargers, tasks, s.ramp_up_per_s / config.workers, stop))
    try:
        seconds = config.run_seconds
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds if seconds > 0 else None)
    finally:
        ramp.cancel()
        await asyncio.gather(ramp, return_exceptions=True)
        recorder.stopping = True
        await _stop_all(chargers, tasks, s.behaviour.stop_grace_s)
        reporter.cancel()
        await asyncio.gather(reporter, return_exceptions=True)
        endpoints.close()
        if ledger is not None:
            ledger.close()
        if progress is not None:
            progress(recorder.snapshot())


async def _ramp_up(
    chargers: list[VirtualCharger], tasks: list[asyncio.Task[None]], per_s: float, stop: asyncio.Event
) -> None:
    """Start chargers at ``per_s`` (in batches every 10 ms at high rates)."""
    t0 = time.monotonic()
    started = 0
    while started < len(chargers) and not stop.is_set():
        due = min(len(chargers), int((time.monotonic() - t0) * per_s) + 1)
        for charger in chargers[started:due]:
            tasks.append(asyncio.create_task(charger.run(), name=charger.spec.station_id))
        started = due
        await asyncio.sleep(max(0.01, (started / per_s) - (time.monotonic() - t0)))


async def _stop_all(chargers: list[VirtualCharger], tasks: list[asyncio.Task[None]], grace_s: float) -> None:
    """Ask every charger to stop; cancel those still running after ``grace_s``."""
    for charger in chargers:
        charger.stop()
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=grace_s)
    for task in pending:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _report_progress(recorder: Recorder, interval_s: float, progress: ProgressCallback | None) -> None:
    while True:
        await asyncio.sleep(interval_s)
        snapshot = recorder.snapshot()
        if progress is not None:
            progress(snapshot)


# --- worker processes -------------------------------------------------------------------


async def _run_workers(
    config: FleetConfig, recorder: Recorder, stop: asyncio.Event, progress: ProgressCallback | None
) -> None:
    """Split the fleet over ``config.workers`` processes and merge what they report.

    Each worker gets the read end of its own pipe: a message asks it to stop, end-of-file
    (this process died) makes it exit."""
    log_level = logging.getLevelName(logging.getLogger().getEffectiveLevel()).lower()
    ctx = multiprocessing.get_context("spawn")
    messages: multiprocessing.Queue[tuple[str, int, dict[str, Any]]] = ctx.Queue()
    procs: list[SpawnProcess] = []
    lifelines: list[Connection] = []
    for i in range(config.workers):
        reader, writer = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_worker_main, args=(config, i, messages, reader, os.getpid(), log_level),
                           daemon=True, name=f"csms-sim-worker-{i}")
        proc.start()
        reader.close()  # the worker holds the only read end, this process the only write end
        procs.append(proc)
        lifelines.append(writer)
    latest: dict[int, dict[str, Any]] = {}
    done: set[int] = set()
    stopped = False
    loop = asyncio.get_running_loop()

    def stop_workers() -> None:
        nonlocal stopped
        if not stopped:
            stopped = True
            for writer in lifelines:
                with contextlib.suppress(OSError):
                    writer.send_bytes(b"stop")

    try:
        while len(done) < len(procs):
            if stop.is_set():
                stop_workers()
            try:
                kind, index, payload = await loop.run_in_executor(None, messages.get, True, 0.25)
            except queue.Empty:
                dead = [i for i, p in enumerate(procs) if not p.is_alive() and i not in done]
                if dead and messages.empty():
                    for i in dead:
                        recorder.error(f"worker_crashed:{i}")
                        done.add(i)
                continue
            if kind == "progress":
                latest[index] = payload
                if progress is not None and len(latest) == len(procs):
                    progress(Progress.combine(list(latest.values())))
            elif kind == "done":
                recorder.merge(payload)
                done.add(index)
    finally:
        stop_workers()
        for proc in procs:
            await loop.run_in_executor(None, proc.join, 15)
            if proc.is_alive():
                proc.kill()
                await loop.run_in_executor(None, proc.join, 5)  # reaped: its CPU counts in ``host``
        for writer in lifelines:
            writer.close()


def _worker_main(
    config: FleetConfig, index: int, messages: multiprocessing.Queue[tuple[str, int, dict[str, Any]]],
    lifeline: Connection, parent_pid: int, log_level: str,
) -> None:
    """Entry point of a worker process: its share of the chargers, in its own loop."""
    die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which stops us
    configure_logging(log_level if log_level in LEVELS else "warning")
    raise_nofile()
    tune_gc()
    fast_loop(_worker(config, index, messages, lifeline))


async def _worker(
    config: FleetConfig, index: int, messages: multiprocessing.Queue[tuple[str, int, dict[str, Any]]],
    lifeline: Connection,
) -> None:
    recorder = Recorder()
    stop = asyncio.Event()

    def on_progress(p: Progress) -> None:
        messages.put(("progress", index, p.export()))

    unwatch = watch_parent(lifeline, stop.set)
    try:
        await _run_local(config, range(index, config.scenario.chargers, config.workers), recorder, stop,
                         on_progress)
    finally:
        messages.put(("done", index, recorder.export()))
        unwatch()
