"""``csms`` command line: serve, demo, and station / id-tag administration.

Each command imports what it runs when it runs (``csms --help`` and the administration
commands do not load the server); the event loop and signals are ``csms.runtime``'s.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from csms.config import Settings, load_settings
from csms.core.audit import AuditEntry, AuditLog, digest
from csms.errors import ConfigError, StoreUnavailable
from csms.logging import configure_logging
from csms.runtime import run, stop_on_signals, wait_stopped

if TYPE_CHECKING:
    from csms.store.sql import SqlStore

DESCRIPTION = """\
An asyncio Charging Station Management System (CSMS) for OCPP 1.6J and 2.0.1.

Stations connect to ws://HOST:OCPP_PORT/ocpp/{station_id} offering the subprotocol
ocpp1.6 or ocpp2.0.1. Operators use the HTTP API (OpenAPI at /docs) and /metrics.
Every option can also be set in a TOML file (--config) or as CSMS_* environment
variables (e.g. CSMS_OCPP_PORT=9000, CSMS_INFLUX_URL=http://127.0.0.1:8086).
"""


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="TOML configuration file (also CSMS_CONFIG)")
    p.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--ocpp-port", type=int, help="OCPP WebSocket port (default 9000)")
    p.add_argument("--api-port", type=int, help="operator API and console port (default 8080)")
    p.add_argument("--db", help="SQLite path or postgresql://user@host/db URL (default csms.sqlite3)")
    p.add_argument("--log-format", choices=["json", "console", "auto"], help="log output format")
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"], help="log level")


def _cluster(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bus", metavar="URL",
                   help="MQTT v5 broker linking gateway and core nodes, mqtt://[user:password@]host:port "
                        "(CSMS_CLUSTER_BUS); see docs/scale-out.md")
    p.add_argument("--node-id", metavar="ID",
                   help="this node's name in the cluster (default HOSTNAME-PID; CSMS_CLUSTER_NODE_ID)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="csms", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="run the CSMS (OCPP endpoint + operator API)",
                           description="Run the CSMS until SIGTERM or SIGINT.")
    _common(serve)
    serve.add_argument("--auto-register", action="store_true", default=None,
                       help="accept unknown station ids and register them (also CSMS_AUTO_REGISTER=1)")
    serve.add_argument("--accept-unknown-tags", action="store_true", default=None,
                       help="authorise id tags that are not in the list (demos only)")
    serve.add_argument("--tls-cert", metavar="FILE",
                       help="PEM server certificate: serve wss:// for security profiles 2-3 (CSMS_TLS_CERT)")
    serve.add_argument("--tls-key", metavar="FILE", help="PEM private key of --tls-cert (CSMS_TLS_KEY)")
    serve.add_argument("--tls-client-ca", metavar="FILE",
                       help="CA bundle for profile-3 client certificates (CSMS_TLS_CLIENT_CA)")
    serve.add_argument("--tls-port", type=int, help="wss:// port (default 9443; CSMS_TLS_PORT)")
    serve.add_argument("--gateway-socket", metavar="PATH",
                       help="also serve stations through `csms gateway` processes linked on this Unix "
                            "socket (CSMS_GATEWAY_SOCKET)")
    _cluster(serve)
    serve.add_argument("--no-ocpp", dest="cluster_ocpp", action="store_false", default=None,
                       help="hold no station sockets here: a core node serving gateway nodes' stations "
                            "(with --bus; CSMS_CLUSTER_OCPP=0)")

    gw = sub.add_parser(
        "gateway", help="hold stations' WebSockets for a CSMS core (more stations than one process may open)",
        description="Terminate OCPP WebSockets (and TLS) and relay them to CSMS cores: core nodes on an "
                    "MQTT v5 broker (--bus, any machine; docs/scale-out.md) or one core on this machine "
                    "started with --gateway-socket (--core). The cores take every decision and keep "
                    "every state. Start one or more with --reuse-port to share a port; each has its own "
                    "open-files limit. "
                    "Reads the same configuration as `csms serve` (host, ocpp_port, tls, limits, "
                    "ping_interval_s).",
    )
    gw.add_argument("--config", metavar="FILE", help="TOML configuration file (also CSMS_CONFIG)")
    gw.add_argument("--core", metavar="PATH", help="the core's gateway socket (default: gateway_socket)")
    _cluster(gw)
    gw.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    gw.add_argument("--ocpp-port", type=int, help="port for stations (default 9000; 0 picks a free one)")
    gw.add_argument("--reuse-port", action="store_true",
                    help="share the port with other gateways (SO_REUSEPORT)")
    gw.add_argument("--tls-cert", metavar="FILE", help="PEM server certificate: serve wss:// instead of ws://")
    gw.add_argument("--tls-key", metavar="FILE", help="PEM private key of --tls-cert")
    gw.add_argument("--tls-client-ca", metavar="FILE", help="CA bundle for profile-3 client certificates")
    gw.add_argument("--metrics-port", type=int, metavar="PORT",
                    help="serve this gateway's Prometheus metrics on http://HOST:PORT/metrics "
                         "(stations, pings, pre-authentication refusals, collector pauses)")
    gw.add_argument("--log-format", choices=["json", "console", "auto"], help="log output format")
    gw.add_argument("--log-level", choices=["debug", "info", "warning", "error"], help="log level")

    demo = sub.add_parser(
        "demo", help="run the CSMS with a simulated fleet and the console, on embedded defaults",
        description="Start the CSMS (temporary SQLite, auto-registration, demo feeders) and a "
                    "fleet of simulated chargers, print where to look, and run until Ctrl-C "
                    "or --duration.",
    )
    _common(demo)
    demo.add_argument("--chargers", type=int, default=20, help="number of simulated chargers (default 20)")
    demo.add_argument("--duration", type=float, default=None,
                      help="stop after SECONDS (default: run until Ctrl-C)")
    demo.add_argument("--scenario", metavar="FILE", help="simulator scenario file (TOML)")
    demo.add_argument("--protocol", choices=["1.6", "2.0.1", "mixed"], default="mixed",
                      help="protocol of the simulated chargers (default mixed)")

    st = sub.add_parser("stations", help="register, list or remove stations in the database")
    _common(st)
    st_sub = st.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = st_sub.add_parser("add", help="register a station (or update its security settings)")
    add.add_argument("station_id")
    add.add_argument("--security-profile", type=int, choices=[0, 1, 2, 3], default=0)
    add.add_argument("--password", help="Basic-auth password (16-40 characters) for profiles 1-2")
    st_sub.add_parser("list", help="list registered stations")
    rm = st_sub.add_parser("remove", help="remove a station")
    rm.add_argument("station_id")
    place = st_sub.add_parser(
        "place", help="set a station's site and/or groups",
        description="Set a station's site and/or groups. A running server applies a change of groups to "
        "the station's local list at its next periodic reconciliation (local_lists.reconcile_s); the "
        "API's group routes apply it at once.")
    place.add_argument("station_id")
    place.add_argument("--site", help="site id ('' removes the site)")
    place.add_argument("--group", action="append", dest="groups", metavar="NAME",
                       help="a group the station is in (repeat; replaces its groups)")

    sites = sub.add_parser("sites", help="create, list or remove sites in the database")
    _common(sites)
    sites_sub = sites.add_subparsers(dest="action", required=True, metavar="ACTION")
    sadd = sites_sub.add_parser("add", help="create or replace a site")
    sadd.add_argument("site_id")
    sadd.add_argument("--name", required=True)
    sadd.add_argument("--address", default="")
    sadd.add_argument("--city", default="")
    sadd.add_argument("--country", default="", help="ISO 3166-1 alpha-3, e.g. DEU")
    sadd.add_argument("--operator", default="")
    sadd.add_argument("--time-zone", default="UTC", help="IANA time zone, e.g. Europe/Berlin")
    sites_sub.add_parser("list", help="list sites and groups")
    srm = sites_sub.add_parser("remove", help="remove a site (its stations keep no site)")
    srm.add_argument("site_id")

    tags = sub.add_parser(
        "tags", help="manage the id-tag list in the database",
        description="Manage the id-tag list in the database. This command runs without the server: a "
        "running server brings its stations' local lists in step at its next periodic reconciliation "
        "(local_lists.reconcile_s); changes through the API update them at once.")
    _common(tags)
    tags_sub = tags.add_subparsers(dest="action", required=True, metavar="ACTION")
    tadd = tags_sub.add_parser("add", help="add or update an id tag")
    tadd.add_argument("id_tag")
    tadd.add_argument("--status", default="Accepted", choices=["Accepted", "Blocked", "Expired", "Invalid"])
    tadd.add_argument("--expiry", help="RFC 3339 expiry time")
    tadd.add_argument("--parent", help="parent (group) id tag")
    tags_sub.add_parser("list", help="list id tags")
    trm = tags_sub.add_parser("remove", help="remove an id tag")
    trm.add_argument("id_tag")

    cdrs = sub.add_parser("cdrs", help="export charge detail records from the database")
    _common(cdrs)
    cdrs_sub = cdrs.add_subparsers(dest="action", required=True, metavar="ACTION")
    export = cdrs_sub.add_parser(
        "export", help="write CDRs of sessions stopped in [--from, --to) to stdout, oldest first",
        description="Streams every matching record (bounded memory), e.g. "
                    "csms cdrs export --from 2026-12-01T00:00:00Z --to 2027-01-01T00:00:00Z > december.csv",
    )
    export.add_argument("--from", dest="since", metavar="TIME", help="RFC 3339, e.g. 2026-12-01T00:00:00Z")
    export.add_argument("--to", dest="until", metavar="TIME", help="RFC 3339 (exclusive)")
    export.add_argument("--charger", metavar="ID", help="only this station's sessions")
    export.add_argument("--site", metavar="ID", help="only sessions at this site")
    export.add_argument("--format", choices=["csv", "json"], default="csv", help="default csv")

    from csms.telemetry.grafana_push import add_parser as add_dashboards_parser

    add_dashboards_parser(sub)
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    keys = ["host", "ocpp_port", "api_port", "db", "log_format", "log_level", "auto_register",
            "accept_unknown_tags", "gateway_socket"]
    out: dict[str, Any] = {k: getattr(args, k, None) for k in keys}
    tls = {k: getattr(args, f"tls_{k}", None) for k in ("cert", "key", "client_ca", "port")}
    if any(v is not None for v in tls.values()):
        out["tls"] = {k: v for k, v in tls.items() if v is not None}
    cluster = {k: getattr(args, f"cluster_{k}", getattr(args, k, None)) for k in ("bus", "node_id", "ocpp")}
    if any(v is not None for v in cluster.values()):
        out["cluster"] = {k: v for k, v in cluster.items() if v is not None}
    return out


async def _serve(settings: Settings, duration: float | None = None) -> None:
    from csms.app import CsmsApp, default_plugins
    from csms.gcpolicy import GcPolicy

    app = CsmsApp(settings, plugins=default_plugins(settings), gc_policy=GcPolicy(settings.gc.policy()))
    stop = stop_on_signals()
    try:
        await app.start()
        await wait_stopped(stop, duration)
    finally:
        await app.stop()


def cli_actor() -> str:
    """The audit log's actor for this command line: ``cli:<login name>``."""
    try:
        return f"cli:{getpass.getuser()}"
    except (OSError, KeyError):
        return f"cli:uid-{os.getuid()}"


async def _audit(
    log: AuditLog, action: str, target: str, params: Mapping[str, Any], result: str = "ok"
) -> None:
    """Record a state-changing command; ``params`` are hashed, never stored, and hold no secrets."""
    entry = AuditEntry(datetime.now(UTC), cli_actor(), action, target, digest(params), result)
    await log.record_audit(entry)


async def _stations(settings: Settings, args: argparse.Namespace) -> int:
    from csms.security.passwords import hash_password
    from csms.store.sql import SqlStore

    store = await SqlStore.open(settings.db)
    try:
        if args.action == "add":
            if 1 <= args.security_profile <= 2 and not args.password:
                raise ConfigError("--security-profile 1-2 needs --password (3 authenticates by certificate)")
            if args.password is not None and not 16 <= len(args.password) <= 40:
                raise ConfigError("--password must be 16 to 40 characters")
            await store.upsert_station(
                args.station_id, security_profile=args.security_profile,
                password_hash=hash_password(args.password) if args.password else None,
            )
            secret = "<redacted>" if args.password else None
            params = {"security_profile": args.security_profile, "password": secret}
            await _audit(store, "stations add", args.station_id, params)
            print(f"registered {args.station_id} (security profile {args.security_profile})")
        elif args.action == "list":
            for s in await store.list_stations():
                seen = s.last_seen_at.isoformat() if s.last_seen_at else "never"
                proto = s.protocol or "-"
                print(f"{s.station_id}\tprofile={s.security_profile}\tprotocol={proto}\tlast_seen={seen}")
        elif args.action == "remove":
            if not await store.delete_station(args.station_id):
                await _audit(store, "stations remove", args.station_id, {}, "not_registered")
                print(f"no station {args.station_id!r}", file=sys.stderr)
                return 1
            await _audit(store, "stations remove", args.station_id, {})
            print(f"removed {args.station_id}")
        elif args.action == "place":
            return await _place(store, args)
    finally:
        await store.close()
    return 0


async def _place(store: SqlStore, args: argparse.Namespace) -> int:
    from csms.core.sites import SITE_ID, check_group_name

    if await store.get_station(args.station_id) is None:
        raise ConfigError(f"no station {args.station_id!r}")
    if args.site and (not SITE_ID.match(args.site) or await store.sites.get_site(args.site) is None):
        raise ConfigError(f"no site {args.site!r} (create it with: csms sites add)")
    try:
        groups = [check_group_name(g) for g in args.groups] if args.groups is not None else None
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if args.site is not None:
        await store.sites.set_station_site(args.station_id, args.site or None)
    if groups is not None:
        await store.sites.set_station_groups(args.station_id, groups)
    await _audit(store, "stations place", args.station_id, {"site": args.site, "groups": groups})
    placed = await store.sites.placement(args.station_id)
    print(f"{args.station_id}: site={placed.site_id or '-'} groups={','.join(placed.groups) or '-'}")
    return 0


async def _sites(settings: Settings, args: argparse.Namespace) -> int:
    from zoneinfo import available_timezones

    from csms.core.sites import SITE_ID, Site
    from csms.store.sql import SqlStore

    store = await SqlStore.open(settings.db)
    try:
        if args.action == "add":
            if not SITE_ID.match(args.site_id):
                raise ConfigError("site id must be 1-36 letters, digits or . _ - (starting alphanumeric)")
            if args.time_zone != "UTC" and args.time_zone not in available_timezones():
                raise ConfigError(f"--time-zone {args.time_zone!r} is not an IANA time zone")
            site = Site(args.site_id, args.name, args.address, city=args.city, country=args.country,
                        operator=args.operator, time_zone=args.time_zone)
            created = await store.sites.put_site(site)
            await _audit(store, "sites add", args.site_id, {"name": args.name})
            print(f"{'created' if created else 'replaced'} site {args.site_id}")
        elif args.action == "remove":
            if not await store.sites.delete_site(args.site_id):
                print(f"no site {args.site_id!r}", file=sys.stderr)
                return 1
            await _audit(store, "sites remove", args.site_id, {})
            print(f"removed site {args.site_id}")
        else:
            for site, n in await store.sites.list_sites():
                print(f"site {site.site_id}\t{site.name}\tstations={n}")
            for name, n in await store.sites.list_groups():
                print(f"group {name}\tstations={n}")
    finally:
        await store.close()
    return 0


async def _cdrs(settings: Settings, args: argparse.Namespace) -> int:
    from csms.store.engine import Database
    from csms.store.tariffs import CdrQuery, SqlTariffs
    from csms.tariffs.export import csv_chunks, json_chunks
    from ocppj.timestamps import parse_datetime

    try:
        since = parse_datetime(args.since) if args.since else None
        until = parse_datetime(args.until) if args.until else None
    except ValueError as exc:
        raise ConfigError(f"--from/--to: {exc}") from None
    db = await Database.open(settings.db)
    try:
        query = CdrQuery(since, until, args.charger, args.site)
        chunks = csv_chunks if args.format == "csv" else json_chunks
        out = sys.stdout.buffer
        async for chunk in chunks(SqlTariffs(db), query):
            out.write(chunk)
        out.flush()
    except BrokenPipeError:  # e.g. piped into head
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    finally:
        await db.close()
    return 0


async def _tags(settings: Settings, args: argparse.Namespace) -> int:
    from csms.core.model import AuthStatus, IdTag
    from csms.store.sql import SqlStore
    from ocppj.timestamps import parse_datetime

    store = await SqlStore.open(settings.db)
    try:
        if args.action == "add":
            try:
                expiry = parse_datetime(args.expiry) if args.expiry else None
            except ValueError:
                raise ConfigError(f"--expiry {args.expiry!r} is not an RFC 3339 time") from None
            await store.put_id_tag(IdTag(args.id_tag, AuthStatus(args.status), expiry, args.parent))
            params = {"status": args.status, "expiry": args.expiry, "parent": args.parent}
            await _audit(store, "tags add", args.id_tag, params)
            print(f"id tag {args.id_tag}: {args.status}")
        elif args.action == "remove":
            if not await store.delete_id_tag(args.id_tag):
                await _audit(store, "tags remove", args.id_tag, {}, "not_found")
                print(f"no id tag {args.id_tag!r}", file=sys.stderr)
                return 1
            await _audit(store, "tags remove", args.id_tag, {})
            print(f"removed id tag {args.id_tag}")
        else:
            for t in await store.list_id_tags():
                print(f"{t.id_tag}\t{t.status.value}\texpiry={t.expiry or '-'}\tparent={t.parent or '-'}")
    finally:
        await store.close()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "dashboards":  # talks to Grafana only: no CSMS settings needed
        from csms.telemetry.grafana_push import run as push_dashboards

        return push_dashboards(args)
    try:
        settings = load_settings(args.config, _overrides(args))
        level = settings.log_level
        if args.command == "demo" and args.log_level is None and "CSMS_LOG_LEVEL" not in os.environ:
            level = "warning"  # the demo prints its own progress; per-station info lines would drown it
        configure_logging(settings.log_format, level)
        if args.command == "serve":
            run(_serve(settings))
        elif args.command == "gateway":
            from csms.gateway.process import run_gateway

            return run(run_gateway(settings, core=args.core, reuse_port=args.reuse_port,
                                    metrics_port=args.metrics_port))
        elif args.command == "demo":
            from csms.demo import run_demo

            return run(run_demo(settings, args))
        elif args.command == "stations":
            return run(_stations(settings, args))
        elif args.command == "tags":
            return run(_tags(settings, args))
        elif args.command == "sites":
            return run(_sites(settings, args))
        elif args.command == "cdrs":
            return run(_cdrs(settings, args))
    except ConfigError as exc:
        print(f"csms: {exc}", file=sys.stderr)
        return 2
    except StoreUnavailable as exc:
        print(f"csms: database error: {exc}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
