"""Reconnect storm: N stations with an open 1.6 transaction, ``kill -9`` of the CSMS, restart on
the same database and ports, time until every station is back; no acknowledged transaction lost.

1. A fresh CSMS (core 0) and N OCPP 1.6 stations from one load-generator process (core 1,
   spread over 127.0.0.2.. source addresses). Each boots, starts a transaction (the CSMS
   commits it before answering with its id) and reports its connector Charging.
2. SIGKILL to the CSMS's process group, then the same command again at once (same db, ports).
3. Every station notices the closed socket and reconnects with the OCPP 2.0.1 back-off:
   ``wait_min * 2**n + uniform(0, random_range)`` (n = failed attempts so far, capped at
   ``repeat_times``; an HTTP 503's Retry-After is a floor). It is *back* when its WebSocket is
   open and its StatusNotification is answered.
4. ``GET /api/transactions?active=true`` on the new process: every transaction id a station
   received before the kill must be there, still active, for that station.

The CSMS's admission control (``[limits] accept_rate``, 500 handshakes/s by default, burst 400)
bounds how fast a storm is let in: 10,000 stations need at least ~19 s at the default.
``--accept-rate`` sets it for the run (0 = unlimited).

``--passwords generated|scrypt`` registers the stations on security profile 1 first (HTTP Basic
auth), with the password stored as the CSMS stores one it generated (salted HMAC-SHA256) or one
an operator chose (scrypt). Every station uses the same password (its hash is computed once);
the CSMS still checks each station's login on its own, and after the kill its cache of checked
passwords is empty, which is what the storm measures.

``--tls`` runs the storm over ``wss://`` (TLS only; a throw-away EC P-256 PKI from
``bench.tls``): stations on security profile 2 (TLS + password; ``--passwords`` defaults to
``generated`` then) or, with ``--profile 3``, on profile 3 (a client certificate per station).
Every reconnection is then a full TLS handshake: the CSMS's session tickets died with it.

    python -m bench.reconnect --stations 10000
    python -m bench.reconnect --stations 10000 --tls
    python -m bench.reconnect --stations 10000 --accept-rate 1000
    python -m bench.reconnect --stations 2000 --wait-min 1 --random-range 5 --repeat-times 5
    python -m bench.reconnect --stations 10000 --passwords generated
    python -m bench.reconnect --stations 2000 --passwords scrypt
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from typing import Any

from bench.procs import HoldLoadgen, Server, StealMeter, load_average, private_host
from bench.tls import PASSWORD, BenchPki, create_database, register
from simulators.runtime import raise_nofile

PREFIX = "RC"


def _register(db: str, stations: int, scheme: str, profile: int = 1) -> None:
    """Stations RC000000.. on security ``profile`` with ``PASSWORD`` hashed per ``scheme``
    (``none``: no password)."""
    from csms.security.passwords import hash_generated_password, hash_password

    create_database(db)
    stored = None
    if scheme != "none":
        stored = hash_generated_password(PASSWORD) if scheme == "generated" else hash_password(PASSWORD)
    register(db, (f"{PREFIX}{i:06d}" for i in range(stations)), profile=profile, password_hash=stored)


def _config(accept_rate: float | None) -> dict[str, dict[str, Any]] | None:
    if accept_rate is None:
        return None
    return {"limits": {"accept_rate": accept_rate, "accept_burst": max(400, round(accept_rate))}}


def _verify(server: Server, acked: list[tuple[str, str]]) -> dict[str, int]:
    """How many acknowledged transactions the restarted CSMS still has (active, same station)."""
    found: dict[tuple[str, str], bool] = {}
    for tx in server.get_json("/api/transactions?active=true&limit=10000", timeout_s=120):
        found[(str(tx["charger_id"]), str(tx["id"]))] = bool(tx["active"])
    missing = [pair for pair in acked if pair not in found]
    for station, _tx in missing[:200]:  # beyond the API's page: ask per station
        for tx in server.get_json(f"/api/transactions?charger_id={station}&limit=50"):
            found[(str(tx["charger_id"]), str(tx["id"]))] = bool(tx["active"])
    lost = sum(1 for pair in acked if pair not in found)
    ended = sum(1 for pair in acked if pair in found and not found[pair])
    return {"acked_tx": len(acked), "lost_tx": lost, "not_active": ended}


def run(
    stations: int, *, accept_rate: float | None = None, backoff: tuple[float, float, int] = (1.0, 5.0, 5),
    setup_rate: float = 150.0, timeout_s: float = 180.0, source_ips: int = 32, log: bool = True,
    passwords: str = "none", tls_profile: int = 0,
) -> dict[str, Any]:
    """One storm; returns a summary row. ``tls_profile`` 2 or 3: over ``wss://`` on that
    security profile (profile 2 with ``generated`` passwords unless ``passwords`` says otherwise)."""
    raise_nofile()
    config = _config(accept_rate) or {}
    db, db_dir, host, pki = None, None, None, None
    tls_args: list[str] = []
    if tls_profile == 2 and passwords == "none":
        passwords = "generated"
    if tls_profile == 3:
        passwords = "none"
    if tls_profile:
        host = private_host()
        pki = BenchPki(host)
        config["tls"] = pki.server_config()
        tls_args = pki.loadgen_args(tls_profile)
    if passwords != "none" or tls_profile:
        db_dir = tempfile.mkdtemp(prefix="csms-reconnect-")
        db = f"{db_dir}/bench.sqlite3"
        _register(db, stations, passwords, tls_profile or 1)
    first = Server("csms", config=config or None, db=db, host=host)
    db, host, port, api_port = first.db, first.host, first.port, first.api_port
    servers = [first]
    lg: HoldLoadgen | None = None
    try:
        lg = HoldLoadgen(first.url, protocol="1.6", prefix=PREFIX, source_ips=source_ips, backoff=backoff,
                         password=PASSWORD if passwords != "none" else None, tls_args=tls_args)
        t0 = time.monotonic()
        budget = stations / setup_rate * 3 + 60
        conn = lg.command(cmd="connect", total=stations, rate=setup_rate, tx=True, timeout_s=budget,
                          wait_s=budget + 60)
        if log:
            print(f"setup: {conn['connected']}/{stations} stations, {conn['acked_tx']} transactions "
                  f"in {time.monotonic() - t0:.1f}s", flush=True)
        acked = [(str(s), str(t)) for s, t in lg.command(cmd="transactions")["acked"]]
        load = load_average()
        t_kill = time.monotonic()
        first.kill()
        second = Server("csms", config=config or None, db=db, host=host, port=port, api_port=api_port)
        servers.append(second)
        listening_s = time.monotonic() - t_kill
        cpu0 = second.cpu()
        steal = StealMeter(0)  # the server's core
        back = lg.command(cmd="wait_back", since=t_kill, timeout_s=timeout_s, wait_s=timeout_s + 30)
        storm_cpu = second.cpu() - cpu0
        stolen = steal.share()  # over the storm, not the verification after it
        verdict = _verify(second, acked)
        row = {
            "stations": stations, **({"endpoint": f"wss p{tls_profile}"} if tls_profile else {}),
            "passwords": passwords, "connected_before": conn["connected"],
            "accept_rate": accept_rate if accept_rate is not None else "default (500)",
            "backoff": "{}s*2^n+U(0,{}s), n<={}".format(*backoff),
            "listening_s": round(listening_s, 2), "back": back["back"], "all_back_s": back["all_back_s"],
            "p50_s": back["p50_s"], "p90_s": back["p90_s"], "p99_s": back["p99_s"],
            "attempts": back["attempts"] - conn["attempts"], "refusals": sum(back["refused"].values()),
            "storm_cpu_s": round(storm_cpu, 1), "steal_pct": round(100 * stolen, 1),
            "rss_mib": round(second.rss() / 2**20),
            **verdict, "load": load,
            "refused_by": " ".join(f"{k}={v}" for k, v in back["refused"].items()),
        }
        return row
    finally:
        if lg is not None:
            lg.close()
        for s in servers:
            s.kill()
        for s in servers:
            s.stop()
        if pki is not None:
            pki.remove()
        if db_dir is not None:
            shutil.rmtree(db_dir, ignore_errors=True)


def run_quick() -> list[dict[str, Any]]:
    """A short run for ``python -m bench --quick``: 300 stations, back-off 0.2 s + U(0, 1 s)."""
    return [run(300, backoff=(0.2, 1.0, 4), setup_rate=400.0, timeout_s=30.0, log=False)]


def run_quick_tls() -> list[dict[str, Any]]:
    """The ``wss://`` storm of ``python -m bench --quick``: 200 stations on profile 2."""
    return [run(200, backoff=(0.2, 1.0, 4), setup_rate=300.0, timeout_s=30.0, log=False, tls_profile=2)]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--stations", type=int, default=10000)
    p.add_argument("--accept-rate", type=float, default=None,
                   help="CSMS handshakes/s (default: the CSMS default, 500; 0 = unlimited)")
    p.add_argument("--wait-min", type=float, default=1.0, help="RetryBackOffWaitMinimum, seconds")
    p.add_argument("--random-range", type=float, default=5.0, help="RetryBackOffRandomRange, seconds")
    p.add_argument("--repeat-times", type=int, default=5, help="RetryBackOffRepeatTimes")
    p.add_argument("--setup-rate", type=float, default=150.0,
                   help="stations opened per second before the kill (keep it under the accept rate)")
    p.add_argument("--timeout", type=float, default=180.0, help="give up waiting after this many seconds")
    p.add_argument("--passwords", choices=["none", "generated", "scrypt"], default="none",
                   help="stations log in with a password stored as the CSMS stores a generated one "
                        "(HMAC-SHA256) or an operator's (scrypt); default: no password")
    p.add_argument("--tls", action="store_true", help="over wss:// (see --profile)")
    p.add_argument("--profile", type=int, choices=[2, 3], default=2,
                   help="with --tls: security profile 2 (TLS + password) or 3 (client certificates)")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.reconnect", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(p)
    args = p.parse_args(argv)
    from bench.report import print_table

    row = run(args.stations, accept_rate=args.accept_rate,
              backoff=(args.wait_min, args.random_range, args.repeat_times), setup_rate=args.setup_rate,
              timeout_s=args.timeout, passwords=args.passwords, tls_profile=args.profile if args.tls else 0)
    print_table("reconnect after kill -9" + (f", wss:// profile {args.profile}" if args.tls else ""), [row])


if __name__ == "__main__":
    main()
