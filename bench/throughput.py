"""Sustained calls/s at saturation, ours vs the baseline, in one run; latency at fractions of ours.

The server runs pinned to core 0, the load generator (``bench.loadgen``) to core 1. Mix:
70 % meter values (1.6 MeterValues / 2.0.1 TransactionEvent Updated, 8 samples), 20 %
Heartbeat, 10 % StatusNotification; validation on in both servers. Over the measured window
only, the server's CPU time and run-queue wait are read from /proc:

* ``calls_per_s`` — answered calls per second of wall time (what the loadgen saw);
* ``cpu_us_per_call`` — server CPU per call, and ``per_core_calls_s`` = 1e6 / that: the rate one
  whole core would sustain. It is far less sensitive to other load on the machine;
* ``srv_util`` — server CPU / wall (1.0 = saturated its core); ``srv_wait`` — share of the window
  the server was runnable but another process had its core (noise from other work);
* ``steal`` — share of the window the hypervisor gave the server's core to another VM. Above a
  few per cent, calls/s and latency measure the host's neighbours, and the run should be redone
  (the summary says so).

Latency is measured at 25/50/75 % of our median saturated rate, paced open loop, from each
call's scheduled send time (``p50_ms``/``p99_ms``: no coordinated omission). ``svc_p99_ms`` is
from the actual send; ``lag_p99_ms`` is how late calls left: a connection keeps one call
outstanding, so a late send means its previous answer was late (server queueing) or, when
``lg_util`` is near 1, that the generator itself was short of CPU.

    python -m bench.throughput [--duration 10] [--connections 64] [--repeat 3] [--protocol 1.6 2.0.1]
    python -m bench.throughput --protocol 2.0.1 --profile /tmp/csms-201.prof   # cProfile of ours
    python -m bench.throughput --split 1 --duration 8 --repeat 3   # the cost of a gateway hop
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any

from bench.procs import Node, Server, StealMeter, load_average, run_loadgen


class _Window:
    """Server CPU, run-queue wait and the hypervisor's steal of its core between the loadgen's
    window marks."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.start: tuple[float, float] = (0.0, 0.0)
        self.cpu = 0.0
        self.wait = 0.0
        self.steal = 0.0  # share of the window
        self._steal = StealMeter(server.core)

    def __call__(self, event: str) -> None:
        now = (self.server.cpu(), self.server.sched_wait())
        if event == "window_start":
            self.start = now
            self._steal = StealMeter(self.server.core)
        elif event == "window_end":
            self.cpu, self.wait = now[0] - self.start[0], now[1] - self.start[1]
            self.steal = self._steal.share()


def measure(
    kind: str, protocol: str, connections: int, duration: float, *, rate: float = 0.0, warmup: float = 1.0
) -> dict[str, Any]:
    """One run against a fresh server: saturated (``rate`` 0) or paced."""
    load = load_average()
    server = Server(kind)
    try:
        window = _Window(server)
        res = run_loadgen(
            server.url, protocol=protocol, connections=connections, duration=duration, rate=rate,
            warmup=warmup, prefix=f"{kind[:2].upper()}{protocol.replace('.', '')}", on_event=window,
        )
    finally:
        server.kill()  # the graceful stop is not measured here; SIGKILL saves ~0.7 s a run
        server.stop()
    calls = int(res["calls"]) or 1
    secs = float(res["duration_s"]) or 1.0
    us = window.cpu / calls * 1e6
    return {
        "server": kind, "protocol": protocol, "connections": res["connections"],
        "calls_per_s": res["calls_per_s"], "p50_ms": res["p50_ms"], "p99_ms": res["p99_ms"],
        "errors": res["errors"] + res["failed_connections"],
        "cpu_us_per_call": round(us, 1), "per_core_calls_s": round(1e6 / us) if us else 0,
        "srv_util": round(window.cpu / secs, 2), "srv_wait": round(window.wait / secs, 2),
        "steal": round(window.steal, 2),
        "svc_p99_ms": res["svc_p99_ms"], "lag_p99_ms": res["lag_p99_ms"],
        "lg_util": res["loadgen_cpu_util"], "load": load,
    }


def _spread(values: list[float]) -> str:
    return f"{min(values):,.0f}-{max(values):,.0f}" if len(values) > 1 else ""


def run(
    protocols: list[str], connections: int, duration: float, fractions: tuple[float, ...],
    repeat: int = 1, warmup: float = 1.0,
) -> dict[str, list[dict[str, Any]]]:
    """Saturation runs (``repeat`` times each, interleaved ours/baseline), ratios, latency points."""
    runs: list[dict[str, Any]] = []
    ratios: list[dict[str, Any]] = []
    latency: list[dict[str, Any]] = []
    for protocol in protocols:
        ours: list[dict[str, Any]] = []
        base: list[dict[str, Any]] = []
        for _ in range(repeat):
            ours.append(measure("csms", protocol, connections, duration, warmup=warmup))
            base.append(measure("baseline", protocol, connections, duration, warmup=warmup))
        runs += ours + base
        o_rate = statistics.median(float(r["calls_per_s"]) for r in ours)
        b_rate = statistics.median(float(r["calls_per_s"]) for r in base)
        o_us = statistics.median(float(r["cpu_us_per_call"]) for r in ours)
        b_us = statistics.median(float(r["cpu_us_per_call"]) for r in base)
        ratios.append({
            "protocol": protocol, "runs": repeat,
            "ours_calls_s": round(o_rate), "ours_range": _spread([r["calls_per_s"] for r in ours]),
            "base_calls_s": round(b_rate), "base_range": _spread([r["calls_per_s"] for r in base]),
            "ratio": round(o_rate / max(1e-9, b_rate), 1),
            "ours_us_call": o_us, "base_us_call": b_us,
            "cpu_ratio": round(b_us / max(1e-9, o_us), 1),
            "max_steal": max(float(r["steal"]) for r in ours + base),
        })
        for f in fractions:
            r = measure("csms", protocol, connections, duration, rate=f * o_rate, warmup=warmup)
            latency.append({
                "protocol": protocol, "fraction": f, "target_calls_s": round(f * o_rate),
                **{k: r[k] for k in ("calls_per_s", "p50_ms", "p99_ms", "svc_p99_ms", "lag_p99_ms", "errors",
                                     "cpu_us_per_call", "srv_util", "srv_wait", "steal", "lg_util", "load")},
            })
    return {"saturation runs": runs, "ours vs baseline (medians)": ratios, "latency at fractions": latency}


def run_quick() -> list[dict[str, Any]]:
    """A short run for ``python -m bench --quick``: one 2 s saturation run per server and version."""
    return run(["1.6", "2.0.1"], 64, 2.0, (), repeat=1, warmup=0.5)["ours vs baseline (medians)"]


def split_cost(
    protocols: list[str], gateways: int, connections: int, duration: float, repeat: int = 3
) -> list[dict[str, Any]]:
    """The price of the gateway hop (ADR 0005): our server in one process against a core and
    ``gateways`` gateway processes, all pinned to core 0, saturated, runs interleaved.

    ``core_us`` is what the core alone spends per call: with cores to spare for the gateways,
    the node's ceiling is set by it, not by ``total_us``.
    """
    rows: list[dict[str, Any]] = []
    for protocol in protocols:
        for _ in range(repeat):
            for k in (0, gateways):
                node = Node(k, None)
                marks: dict[str, tuple[float, float]] = {}

                def mark(event: str, node: Node = node, marks: dict[str, Any] = marks) -> None:
                    marks[event] = (node.core_cpu(), node.cpu() - node.core_cpu())

                try:
                    res = run_loadgen(node.url, protocol=protocol, connections=connections, duration=duration,
                                      prefix=f"SP{k}", on_event=mark)
                finally:
                    node.stop()
                calls = int(res["calls"]) or 1
                core = (marks["window_end"][0] - marks["window_start"][0]) / calls * 1e6
                gw = (marks["window_end"][1] - marks["window_start"][1]) / calls * 1e6
                rows.append({
                    "protocol": protocol, "node": f"core + {k} gateways" if k else "one process",
                    "calls_per_s": res["calls_per_s"], "p99_ms": res["p99_ms"], "errors": res["errors"],
                    "core_us": round(core, 1), "gateways_us": round(gw, 1), "total_us": round(core + gw, 1),
                })
    return rows


def profile(protocol: str, connections: int, duration: float, out: str, top: int = 30) -> None:
    """Saturate our server running under cProfile, stop it with SIGINT, print the top functions."""
    import pstats

    server = Server("csms", profile=out)
    try:
        res = run_loadgen(server.url, protocol=protocol, connections=connections, duration=duration,
                          prefix=f"PR{protocol.replace('.', '')}")
    finally:
        server.interrupt()
        server.stop()
    print(f"{protocol}: {res['calls']} calls in {res['duration_s']} s under cProfile; profile in {out}")
    stats = pstats.Stats(out)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumulative").print_stats(top)


STEAL_WARN = 0.05


def steal_note(rows: list[dict[str, Any]]) -> str:
    """A warning when the hypervisor took a noticeable share of the server's core in any window."""
    worst = max((float(r.get("steal", r.get("max_steal", 0.0))) for r in rows), default=0.0)
    if worst < STEAL_WARN:
        return ""
    return (f"warning: the hypervisor stole up to {worst:.0%} of the server's core during these runs "
            "(column steal): calls/s and latency then measure the host's other tenants as much as the "
            "servers. Repeat on a quieter host before quoting them.")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--protocol", nargs="+", default=["1.6", "2.0.1"], choices=["1.6", "2.0.1"])
    p.add_argument("--connections", type=int, default=64, help="connections, one call outstanding each")
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds per run")
    p.add_argument("--repeat", type=int, default=3, help="saturation runs per server and protocol")
    p.add_argument("--fractions", type=float, nargs="+", default=[0.25, 0.5, 0.75])


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.throughput", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    p.add_argument("--profile", metavar="FILE",
                   help="instead: profile our server under the first --protocol's mix into FILE")
    p.add_argument("--split", type=int, metavar="K",
                   help="instead: CPU per call in one process vs a core + K gateway processes")
    args = p.parse_args(argv)
    if args.profile:
        profile(args.protocol[0], args.connections, args.duration, args.profile)
        return
    from bench.report import print_table

    if args.split:
        rows = split_cost(args.protocol, args.split, args.connections, args.duration, args.repeat)
        print_table(f"the gateway hop: one process vs core + {args.split} gateways (same core)", rows)
        return

    result = run(args.protocol, args.connections, args.duration, tuple(args.fractions), args.repeat)
    for title, rows in result.items():
        print_table(title, rows)
    note = steal_note([r for rows in result.values() for r in rows])
    if note:
        print("\n" + note)


if __name__ == "__main__":
    main()
