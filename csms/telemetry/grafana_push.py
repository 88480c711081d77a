"""``csms dashboards push``: upload the dashboards (and optionally the InfluxDB data source) to Grafana.

Plain HTTP against Grafana's documented API (``/api/folders``, ``/api/dashboards/db``,
``/api/datasources``) with the standard library: ``grafana-client`` would pull in
``niquests``/``urllib3-future``, which replaces ``urllib3`` under ``influxdb-client``.

    csms dashboards push --grafana-url http://127.0.0.1:3000 --token $GRAFANA_TOKEN
    csms dashboards push --dry-run        # list what would be uploaded, contact nobody
    CSMS_GRAFANA_URL=... CSMS_GRAFANA_USER=admin CSMS_GRAFANA_PASSWORD=... csms dashboards push \\
        --datasource-url http://influxdb:8086 --database csms
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

DATASOURCE_UID = "csms-influxdb"


class GrafanaError(Exception):
    """Grafana refused a request or could not be reached."""


@dataclass(frozen=True, slots=True)
class Grafana:
    """A Grafana endpoint and its credentials (API token, or user and password)."""

    url: str
    token: str = ""
    user: str = ""
    password: str = ""
    timeout_s: float = 10.0

    def headers(self) -> dict[str, str]:
        h = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        elif self.user:
            h["Authorization"] = "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        return h

    def request(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> tuple[int, Any]:
        """(status, decoded JSON) of one API call; GrafanaError when unreachable."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url.rstrip("/") + path, data=data, method=method,
                                     headers=self.headers())
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return int(resp.status), _json(resp.read())
        except urllib.error.HTTPError as exc:
            return int(exc.code), _json(exc.read())
        except (urllib.error.URLError, OSError) as exc:
            raise GrafanaError(f"cannot reach Grafana at {self.url}: {exc}") from None


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return raw.decode(errors="replace")


def _check(status: int, body: Any, what: str) -> None:
    if status >= 300:
        message = body.get("message") if isinstance(body, dict) else body
        raise GrafanaError(f"{what}: HTTP {status} {message}")


def dashboard_files(directory: Path) -> list[Path]:
    """``directory/*.json``, sorted by file name; GrafanaError when there is none."""
    files = sorted(directory.glob("*.json"))
    if not files:
        raise GrafanaError(f"no dashboards (*.json) in {directory}")
    return files


def load_dashboards(directory: Path) -> list[dict[str, Any]]:
    """The dashboard models in ``directory/*.json``, sorted by file name."""
    return [json.loads(p.read_text(encoding="utf-8")) for p in dashboard_files(directory)]


def ensure_folder(g: Grafana, uid: str, title: str) -> None:
    """Create the folder unless it exists."""
    status, body = g.request("GET", f"/api/folders/{uid}")
    if status == 200:
        return
    status, body = g.request("POST", "/api/folders", {"uid": uid, "title": title})
    if status not in (200, 409, 412):
        _check(status, body, f"create folder {title!r}")


def ensure_datasource(g: Grafana, url: str, database: str, user: str = "", password: str = "") -> None:
    """Create or update the InfluxQL data source ``csms-influxdb`` (made the default)."""
    ds: dict[str, Any] = {
        "uid": DATASOURCE_UID, "name": "CSMS InfluxDB", "type": "influxdb", "access": "proxy", "url": url,
        "database": database, "isDefault": True, "jsonData": {"httpMode": "GET", "dbName": database},
    }
    if user:
        ds.update(user=user, secureJsonData={"password": password})
    status, _ = g.request("GET", f"/api/datasources/uid/{DATASOURCE_UID}")
    if status == 200:
        status, body = g.request("PUT", f"/api/datasources/uid/{DATASOURCE_UID}", ds)
    else:
        status, body = g.request("POST", "/api/datasources", ds)
    _check(status, body, "data source")


def push_dashboard(g: Grafana, dashboard: Mapping[str, Any], folder_uid: str) -> str:
    """Upload one dashboard (overwriting the same uid); returns its URL in Grafana."""
    model = dict(dashboard)
    model["id"] = None
    status, body = g.request("POST", "/api/dashboards/db", {
        "dashboard": model, "folderUid": folder_uid, "overwrite": True, "message": "csms dashboards push",
    })
    _check(status, body, f"dashboard {dashboard.get('title')!r}")
    path = body.get("url", "") if isinstance(body, dict) else ""
    return g.url.rstrip("/") + str(path)


def push(g: Grafana, directory: Path, *, folder_uid: str = "csms", folder_title: str = "CSMS") -> list[str]:
    """Upload every dashboard of ``directory`` into the folder; returns their URLs."""
    dashboards = load_dashboards(directory)
    ensure_folder(g, folder_uid, folder_title)
    return [push_dashboard(g, d, folder_uid) for d in dashboards]


def default_directory() -> Path:
    """The dashboards shipped in the package (``csms/telemetry/dashboards/``)."""
    return Path(str(resources.files("csms.telemetry") / "dashboards"))


# --- command line ---------------------------------------------------------------------------

def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Register ``dashboards push`` on the ``csms`` sub-parsers."""
    env = os.environ.get
    dash = sub.add_parser("dashboards", help="upload the Grafana dashboards to a running Grafana")
    dsub = dash.add_subparsers(dest="action", required=True, metavar="ACTION")
    p = dsub.add_parser("push", help="create or overwrite the CSMS dashboards in Grafana",
                        description="Upload the dashboards into a Grafana folder (same uid: overwrite).")
    p.add_argument("--grafana-url", default=env("CSMS_GRAFANA_URL", "http://127.0.0.1:3000"),
                   help="Grafana base URL (CSMS_GRAFANA_URL, default http://127.0.0.1:3000)")
    p.add_argument("--token", default=env("CSMS_GRAFANA_TOKEN", ""),
                   help="service-account token (CSMS_GRAFANA_TOKEN)")
    p.add_argument("--user", default=env("CSMS_GRAFANA_USER", ""), help="basic-auth user (CSMS_GRAFANA_USER)")
    p.add_argument("--password", default=env("CSMS_GRAFANA_PASSWORD", ""),
                   help="basic-auth password (CSMS_GRAFANA_PASSWORD)")
    p.add_argument("--dir", type=Path, default=None,
                   help="dashboard JSON directory (default: the dashboards shipped with csms)")
    p.add_argument("--dry-run", action="store_true",
                   help="list the dashboards that would be uploaded; contact nobody")
    p.add_argument("--folder", default="CSMS", help="Grafana folder title (uid: csms)")
    p.add_argument("--datasource-url", default="",
                   help="also create/update the InfluxDB (InfluxQL) data source with this URL")
    p.add_argument("--database", default=env("CSMS_INFLUX_DATABASE", "csms"), help="InfluxDB database")
    p.add_argument("--influx-user", default=env("CSMS_INFLUX_USERNAME", ""))
    p.add_argument("--influx-password", default=env("CSMS_INFLUX_PASSWORD", ""))
    return p


def run(args: argparse.Namespace) -> int:
    """Execute ``csms dashboards push``; 0 on success, 1 with a message on failure."""
    directory: Path = args.dir or default_directory()
    if args.dry_run:
        return _list(directory)
    g = Grafana(args.grafana_url, args.token, args.user, args.password)
    try:
        if args.datasource_url:
            ensure_datasource(g, args.datasource_url, args.database, args.influx_user, args.influx_password)
            print(f"data source {DATASOURCE_UID} -> {args.datasource_url} ({args.database})")
        for url in push(g, directory, folder_title=args.folder):
            print(f"pushed {url}")
    except GrafanaError as exc:
        print(f"csms: {exc}", file=sys.stderr)
        return 1
    return 0


def _list(directory: Path) -> int:
    """Print each dashboard of ``directory`` (uid, title, file) without contacting Grafana."""
    try:
        files = dashboard_files(directory)
    except GrafanaError as exc:
        print(f"csms: {exc}", file=sys.stderr)
        return 1
    for path in files:
        model = json.loads(path.read_text(encoding="utf-8"))
        print(f"{model.get('uid', '?')}\t{model.get('title', '?')}\t{path}")
    return 0
