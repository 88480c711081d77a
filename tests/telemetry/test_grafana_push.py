"""``csms dashboards push`` against a small recording stand-in for Grafana's HTTP API.

Grafana itself cannot be installed here; the stand-in implements the four endpoints
the command uses, with Grafana's documented status codes.
"""

from __future__ import annotations

import argparse
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from csms.telemetry import grafana_push

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS_DIR = ROOT / "csms" / "telemetry" / "dashboards"


class FakeGrafana(BaseHTTPRequestHandler):
    """Folders, dashboards and data sources in memory; bearer token ``secret`` required."""

    state: dict[str, Any]

    def log_message(self, *args: Any) -> None:
        pass

    def _reply(self, status: int, body: Any) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _body(self) -> Any:
        return json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"null")

    def _authorised(self) -> bool:
        if self.headers.get("Authorization") != "Bearer secret":
            self._reply(401, {"message": "Unauthorized"})
            return False
        return True

    def do_GET(self) -> None:
        if not self._authorised():
            return
        folders, sources = self.state["folders"], self.state["datasources"]
        if self.path.startswith("/api/folders/"):
            uid = self.path.rsplit("/", 1)[1]
            self._reply(200, folders[uid]) if uid in folders else self._reply(404, {"message": "not found"})
        elif self.path.startswith("/api/datasources/uid/"):
            uid = self.path.rsplit("/", 1)[1]
            self._reply(200, sources[uid]) if uid in sources else self._reply(404, {"message": "not found"})
        else:
            self._reply(404, {"message": "not found"})

    def do_POST(self) -> None:
        if not self._authorised():
            return
        body = self._body()
        if self.path == "/api/folders":
            self.state["folders"][body["uid"]] = body
            self._reply(200, body)
        elif self.path == "/api/dashboards/db":
            model = body["dashboard"]
            assert body["overwrite"] is True and model["id"] is None
            self.state["dashboards"][model["uid"]] = body
            self._reply(200, {"status": "success", "uid": model["uid"], "url": f"/d/{model['uid']}/x"})
        elif self.path == "/api/datasources":
            self.state["datasources"][body["uid"]] = body
            self._reply(200, {"message": "Datasource added"})
        else:
            self._reply(404, {"message": "not found"})

    def do_PUT(self) -> None:
        if not self._authorised():
            return
        body = self._body()
        self.state["datasources"][body["uid"]] = body
        self._reply(200, {"message": "Datasource updated"})


@pytest.fixture
def grafana() -> Iterator[tuple[str, dict[str, Any]]]:
    state: dict[str, Any] = {"folders": {}, "dashboards": {}, "datasources": {}}
    handler = type("Handler", (FakeGrafana,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", state
    server.shutdown()
    server.server_close()


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    grafana_push.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["dashboards", "push", *argv])


def test_push_uploads_every_dashboard_into_the_folder_twice_idempotently(
    grafana: tuple[str, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    url, state = grafana
    args = _args("--grafana-url", url, "--token", "secret", "--dir", str(DASHBOARDS_DIR),
                 "--datasource-url", "http://influxdb:8086")
    assert grafana_push.run(args) == 0
    assert grafana_push.run(args) == 0  # second push overwrites, updates the data source
    uids = {json.loads(p.read_text())["uid"] for p in DASHBOARDS_DIR.glob("*.json")}
    assert set(state["dashboards"]) == uids and len(uids) == 4
    assert {d["folderUid"] for d in state["dashboards"].values()} == {"csms"}
    assert state["folders"]["csms"]["title"] == "CSMS"
    ds = state["datasources"][grafana_push.DATASOURCE_UID]
    assert (ds["type"], ds["url"], ds["database"]) == ("influxdb", "http://influxdb:8086", "csms")
    assert capsys.readouterr().out.count("pushed ") == 8


def test_push_reports_refusals_and_unreachable_grafana(
    grafana: tuple[str, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    url, state = grafana
    assert grafana_push.run(_args("--grafana-url", url, "--token", "wrong")) == 1
    assert "HTTP 401" in capsys.readouterr().err and not state["dashboards"]
    assert grafana_push.run(_args("--grafana-url", "http://127.0.0.1:9", "--token", "secret")) == 1
    assert "cannot reach Grafana" in capsys.readouterr().err
