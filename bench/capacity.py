"""Capacity: stations connected at once on realistic intervals, ramped until p99 > 100 ms or
connections fail; server memory per idle connection.

Realistic intervals are meter values every 60 s and heartbeats every 300 s per station;
``--time-scale K`` divides both by K (K times the message rate of a real network) so a short
run still sees traffic; the quick run uses K = 20. Stations are ``mixed`` (even ones 1.6, odd
ones 2.0.1; ``--protocol``) and ``--charge-share`` of them (default 1.0: all, the upper bound)
are in a transaction, so their meter values are 1.6 MeterValues with a transaction id or
2.0.1 TransactionEvent Updated (committed durably before the answer).

Per step the load generator (one process, pinned to core 1, connections spread over
127.0.0.2.. source addresses) opens stations up to N; each boots and reports its connector,
then stays idle, and the server's RSS is read:

* ``idle_kib_conn`` = (RSS - RSS after a 50-station warm-up) / stations beyond the warm-up;
* ``marg_kib_conn`` = RSS growth since the previous step's end / stations added (the new ones
  are idle: booted only).

Then the new stations start their transactions, paced at ``--tx-rate`` (reported apart: a 1.6
start is one durable commit), and every station runs its periodic traffic for ``--hold``
seconds: calls/s, p50/p99 (send to answer, measured in the load generator), server CPU, RSS,
and ``srv_wait_pct``: the share of the window the server was runnable but waiting for its core
(other processes on it; ``steal_pct`` is the hypervisor's share, this one the host's own load).

The server (pinned to core 0) can hold at most its open-files limit: both processes raise
their soft limit to the hard one (``ulimit -Hn``); the largest step is capped below it.

``--tls --profile 2|3`` runs the same over ``wss://`` (TLS only, no ``ws://`` listener): a
throw-away EC P-256 PKI (``bench.tls``), every station registered beforehand on security
profile 2 (TLS + HTTP Basic password, stored as a generated one) or 3 (a client certificate
per station, CN = its id); ``idle_kib_conn`` is then the server's memory per idle TLS station.

``--gateways K`` measures the node as a core plus K ``csms gateway`` processes (ADR 0005), all
pinned to core 0 and sharing one port (``SO_REUSEPORT``): each process has its own open-files
limit, so the node holds K times as many stations. ``--loadgens L`` spreads the stations over L
load-generator processes (default: as many as gateways) for the same reason. Then the memory
is the sum over the node's processes (``core_kib_conn`` and ``gw_kib_conn`` show the split),
and ``p50_ms``/``p99_ms`` are the largest over the load generators (an upper bound on the
fleet's own: each generator sees its own stations).

    python -m bench.capacity                          # 1k 2k 5k 10k 15k 20k.. at real intervals
    python -m bench.capacity --time-scale 10 --hold 20
    python -m bench.capacity --steps 1000 5000 --hold 30 --ramp-rate 1000
    python -m bench.capacity --gateways 3 --steps 10000 30000 50000 --hold 60 --ramp-rate 500
    python -m bench.capacity --tls --profile 2 --steps 1000 5000 --hold 60 --time-scale 5
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.procs import HoldLoadgen, Node, StealMeter, load_average, private_host
from bench.tls import PASSWORD, BenchPki, create_database, generated_hash, register
from simulators.runtime import raise_nofile

WARM = 50
MIB = 1 << 20


class Loadgens:
    """Several ``HoldLoadgen`` processes driven as one: commands go to all at once, with the
    stations and rates split between them; answers are merged."""

    def __init__(self, url: str, count: int, *, protocol: str, source_ips: int, password: str | None = None,
                 tls_args: list[str] | None = None) -> None:
        self.lgs = [HoldLoadgen(url, protocol=protocol, prefix=prefix(i, count), source_ips=source_ips,
                                password=password, tls_args=tls_args) for i in range(count)]
        self.pool = ThreadPoolExecutor(count)

    def ceiling(self) -> int:
        return sum(int(lg.ready["nofile"]) - 100 for lg in self.lgs)

    def _all(self, per_lg: list[dict[str, Any]]) -> list[dict[str, Any]]:
        pairs = zip(self.lgs, per_lg, strict=True)
        return list(self.pool.map(lambda pair: pair[0].command(**pair[1]), pairs))

    def _split(self, total: int) -> list[int]:
        n = len(self.lgs)
        return [total // n + (1 if i < total % n else 0) for i in range(n)]

    def connect(self, total: int, rate: float, timeout_s: float) -> dict[str, Any]:
        n = len(self.lgs)
        answers = self._all([
            dict(cmd="connect", total=t, rate=rate / n, timeout_s=timeout_s, wait_s=timeout_s + 60)
            for t in self._split(total)
        ])
        refused: dict[str, int] = {}
        for a in answers:
            for k, v in a["refused"].items():
                refused[k] = refused.get(k, 0) + int(v)
        return {"connected": sum(int(a["connected"]) for a in answers),
                "elapsed_s": max(float(a["elapsed_s"]) for a in answers), "refused": refused}

    def start_tx(self, share: float, rate: float, wait_s: float) -> dict[str, Any]:
        n = len(self.lgs)
        answers = self._all([dict(cmd="start_tx", share=share, rate=rate / n, wait_s=wait_s)] * n)
        started = sum(int(a["started"]) for a in answers)
        return {"started": started, "p99_ms": max(a["p99_ms"] for a in answers)}

    def traffic(self, seconds: float, meter_s: float, heartbeat_s: float, wait_s: float) -> dict[str, Any]:
        cmd = dict(cmd="traffic", seconds=seconds, meter_s=meter_s, heartbeat_s=heartbeat_s, wait_s=wait_s)
        answers = self._all([cmd] * len(self.lgs))
        out = {k: max(a[k] for a in answers) for k in ("p50_ms", "p99_ms", "max_ms", "lag_p99_ms")}
        out.update({k: sum(a[k] for a in answers) for k in ("errors", "unanswered", "disconnects")})
        out["calls_per_s"] = round(sum(a["calls_per_s"] for a in answers), 1)
        episodes = sorted((e for a in answers for e in a.get("stalls", [])), key=lambda e: -e[2])
        # the worst episodes of calls over 50 ms: [s after the start, calls, worst ms]
        out["stalls"] = " ".join(f"{e[0]:.0f}s:{e[1]}x{e[2]}ms" for e in episodes[:3]) or "-"
        return out

    def rss(self) -> int:
        return sum(lg.rss() for lg in self.lgs)

    def close(self) -> None:
        for lg in self.lgs:
            lg.close()
        self.pool.shutdown()


def prefix(i: int, count: int) -> str:
    """The station id prefix of load generator ``i`` of ``count`` (ids are prefix + 6 digits)."""
    return f"CAP{i}-" if count > 1 else "CAP"


def _server_config(ramp_rate: float) -> dict[str, dict[str, Any]] | None:
    """The default accept rate (500/s) only slows the ramp down; raise it for faster ramps."""
    if ramp_rate <= 400:
        return None
    return {"limits": {"accept_rate": round(ramp_rate * 1.25), "accept_burst": max(400, round(ramp_rate))}}


def run(
    steps: list[int], *, hold_s: float = 60.0, time_scale: float = 1.0, meter_s: float = 60.0,
    heartbeat_s: float = 300.0, ramp_rate: float = 180.0, protocol: str = "mixed",
    charge_share: float = 1.0, tx_rate: float = 200.0, source_ips: int = 16, p99_limit_ms: float = 100.0,
    gateways: int = 0, loadgens: int = 0, log: bool = True, gc: dict[str, float] | None = None,
    tls_profile: int = 0,
) -> list[dict[str, Any]]:
    """Ramp through ``steps``; one row per step; stops at the first step over the limits.
    ``tls_profile`` 2 or 3: over ``wss://`` on that security profile (0: ``ws://``)."""
    raise_nofile()
    config = _server_config(ramp_rate) or {}
    if gc:
        config["gc"] = dict(gc)
    n_lgs = loadgens or max(1, gateways)
    host, db, pki = None, None, None
    password: str | None = None
    tls_args: list[str] = []
    if tls_profile:
        host = private_host()
        pki = BenchPki(host)
        config["tls"] = pki.server_config()
        db = f"{pki.dir}/bench.sqlite3"
        create_database(db)
        per_lg = (max(steps) + WARM) // n_lgs + 1
        hashed = generated_hash() if tls_profile == 2 else None
        for i in range(n_lgs):
            register(db, (f"{prefix(i, n_lgs)}{k:06d}" for k in range(per_lg)), profile=tls_profile,
                     password_hash=hashed)
        password = PASSWORD if tls_profile == 2 else None
        tls_args = pki.loadgen_args(tls_profile)
    node = Node(gateways, config or None, db=db, host=host)
    lg: Loadgens | None = None
    rows: list[dict[str, Any]] = []
    try:
        lg = Loadgens(node.url, n_lgs, protocol=protocol, source_ips=source_ips, password=password,
                      tls_args=tls_args)
        ceiling = min(node.ceiling(), lg.ceiling())
        lg.connect(WARM, ramp_rate, timeout_s=60)
        lg.start_tx(charge_share, tx_rate, wait_s=90)
        lg.traffic(1.5, 0.5, 1.0, wait_s=60)
        time.sleep(1.5)  # a write-behind flush
        base_rss = prev_rss = node.rss()
        base_gw = node.gateway_rss()
        prev = WARM
        for target in steps:
            note = ""
            if target > ceiling:
                target, note = ceiling, f"capped at the fd limits ({ceiling})"
            if target <= prev:
                break
            load = load_average()
            step_marks = node.log_marks()
            budget = (target - prev) / max(ramp_rate, 50) * 2 + 60
            conn = lg.connect(target, ramp_rate, timeout_s=budget)
            time.sleep(2.0)
            idle_rss = node.rss()
            tx_wait = (target - prev) / max(tx_rate, 10) * 3 + 120
            started = lg.start_tx(charge_share, tx_rate, wait_s=tx_wait)
            cpu0 = node.cpu()
            wait0 = node.core.sched_wait()
            steal = StealMeter(0)  # the node's core
            marks = node.log_marks()
            traffic = lg.traffic(hold_s, meter_s / time_scale, heartbeat_s / time_scale, wait_s=hold_s + 120)
            cpu = node.cpu() - cpu0
            waited = node.core.sched_wait() - wait0
            stolen = steal.share()
            pauses = node.gc_pauses(marks)
            thaws = [p for p in node.gc_pauses(step_marks) if p[1] == 3]
            rss = node.rss()
            gw_rss = node.gateway_rss()
            n = int(conn["connected"])
            per_conn = max(1, n - WARM)
            row = {
                **({"endpoint": f"wss p{tls_profile}"} if tls_profile else {}),
                "target": target, "connected": n, "connect_s": conn["elapsed_s"],
                "refused": sum(conn["refused"].values()),
                "refused_why": ",".join(f"{k}:{v}" for k, v in sorted(conn["refused"].items())) or "-",
                "idle_rss_mib": round(idle_rss / MIB),
                "idle_kib_conn": round((idle_rss - base_rss) / 1024 / per_conn, 1),
                "marg_kib_conn": round((idle_rss - prev_rss) / 1024 / max(1, n - prev), 1),
                "tx_started": started["started"], "tx_start_p99_ms": started["p99_ms"],
                "calls_per_s": traffic["calls_per_s"], "p50_ms": traffic["p50_ms"],
                "p99_ms": traffic["p99_ms"],
                "max_ms": traffic["max_ms"], "errors": traffic["errors"] + traffic["unanswered"],
                "srv_cpu_pct": round(100 * cpu / hold_s, 1), "steal_pct": round(100 * stolen, 1),
                "srv_wait_pct": round(100 * waited / hold_s, 1),
                "rss_mib": round(rss / MIB), "kib_conn": round((rss - base_rss) / 1024 / per_conn, 1),
                **({"core_kib_conn": round((rss - gw_rss - (base_rss - base_gw)) / 1024 / per_conn, 1),
                    "gw_kib_conn": round((gw_rss - base_gw) / 1024 / per_conn, 1)} if gateways else {}),
                "lg_rss_kib_conn": round(lg.rss() / 1024 / max(1, n)),
                "lg_lag_p99_ms": traffic["lag_p99_ms"], "stalls": traffic["stalls"],
                "gc_pauses": len(pauses), "gc_max": _worst(pauses),
                # thaws anywhere in the step (ramp included): how many, the longest
                "thaws": f"{len(thaws)}:{_worst(thaws)}" if thaws else "-",
                "load": load, "note": note,
            }
            rows.append(row)
            if log:
                print(" ".join(f"{k}={v}" for k, v in row.items()), flush=True)
            over = traffic["p99_ms"] > p99_limit_ms
            failed = n < target or traffic["disconnects"] > 0 or traffic["unanswered"] > 0
            if over or failed:
                why = "p99 over limit" if over else "connections failed"
                row["note"] = f"{note}; {why}" if note else why
                break
            if note:
                break
            prev, prev_rss = target, rss
    finally:
        if lg is not None:
            lg.close()
        node.stop()
        if pki is not None:
            pki.remove()
    return rows


def _worst(pauses: list[tuple[str, int, float, float]]) -> str:
    """The longest collector pause of a hold window, e.g. ``core:g1:35ms/cpu30`` (g3: a thaw;
    CPU well under the pause means the process was preempted)."""
    if not pauses:
        return "-"
    who, gen, ms, cpu = max(pauses, key=lambda p: p[2])
    return f"{who}:g{gen}:{ms:.0f}ms/cpu{cpu:.0f}"


def _gc_settings(pairs: list[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--gc wants KEY=VALUE, got {pair!r}")
        out[key] = float(value)
    return out


def run_quick() -> list[dict[str, Any]]:
    """A short run for ``python -m bench --quick``: one step of 500 stations, intervals / 20,
    in one process and then through two gateway processes."""
    rows = []
    for gateways in (0, 2):
        for row in run([500], hold_s=3.0, time_scale=20.0, ramp_rate=1000.0, tx_rate=500.0, log=False,
                       gateways=gateways):
            if gateways:
                row["note"] = "; ".join(x for x in (f"core + {gateways} gateways", row["note"]) if x)
            rows.append(row)
    return rows


def run_quick_tls() -> list[dict[str, Any]]:
    """The ``wss://`` section of ``python -m bench --quick``: 300 stations on profile 2, intervals / 20."""
    return run([300], hold_s=3.0, time_scale=20.0, ramp_rate=300.0, tx_rate=500.0, log=False, tls_profile=2)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--steps", type=int, nargs="+",
                   default=[1000, 2000, 5000, 10000, 15000, 20000, 30000, 50000],
                   help="stations connected at each step (capped at the fd limit)")
    p.add_argument("--hold", type=float, default=60.0, help="seconds of periodic traffic per step")
    p.add_argument("--time-scale", type=float, default=1.0,
                   help="divide the 60 s / 300 s intervals by this")
    p.add_argument("--ramp-rate", type=float, default=180.0,
                   help="new connections per second (over 190 the server's accept_rate is raised)")
    p.add_argument("--protocol", choices=["1.6", "2.0.1", "mixed"], default="mixed")
    p.add_argument("--charge-share", type=float, default=1.0, help="share of stations in a transaction")
    p.add_argument("--tx-rate", type=float, default=200.0, help="transaction starts per second")
    p.add_argument("--source-ips", type=int, default=16)
    p.add_argument("--p99-limit", type=float, default=100.0, help="stop above this p99 (ms)")
    p.add_argument("--gateways", type=int, default=0,
                   help="measure a core plus this many `csms gateway` processes sharing the port")
    p.add_argument("--loadgens", type=int, default=0,
                   help="load-generator processes (default: one, or one per gateway)")
    p.add_argument("--tls", action="store_true", help="over wss:// (see --profile)")
    p.add_argument("--profile", type=int, choices=[2, 3], default=2,
                   help="with --tls: security profile 2 (TLS + password) or 3 (client certificates)")
    p.add_argument("--gc", metavar="KEY=VALUE", nargs="+", default=[],
                   help="[gc] settings of the node's processes, e.g. thaw_interval_s=60 freeze_interval_s=0")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.capacity", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    args = p.parse_args(argv)
    from bench.report import print_table

    rows = run(args.steps, hold_s=args.hold, time_scale=args.time_scale, ramp_rate=args.ramp_rate,
               protocol=args.protocol, charge_share=args.charge_share, tx_rate=args.tx_rate,
               source_ips=args.source_ips, p99_limit_ms=args.p99_limit, gateways=args.gateways,
               loadgens=args.loadgens, gc=_gc_settings(args.gc), tls_profile=args.profile if args.tls else 0)
    node = f", core + {args.gateways} gateways" if args.gateways else ""
    node += f", wss:// profile {args.profile}" if args.tls else ""
    print_table(f"capacity (intervals 60 s / 300 s divided by {args.time_scale:g}{node})", rows)


if __name__ == "__main__":
    main()
