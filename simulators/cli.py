"""``csms-sim``: run a fleet of virtual OCPP chargers against a CSMS and report.

Exit codes: 0 run clean; 1 protocol errors seen; 2 bad options or scenario (or a refused
--register); 3 the CSMS could not be reached (or no charger ever connected); 4 a ``--fail-on``
threshold failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from simulators import failures
from simulators.fleet import FleetConfig, run_fleet
from simulators.live_metrics import MetricsServer
from simulators.logs import LEVELS, configure_logging
from simulators.metrics import Progress
from simulators.registration import register_stations
from simulators.report import progress_line, write_plots, write_report
from simulators.runtime import fast_loop, raise_nofile, tune_gc
from simulators.scenario import (
    BUNDLED,
    PROTOCOLS,
    ScenarioError,
    balancer_topology,
    load_scenario,
    scenario_summary,
)
from simulators.security import (
    SecurityError,
    SecurityOptions,
    generate_passwords,
    load_passwords,
    passwords_csv,
)
from simulators.thresholds import METRICS, Threshold, ThresholdError, evaluate, parse_thresholds

EXIT_OK, EXIT_PROTOCOL, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_THRESHOLD = 0, 1, 2, 3, 4

DESCRIPTION = """\
Simulate OCPP 1.6J and 2.0.1 charging stations against any CSMS.

Each charger connects to CSMS_URL/STATION_ID, boots, sends status notifications
and heartbeats, and runs charging sessions: authorize, start, meter values (energy,
power, current per phase, voltage, SoC), stop. Its EVs follow the charging profiles
the CSMS installs. It answers remote start/stop, reset, unlock, availability,
configuration / variables, trigger, charging profiles, composite schedule, data
transfer, firmware update and log upload.

Without --scenario the bundled 'default' scenario runs: sessions start on most
chargers within ~10 s. Bundled scenarios: {bundled}.

Exit codes: 0 clean run, 1 protocol errors seen, 2 bad options or scenario,
3 CSMS unreachable, 4 a --fail-on threshold failed.
"""

EPILOG = """\
examples:
  csms-sim run --csms ws://127.0.0.1:9000/ocpp --chargers 100 --duration 60 --report out.json
  csms-sim run --csms ws://127.0.0.1:9000/ocpp --scenario model-city --workers 2
  csms-sim run --csms ws://127.0.0.1:9000/ocpp --fail-on "p99_ms>50,errors>0" --report out.html
  csms-sim topology --scenario model-city > balancer.json
"""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _duration(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0 (0: until Ctrl-C)")
    return value


def _thresholds(text: str) -> tuple[Threshold, ...]:
    try:
        return parse_thresholds(text)
    except ThresholdError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be 0..65535, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="csms-sim", description=DESCRIPTION.format(bundled=", ".join(BUNDLED)),
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", help="run a fleet against a CSMS",
                         formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
                         description="Run a fleet until --duration passes (or Ctrl-C), print a "
                                     "summary, optionally write a JSON report.")
    run.add_argument("--csms", "--url", required=True, metavar="URL", action="append",
                     help="OCPP endpoint without the station id, e.g. ws://127.0.0.1:9000/ocpp; repeat "
                          "(or separate with commas) to fail over: a station that cannot connect tries "
                          "the next")
    _scenario_options(run)
    run.add_argument("--duration", type=_duration, metavar="SECONDS",
                     help="wall-clock run time (default: the scenario's; 0 = until Ctrl-C)")
    run.add_argument("--clock-skew", type=float, metavar="SECONDS",
                     help="shift every timestamp the chargers send by SECONDS (negative: behind), to "
                          "test a CSMS's clock handling (default: the scenario's clock_skew_s, 0)")
    run.add_argument("--signed-meter-values", action="store_true",
                     help="sessions' start and end readings carry signed OCMF data (a fixed, public test "
                          "key: for testing a CSMS's calibration-law handling, never for billing)")
    run.add_argument("--ramp-up", type=_positive_float, metavar="PER_SECOND",
                     help="new connections per second (default: the scenario's)")
    run.add_argument("--workers", type=_positive_int, default=1, metavar="K",
                     help="processes to spread the chargers over (default 1)")
    run.add_argument("--report", metavar="FILE",
                     help="write the report here: FILE.json, or FILE.html (HTML with plots, and the JSON "
                          "alongside as FILE.json)")
    run.add_argument("--ledger", metavar="FILE.jsonl", default="",
                     help="write a JSON line for every transaction message the CSMS acknowledged "
                          "(start, meter values, stop, TransactionEvent), as the answer arrives")
    run.add_argument("--plots", metavar="DIR", help="write latency/throughput PNGs here (needs matplotlib)")
    run.add_argument("--progress-interval", type=_positive_float, default=5.0, metavar="SECONDS",
                     help="live progress on stderr every SECONDS (default 5)")
    run.add_argument("--quiet", action="store_true", help="no live progress")
    run.add_argument("--log-level", choices=list(LEVELS), default="warning")
    _security_options(run)
    # load-test verdict and live metrics
    run.add_argument("--fail-on", type=_thresholds, metavar="CONDITIONS", default=(),
                     help="fail the run (exit 4) when any condition holds, e.g. "
                          "'p99_ms>50,errors>0,connect_failures>0,p99_ms{action=StartTransaction}>200'; "
                          f"metrics: {', '.join(METRICS)}")
    run.add_argument("--metrics-port", type=_port, metavar="PORT",
                     help="serve live Prometheus metrics of the fleet on PORT (/metrics)")
    run.add_argument("--metrics-host", default="127.0.0.1", metavar="ADDR",
                     help="address for --metrics-port (default 127.0.0.1)")
    topo = sub.add_parser("topology", help="print a scenario's feeder topology for the CSMS balancer",
                          description="Print the [balancer] nodes and evses of a scenario, as JSON "
                                      "or as a TOML table for the CSMS configuration file.")
    _scenario_options(topo)
    topo.add_argument("--format", choices=["json", "toml"], default="json")
    sub.add_parser("scenarios", help="list the bundled scenarios")
    return parser


def _scenario_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scenario", metavar="FILE",
                   help=f"scenario TOML file or bundled name ({', '.join(BUNDLED)}); default: 'default'")
    p.add_argument("--chargers", type=_positive_int, metavar="N", help="number of chargers")
    p.add_argument("--protocol", choices=PROTOCOLS, help="OCPP version of the chargers")
    p.add_argument("--id-prefix", metavar="PREFIX", help="station ids are PREFIX00001, PREFIX00002...")
    p.add_argument("--seed", type=int, metavar="S", help="random seed (same seed, same fleet)")


def main(argv: Sequence[str] | None = None) -> int:
    """The ``csms-sim`` command; a reader that goes away early (``| head``) ends it quietly."""
    try:
        code = _main(argv)
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)  # no second error when Python flushes at exit
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    return code


def _main(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "scenarios":
            for name in BUNDLED:
                print(scenario_summary(load_scenario(name)))
            return EXIT_OK
        scenario = load_scenario(args.scenario).with_options(
            chargers=args.chargers, protocol=args.protocol, id_prefix=args.id_prefix, seed=args.seed,
            ramp_up_per_s=getattr(args, "ramp_up", None), duration_s=getattr(args, "duration", None),
            clock_skew_s=getattr(args, "clock_skew", None),
            signed_meter_values=True if getattr(args, "signed_meter_values", False) else None,
        )
    except ScenarioError as exc:
        print(f"csms-sim: bad scenario: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.command == "topology":
        print(_topology_text(balancer_topology(scenario), args.format))
        return EXIT_OK
    try:
        security = _security(args, [scenario.station_id(i) for i in range(scenario.chargers)])
    except SecurityError as exc:
        print(f"csms-sim: {exc}", file=sys.stderr)
        return EXIT_USAGE
    urls = [u.strip().rstrip("/") for arg in args.csms for u in arg.split(",") if u.strip()]
    problems = [p for p in (check_url(u) for u in urls) if p is not None]
    some_reachable = len(problems) < len(urls)
    for problem in problems:  # with failover URLs, one that is down now need not stop the run
        print(f"csms-sim: {'warning: ' if some_reachable else ''}{problem}", file=sys.stderr)
    if any(p.startswith("--csms") for p in problems) or not urls:
        return EXIT_USAGE
    if not some_reachable:
        return EXIT_UNREACHABLE
    configure_logging(args.log_level)
    raise_nofile()
    tune_gc()
    config = FleetConfig(csms_url=urls[0], urls=tuple(urls[1:]), scenario=scenario, workers=args.workers,
                         progress_interval_s=args.progress_interval, security=security, ledger=args.ledger)
    return fast_loop(_run(config, args))


async def _run(config: FleetConfig, args: argparse.Namespace) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)

    metrics: MetricsServer | None = None
    if args.metrics_port is not None:
        try:
            metrics = MetricsServer(args.metrics_port, args.metrics_host)
        except OSError as exc:
            print(f"csms-sim: cannot serve metrics on {args.metrics_host}:{args.metrics_port}: "
                  f"{exc.strerror or exc}", file=sys.stderr)
            return EXIT_USAGE
        print(f"live metrics on http://{args.metrics_host}:{metrics.port}/metrics", file=sys.stderr)

    def show(p: Progress) -> None:
        if metrics is not None:
            metrics.update(p)
        if not args.quiet:
            print(progress_line(p), file=sys.stderr, flush=True)

    if args.register:
        code = await _register(config, args)
        if code != EXIT_OK:
            if metrics is not None:
                metrics.close()
            return code
    try:
        report = await run_fleet(config, stop=stop, progress=show)
    finally:
        if metrics is not None:
            metrics.close()
    if args.fail_on:
        report = report.with_thresholds(evaluate(args.fail_on, report.data))
    print(report.summary(), file=sys.stderr)
    for line in failures.summary_lines(report.data["connect_failure_causes"]):
        print(line, file=sys.stderr)
    if args.report:
        written = write_report(report, args.report)
        print(f"report written to {', '.join(str(p) for p in written)}", file=sys.stderr)
    if args.plots:
        plots = write_plots(report, args.plots)
        if plots is None:
            print("no plots: matplotlib is not installed (pip install matplotlib)", file=sys.stderr)
        else:
            print(f"plots written: {', '.join(str(p) for p in plots)}", file=sys.stderr)
    if report.connections_established == 0:
        print(f"csms-sim: no charger could connect to {', '.join(config.all_urls)}", file=sys.stderr)
        return EXIT_UNREACHABLE
    failed = report.thresholds_failed
    if failed:
        print(f"csms-sim: thresholds failed: {', '.join(failed)}", file=sys.stderr)
        return EXIT_THRESHOLD
    return EXIT_PROTOCOL if report.protocol_errors else EXIT_OK


def check_url(url: str, *, timeout_s: float = 3.0) -> str | None:
    """Why ``url`` cannot be used (None: a TCP connection to it succeeds)."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        return f"--csms/--url must be a ws:// or wss:// URL such as ws://127.0.0.1:9000/ocpp, got {url!r}"
    try:
        port = parts.port or (443 if parts.scheme == "wss" else 80)
    except ValueError:
        return f"--csms/--url has an invalid port: {url!r}"
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout_s):
            return None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        return f"cannot reach the CSMS at {parts.hostname}:{port} ({url}): {reason}"


# --- security profiles and registration ------------------------------------------------------


def _security_options(run: argparse.ArgumentParser) -> None:
    g = run.add_argument_group(
        "security profiles and registration",
        "Profile 1: a password over ws://. Profile 2: a password over wss://. Profile 3: a client "
        "certificate over wss://. Basic auth uses the station id as the username.")
    pw = g.add_mutually_exclusive_group()
    pw.add_argument("--passwords", metavar="FILE",
                    help="passwords per station: CSV 'id,password' lines or JSON")
    pw.add_argument("--password-pattern", metavar="PATTERN",
                    help="password from the id, e.g. 'pw-{id}-secret'")
    pw.add_argument("--generate-passwords", metavar="FILE.csv",
                    help="random passwords, written as 'id,password' CSV to FILE ('-': stdout) for "
                         "registration")
    g.add_argument("--ca-file", metavar="PEM", help="CA bundle to verify the CSMS's wss:// certificate (and "
                   "the API's https://) against (default: the system's)")
    g.add_argument("--client-ca-cert", metavar="PEM", help="profile 3: issue each station a client "
                   "certificate (CN = station id) with this CA...")
    g.add_argument("--client-ca-key", metavar="PEM", help="...and its private key (unencrypted PEM)")
    g.add_argument("--client-cert-dir", metavar="DIR", help="profile 3: load DIR/<id>.pem and DIR/<id>.key")
    g.add_argument("--tls-resume", action="store_true",
                   help="resume TLS sessions (fewer full handshakes when reconnecting)")
    g.add_argument("--register", metavar="API_URL", help="register the stations with our CSMS first "
                   "(PUT API_URL/api/chargers/{id} with their security profile and password)")
    g.add_argument("--api-token", metavar="TOKEN", default=os.environ.get("CSMS_API_TOKEN"),
                   help="operator API token for --register (default: $CSMS_API_TOKEN)")


def _security(args: argparse.Namespace, station_ids: list[str]) -> SecurityOptions | None:
    """The fleet's security options from the command line (None: no credentials, no TLS trust set)."""
    passwords: dict[str, str] = {}
    if args.passwords:
        passwords = load_passwords(args.passwords)
    elif args.generate_passwords:
        passwords = generate_passwords(station_ids)
        text = passwords_csv(passwords)
        if args.generate_passwords == "-":
            sys.stdout.write(text)
        else:
            try:
                fd = os.open(args.generate_passwords, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w") as f:
                    f.write(text)
            except OSError as exc:
                raise SecurityError(f"cannot write {args.generate_passwords}: {exc.strerror}") from None
            print(f"passwords of {len(passwords)} stations written to {args.generate_passwords}",
                  file=sys.stderr)
    options = SecurityOptions(
        passwords=passwords, password_pattern=args.password_pattern, ca_file=args.ca_file,
        client_ca_cert=args.client_ca_cert, client_ca_key=args.client_ca_key,
        client_cert_dir=args.client_cert_dir, tls_resume=args.tls_resume,
    )
    if options == SecurityOptions():
        return None
    options.check(station_ids)
    return options


async def _register(config: FleetConfig, args: argparse.Namespace) -> int:
    s = config.scenario
    security = config.security or SecurityOptions()
    profile = security.profile(config.csms_url)
    try:
        result = await register_stations(
            args.register, [s.station_id(i) for i in range(s.chargers)], profile=profile,
            password_for=security.password_for, token=args.api_token, ca_file=security.ca_file)
    except ValueError as exc:
        print(f"csms-sim: --register: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"csms-sim: --register {args.register} (security profile {profile}): {result.summary()}",
          file=sys.stderr)
    if not result.failed:
        return EXIT_OK
    unreachable = any(e.startswith("cannot reach") for e in result.failed.values())
    return EXIT_UNREACHABLE if unreachable else EXIT_USAGE


def _topology_text(topology: dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(topology, indent=2)
    lines = ["[balancer]", "enabled = true", ""]
    for key in ("nodes", "evses"):
        for item in topology[key]:
            lines.append(f"[[balancer.{key}]]")
            lines.extend(f"{k} = {json.dumps(v)}" for k, v in item.items() if v is not None)
            lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
