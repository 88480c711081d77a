"""Run every benchmark and print one summary table.

    python -m bench --quick                 # short versions of all (CI smoke test, < 2 min)
    python -m bench                         # full versions (tens of minutes)
    python -m bench --only throughput reconnect --stations 5000

Sections: throughput (ours vs the ocpp-library baseline, both versions), capacity (stations
held at once), reconnect (kill -9 storm), tls (capacity and the storm over wss://, security
profile 2: TLS + password), and the benches of other parts: balancer, telemetry, fleet_cost.
Those run in child processes (their ``run_quick()`` with --quick,
their command line otherwise); when one fails or is missing, its error is shown in the
summary. The exit status is non-zero only when throughput, capacity, reconnect or tls crash.

Full-run options (each module has more: ``python -m bench.capacity --help``):
  --duration S --connections N --repeat K   throughput (defaults 10 s, 64, 3)
  --steps N.. --hold S --time-scale K       capacity (defaults 1k..50k capped at the fd limit, 60 s, 1)
  --stations N --accept-rate R              reconnect (defaults 10,000, the CSMS default of 500/s)
  tls: capacity's --steps/--hold/--time-scale and reconnect's --stations, over wss:// profile 2
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

import orjson

from bench.procs import load_average
from bench.report import print_table

OURS = ("throughput", "capacity", "reconnect", "tls")
OTHERS = ("balancer", "telemetry", "fleet_cost")
OTHER_TIMEOUT_S = {"balancer": 60.0, "telemetry": 90.0, "fleet_cost": 90.0}


def _compact(row: dict[str, Any], limit: int = 150) -> str:
    text = " ".join(f"{k}={v}" for k, v in row.items() if v not in ("", None))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _headline(section: str, rows: list[dict[str, Any]]) -> list[str]:
    """One line per result row, in a form that reads at a glance."""
    out = []
    for r in rows:
        if section == "throughput" and "ratio" in r:
            steal = float(r.get("max_steal", 0.0))
            out.append(f"{r['protocol']}: ours {r['ours_calls_s']:,} vs baseline "
                       f"{r['base_calls_s']:,} calls/s = {r['ratio']}x (server CPU/call "
                       f"{r['ours_us_call']} vs {r['base_us_call']} us = {r['cpu_ratio']}x)"
                       + (f"; host steal up to {steal:.0%}" if steal >= 0.05 else ""))
        elif section == "throughput" and "fraction" in r:
            out.append(f"{r['protocol']} at {r['fraction']:.0%} ({r['target_calls_s']:,}/s): "
                       f"p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms")
        elif section == "capacity":
            out.append(f"{r['connected']:,} stations: {r['calls_per_s']} calls/s, p50 {r['p50_ms']} ms, "
                       f"p99 {r['p99_ms']} ms, idle {r['idle_kib_conn']} KiB/conn, RSS {r['rss_mib']} MiB"
                       + (f" ({r['note']})" if r.get("note") else ""))
        elif section == "tls":
            kind = "reconnect" if "back" in r else "capacity"
            out += [f"{r.get('endpoint', 'wss')} {kind}: {line}" for line in _headline(kind, [r])]
        elif section == "reconnect":
            out.append(f"{r['back']:,}/{r['stations']:,} back in {r['all_back_s']} s after kill -9 "
                       f"(restart {r['listening_s']} s), lost transactions {r['lost_tx']}/{r['acked_tx']}")
        else:
            out.append(_compact(r))
    return out or ["(no rows)"]


def _ours(section: str, quick: bool, args: argparse.Namespace) -> list[dict[str, Any]]:
    if section == "throughput":
        from bench import throughput

        if quick:
            return throughput.run_quick()
        res = throughput.run(args.protocol, args.connections, args.duration, (0.25, 0.5, 0.75), args.repeat)
        for title, rows in res.items():
            print_table(f"throughput: {title}", rows)
        return [*res["ours vs baseline (medians)"], *res["latency at fractions"]]
    if section == "capacity":
        from bench import capacity

        if quick:
            return capacity.run_quick()
        return capacity.run(args.steps, hold_s=args.hold, time_scale=args.time_scale)
    from bench import reconnect

    if section == "tls":
        from bench import capacity

        if quick:
            return [*capacity.run_quick_tls(), *reconnect.run_quick_tls()]
        steps = [n for n in args.steps if n <= 10000] or [min(args.steps)]  # a TLS ramp is slower
        return [*capacity.run(steps, hold_s=args.hold, time_scale=args.time_scale, tls_profile=2),
                reconnect.run(args.stations, accept_rate=args.accept_rate, tls_profile=2)]

    if quick:
        return reconnect.run_quick()
    return [reconnect.run(args.stations, accept_rate=args.accept_rate)]


def _child(code: str, timeout_s: float | None, capture: bool) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=capture, text=True, timeout=timeout_s,
                          start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def _other(section: str, quick: bool) -> list[dict[str, Any]]:
    """The balancer, telemetry or fleet bench in a child process: its ``run_quick()`` rows, or its CLI."""
    if not quick:
        proc = _child(f"from bench.{section} import main; main([])", None, capture=False)
        if proc.returncode != 0:
            raise RuntimeError(f"python -m bench.{section} exited with {proc.returncode}")
        return [{"status": "see its output above"}]
    code = (
        "import sys, orjson\n"
        f"from bench.{section} import run_quick\n"
        "rows = run_quick()\n"
        "sys.stdout.write('\\n@@ROWS@@' + orjson.dumps(rows, default=str).decode() + '\\n')\n"
    )
    try:
        proc = _child(code, OTHER_TIMEOUT_S[section], capture=True)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"timed out after {OTHER_TIMEOUT_S[section]:.0f}s") from None
    marker = [line for line in proc.stdout.splitlines() if line.startswith("@@ROWS@@")]
    if proc.returncode != 0 or not marker:
        tail = (proc.stderr or proc.stdout).strip().splitlines()
        raise RuntimeError(tail[-1] if tail else f"exit status {proc.returncode}")
    rows: list[dict[str, Any]] = orjson.loads(marker[-1][len("@@ROWS@@"):])
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="short versions (under 2 minutes)")
    p.add_argument("--only", nargs="+", choices=[*OURS, *OTHERS], help="run only these sections")
    p.add_argument("--protocol", nargs="+", default=["1.6", "2.0.1"], choices=["1.6", "2.0.1"])
    p.add_argument("--duration", type=float, default=10.0, help="throughput: measured seconds per run")
    p.add_argument("--connections", type=int, default=64, help="throughput: connections")
    p.add_argument("--repeat", type=int, default=3, help="throughput: runs per server and version")
    p.add_argument("--steps", type=int, nargs="+", default=[1000, 2000, 5000, 10000, 15000, 20000, 50000],
                   help="capacity: stations per step")
    p.add_argument("--hold", type=float, default=60.0, help="capacity: seconds of traffic per step")
    p.add_argument("--time-scale", type=float, default=1.0, help="capacity: divide 60 s / 300 s by this")
    p.add_argument("--stations", type=int, default=10000, help="reconnect: stations")
    p.add_argument("--accept-rate", type=float, default=None, help="reconnect: CSMS handshakes/s")
    args = p.parse_args(argv)

    sections = [s for s in (*OURS, *OTHERS) if not args.only or s in args.only]
    summary: list[dict[str, Any]] = []
    crashed = False
    started = time.monotonic()
    print(f"python -m bench{' --quick' if args.quick else ''}: {', '.join(sections)}; "
          f"load average {load_average()}", flush=True)
    for section in sections:
        t0 = time.monotonic()
        load = load_average()
        runner: Callable[[], list[dict[str, Any]]]
        if section in OURS:
            def runner(section: str = section) -> list[dict[str, Any]]:
                return _ours(section, args.quick, args)
        else:
            def runner(section: str = section) -> list[dict[str, Any]]:
                return _other(section, args.quick)
        try:
            rows = runner()
        except Exception as exc:
            if section in OURS:
                crashed = True
                traceback.print_exc()
            summary.append({"bench": section, "status": "ERROR", "s": round(time.monotonic() - t0),
                            "load": load, "result": f"{type(exc).__name__}: {exc}"[:200]})
            continue
        print_table(section, rows)
        sys.stdout.flush()
        for i, line in enumerate(_headline(section, rows)):
            summary.append({"bench": section if i == 0 else "", "status": "ok" if i == 0 else "",
                            "s": round(time.monotonic() - t0) if i == 0 else "",
                            "load": load if i == 0 else "", "result": line})
    print_table(f"summary ({time.monotonic() - started:.0f} s)", summary)
    return 1 if crashed else 0


if __name__ == "__main__":
    raise SystemExit(main())
