"""Private, restartable InfluxDB 1.x, VictoriaMetrics and Mosquitto servers on free loopback ports.

Debian packages: ``influxdb`` (influxd 1.6.7), ``victoria-metrics``, ``mosquitto``.
Each server lives in its own temporary directory; ``stop()``/``start()`` keep the data
(used by the outage tests). Also used by ``bench/telemetry.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _binary(name: str, package: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin")
    if path is None:
        raise FileNotFoundError(f"{name} not found: apt-get install -y {package}")
    return path


def _http(method: str, url: str, body: bytes | None = None, timeout: float = 10) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return int(resp.status), bytes(resp.read())
    except urllib.error.HTTPError as exc:
        return int(exc.code), bytes(exc.read())


class _Process:
    """A server process with a readiness check, restartable on the same port."""

    name = "server"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = root / f"{self.name}.log"

    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        raise NotImplementedError

    def start(self, timeout_s: float = 20.0) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, cwd=self.root)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log.read_text()[-2000:]}")
            try:
                if self.ready():
                    return
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"{self.name} not ready after {timeout_s}s: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


class InfluxServer(_Process):
    """influxd 1.x: HTTP and the meta/RPC bind on loopback only; no reporting, no self-monitoring."""

    name = "influxd"

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.rpc_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.config = root / "influxdb.conf"
        self.config.write_text(
            f'reporting-disabled = true\nbind-address = "127.0.0.1:{self.rpc_port}"\n'
            f'[meta]\n  dir = "{root}/meta"\n'
            f'[data]\n  dir = "{root}/data"\n  wal-dir = "{root}/wal"\n  query-log-enabled = false\n'
            '  trace-logging-enabled = false\n'
            f'[http]\n  bind-address = "127.0.0.1:{self.port}"\n  log-enabled = false\n'
            '[monitor]\n  store-enabled = false\n[subscriber]\n  enabled = false\n'
            '[continuous_queries]\n  enabled = false\n[logging]\n  level = "warn"\n'
        )

    def command(self) -> list[str]:
        return [_binary("influxd", "influxdb"), "-config", str(self.config)]

    def ready(self) -> bool:
        return _http("GET", f"{self.url}/ping", timeout=1)[0] == 204

    def query(self, q: str, db: str = "csms") -> list[dict[str, Any]]:
        """InfluxQL; the ``series`` of the first statement ([] when empty)."""
        params = urllib.parse.urlencode({"db": db, "q": q, "epoch": "ns"})
        status, body = _http("POST", f"{self.url}/query?{params}")
        data = json.loads(body)
        if status != 200 or "error" in data["results"][0]:
            raise AssertionError(f"query failed ({status}): {q}: {body[:500]!r}")
        return list(data["results"][0].get("series", []))

    def create_database(self, db: str = "csms") -> None:
        self.query(f'CREATE DATABASE "{db}"', db="")

    def rows(self, q: str, db: str = "csms") -> list[dict[str, Any]]:
        """Rows of all series of a query as dicts (tags merged in)."""
        out = []
        for series in self.query(q, db):
            for values in series["values"]:
                row = dict(zip(series["columns"], values, strict=True))
                row.update(series.get("tags", {}))
                out.append(row)
        return out


class VictoriaServer(_Process):
    """VictoriaMetrics: accepts InfluxDB v2 writes at /api/v2/write."""

    name = "victoria-metrics"

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.url = f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        return [
            _binary("victoria-metrics", "victoria-metrics"), f"-httpListenAddr=127.0.0.1:{self.port}",
            f"-storageDataPath={self.root}/data", "-retentionPeriod=100y", "-loggerLevel=ERROR",
            "-search.latencyOffset=0s", "-search.disableCache",
        ]

    def ready(self) -> bool:
        return _http("GET", f"{self.url}/health", timeout=1)[0] == 200

    def export(self, match: str) -> list[dict[str, Any]]:
        """``/api/v1/export`` rows (``metric``, ``values``, ``timestamps`` in ms) after a flush."""
        _http("GET", f"{self.url}/internal/force_flush")
        params = urllib.parse.urlencode({"match[]": match})
        status, body = _http("GET", f"{self.url}/api/v1/export?{params}")
        assert status == 200, body[:500]
        return [json.loads(line) for line in body.splitlines() if line.strip()]


class MosquittoServer(_Process):
    """A private Mosquitto 2 broker, anonymous, optionally persistent across restarts.

    With ``tls`` (PEM paths: ``cafile``, ``certfile``, ``keyfile``, and ``require_certificate``
    "true"/"false") it listens with TLS only, and ``url`` is ``mqtts://``.
    """

    name = "mosquitto"

    def __init__(self, root: Path, *, persistent: bool = False, tls: dict[str, str] | None = None) -> None:
        super().__init__(root)
        self.url = f"{'mqtts' if tls else 'mqtt'}://127.0.0.1:{self.port}"
        self.config = root / "mosquitto.conf"
        persistence = (
            f"persistence true\npersistence_location {root}/\nautosave_interval 1\n" if persistent
            else "persistence false\n"
        )
        tls_lines = "".join(f"{k} {v}\n" for k, v in (tls or {}).items())
        if tls and os.geteuid() == 0:  # as root, mosquitto drops to its own user, which cannot read our files
            tls_lines = "user root\n" + tls_lines
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\n{tls_lines}allow_anonymous true\n{persistence}"
            "log_dest stderr\nlog_type error\nlog_type warning\n"
        )

    def command(self) -> list[str]:
        return [_binary("mosquitto", "mosquitto"), "-c", str(self.config)]

    def ready(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=1):
            return True
