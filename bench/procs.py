"""Process helpers for benchmarks: start servers pinned to a core, read their CPU time and memory."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pinned(cmd: list[str], cpu: int | None) -> list[str]:
    """Prefix ``cmd`` with ``taskset -c cpu`` when there is more than one core."""
    if cpu is None or (os.cpu_count() or 1) < 2 or shutil.which("taskset") is None:
        return cmd
    return ["taskset", "-c", str(cpu), *cmd]


def wait_port(port: int, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"port {port} not open after {timeout_s}s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class Server:
    """A CSMS (ours or the baseline) in its own process."""

    def __init__(
        self, kind: str, *, cpu: int | None = 0, extra: list[str] | None = None, db: str | None = None
    ) -> None:
        self.kind = kind
        self.port = free_port()
        self.api_port = free_port()
        self.tmp = tempfile.mkdtemp(prefix="csms-bench-")
        self.db = db or os.path.join(self.tmp, "bench.sqlite3")
        if kind == "csms":
            cmd = [
                sys.executable,
                "-m",
                "csms",
                "serve",
                "--db",
                self.db,
                "--ocpp-port",
                str(self.port),
                "--api-port",
                str(self.api_port),
                "--auto-register",
                "--log-level",
                "warning",
                "--log-format",
                "json",
                *(extra or []),
            ]
        else:
            cmd = [sys.executable, "-m", "bench.baseline.central_system", "--port", str(self.port)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("CSMS_")}
        self.proc = subprocess.Popen(
            pinned(cmd, cpu),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(self.tmp, "server.log"), "wb"),
        )
        wait_port(self.port)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ocpp"

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)

    def rss(self) -> int:
        return rss_bytes(self.proc.pid)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        shutil.rmtree(self.tmp, ignore_errors=True)


def run_loadgen(
    url: str,
    *,
    protocol: str,
    connections: int,
    duration: float,
    rate: float = 0.0,
    warmup: float = 1.0,
    prefix: str = "LG",
    cpu: int | None = 1,
) -> dict[str, object]:
    """Run ``bench.loadgen`` in its own process (pinned to ``cpu``) and return its JSON result."""
    cmd = [
        sys.executable,
        "-m",
        "bench.loadgen",
        "--url",
        url,
        "--protocol",
        protocol,
        "--connections",
        str(connections),
        "--duration",
        str(duration),
        "--rate",
        str(rate),
        "--warmup",
        str(warmup),
        "--prefix",
        prefix,
    ]
    out = subprocess.run(pinned(cmd, cpu), capture_output=True, check=True, timeout=duration + warmup + 120)
    result: dict[str, object] = orjson.loads(out.stdout.splitlines()[-1])
    return result
