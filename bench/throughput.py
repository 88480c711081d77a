"""Sustained calls/s at saturation, ours vs the baseline, in one run; latency at 25/50/75 %.

The server runs pinned to core 0, the load generator (bench/loadgen.py) to core 1. Mix:
70 % meter values (1.6 MeterValues / 2.0.1 TransactionEvent Updated), 20 % Heartbeat,
10 % StatusNotification. Server CPU per call is read from /proc.

    python -m bench.throughput [--duration 10] [--connections 64] [--protocol 1.6 2.0.1]
"""

from __future__ import annotations

import argparse
from typing import Any

from bench.procs import Server, run_loadgen


def saturate(kind: str, protocol: str, connections: int, duration: float) -> dict[str, Any]:
    server = Server(kind)
    try:
        cpu0 = server.cpu()
        res = run_loadgen(
            server.url,
            protocol=protocol,
            connections=connections,
            duration=duration,
            prefix=f"{kind[:2].upper()}{protocol.replace('.', '')}",
        )
        cpu = server.cpu() - cpu0
    finally:
        server.stop()
    calls = int(res["calls"]) or 1
    return {
        "server": kind,
        "protocol": protocol,
        "calls_per_s": res["calls_per_s"],
        "p50_ms": res["p50_ms"],
        "p99_ms": res["p99_ms"],
        "errors": res["errors"],
        "server_cpu_us_per_call": round(cpu / calls * 1e6, 1),
    }


def latency_at(protocol: str, rate: float, connections: int, duration: float) -> dict[str, Any]:
    server = Server("csms")
    try:
        res = run_loadgen(
            server.url,
            protocol=protocol,
            connections=connections,
            duration=duration,
            rate=rate,
            prefix=f"LA{protocol.replace('.', '')}",
        )
    finally:
        server.stop()
    return {
        "protocol": protocol,
        "target_calls_per_s": round(rate),
        "calls_per_s": res["calls_per_s"],
        "p50_ms": res["p50_ms"],
        "p99_ms": res["p99_ms"],
        "errors": res["errors"],
    }


def run(
    protocols: list[str], connections: int, duration: float, fractions: tuple[float, ...]
) -> dict[str, Any]:
    rows, ratios, latency = [], [], []
    for protocol in protocols:
        ours = saturate("csms", protocol, connections, duration)
        base = saturate("baseline", protocol, connections, duration)
        rows += [ours, base]
        ratio = float(ours["calls_per_s"]) / max(1e-9, float(base["calls_per_s"]))
        ratios.append(
            {
                "protocol": protocol,
                "ours_calls_per_s": ours["calls_per_s"],
                "baseline_calls_per_s": base["calls_per_s"],
                "ratio": round(ratio, 1),
            }
        )
        for f in fractions:
            latency.append(
                {"fraction": f, **latency_at(protocol, f * float(ours["calls_per_s"]), connections, duration)}
            )
    return {"saturation": rows, "ratio": ratios, "latency": latency}


def run_quick() -> list[dict[str, Any]]:
    result = run(["1.6", "2.0.1"], 32, 4.0, (0.5,))
    return [*result["ratio"], *result["latency"]]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="python -m bench.throughput",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--protocol", nargs="+", default=["1.6", "2.0.1"], choices=["1.6", "2.0.1"])
    p.add_argument("--connections", type=int, default=64)
    p.add_argument("--duration", type=float, default=10.0)
    args = p.parse_args(argv)
    result = run(args.protocol, args.connections, args.duration, (0.25, 0.5, 0.75))
    from bench.report import print_table

    for title, rows in result.items():
        print_table(title, rows)


if __name__ == "__main__":
    main()
