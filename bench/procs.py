"""Process helpers for benchmarks: servers pinned to a core, load generators on the other,
their CPU time and memory from /proc, and cleanup of every process group started here."""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import queue
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from simulators.host import steal_seconds
from simulators.runtime import raise_nofile

CLK_TCK = os.sysconf("SC_CLK_TCK")
_children: set[subprocess.Popen[bytes]] = set()


def _kill_children() -> None:
    for proc in list(_children):
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                proc.wait(5)
        _children.discard(proc)


atexit.register(_kill_children)


def _child_setup() -> None:
    """``preexec_fn``: a high fd limit for servers and load generators."""
    raise_nofile()


def spawn(cmd: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    """Start ``cmd`` in its own process group with a raised fd limit; killed at exit."""
    proc: subprocess.Popen[bytes] = subprocess.Popen(
        cmd, start_new_session=True, preexec_fn=_child_setup, **kwargs
    )
    _children.add(proc)
    return proc


def private_host() -> str:
    """A loopback address of our own (127.x.y.1), so that another program's client that keeps
    reconnecting to a port it once used cannot wander into a benchmark's server."""
    return f"127.{random.randint(16, 250)}.{random.randint(0, 255)}.1"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def pinned(cmd: list[str], cpu: int | None) -> list[str]:
    """Prefix ``cmd`` with ``taskset -c cpu`` when there is more than one core."""
    if cpu is None or (os.cpu_count() or 1) < 2 or shutil.which("taskset") is None:
        return cmd
    return ["taskset", "-c", str(cpu), *cmd]


def wait_port(
    port: int, timeout_s: float = 20.0, proc: subprocess.Popen[bytes] | None = None, host: str = "127.0.0.1"
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening on {port}")
        with socket.socket() as s:
            if s.connect_ex((host, port)) == 0:
                return
        time.sleep(0.02)
    raise TimeoutError(f"port {port} not open after {timeout_s}s")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def sched_wait_seconds(pid: int) -> float:
    """Time the process's threads spent runnable but waiting for a CPU (other load on the core)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, IndexError, ValueError):
            total += int((task / "schedstat").read_text().split()[1])
    return total / 1e9


class StealMeter:
    """The share of a window (0.0-1.0) that the hypervisor gave core ``cpu`` (None: every core,
    averaged) to other tenants. Benchmarks report it: a few per cent already move CPU per call
    and latency, and cloud VMs can lose far more under a neighbour's load."""

    def __init__(self, cpu: int | None = 0) -> None:
        self.cpu = cpu
        self._start = (steal_seconds(cpu) or 0.0, time.monotonic())

    def share(self) -> float:
        stolen = (steal_seconds(self.cpu) or 0.0) - self._start[0]
        cores = 1 if self.cpu is not None else (os.cpu_count() or 1)
        return round(stolen / max(1e-9, (time.monotonic() - self._start[1]) * cores), 3)


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def load_average() -> str:
    """The 1/5/15-minute load averages, e.g. ``"3.1 2.9 2.5"``."""
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _toml(config: dict[str, dict[str, Any]]) -> str:
    lines = []
    for section, values in config.items():
        lines.append(f"[{section}]")
        lines += [f"{k} = {json.dumps(v)}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


class Server:
    """A CSMS (ours or the baseline) in its own process group, pinned to ``cpu``.

    It listens on ``host`` (default: a private 127.x.y.1 address). ``host``, ``db``, ``port``
    and ``api_port`` may be given to restart a server on the same address, database and ports;
    ``config`` (TOML sections as dicts, e.g. ``{"limits": {"accept_rate": 0}}``) is written to
    a file and passed with ``--config``; ``profile`` runs it under cProfile (stop it with
    ``interrupt()``); ``launcher`` replaces ``python -m csms`` (experiments). A ``tls`` section
    in ``config`` makes it serve ``wss://`` only, on ``port`` (``url`` is then ``wss://``).
    """

    def __init__(
        self, kind: str, *, cpu: int | None = 0, extra: list[str] | None = None, db: str | None = None,
        port: int | None = None, api_port: int | None = None,
        config: dict[str, dict[str, Any]] | None = None, profile: str | None = None,
        launcher: list[str] | None = None, host: str | None = None,
    ) -> None:
        self.kind = kind
        self.core = cpu  # the core it is pinned to (None: any)
        self.host = host or private_host()
        self.port = port or free_port(self.host)
        self.api_port = api_port or free_port(self.host)
        self.tmp = tempfile.mkdtemp(prefix="csms-bench-")
        self.db = db or os.path.join(self.tmp, "bench.sqlite3")
        extra = list(extra or [])
        self.scheme = "ws"
        if config and "tls" in config:
            config = {**config, "tls": {**config["tls"], "port": self.port, "plain": False}}
            self.scheme = "wss"
        if config:
            path = os.path.join(self.tmp, "csms.toml")
            Path(path).write_text(_toml(config))
            extra += ["--config", path]
        py = [sys.executable, *(["-m", "cProfile", "-o", profile] if profile else [])]
        if kind == "csms":
            cmd = [
                *(launcher or [*py, "-m", "csms"]), "serve", "--db", self.db, "--host", self.host,
                "--ocpp-port", str(self.port),
                "--api-port", str(self.api_port), "--auto-register", "--log-level", "warning",
                "--log-format", "json", *extra,
            ]
        else:
            cmd = [*py, "-m", "bench.baseline.central_system", "--host", self.host, "--port", str(self.port)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("CSMS_")}
        self.log_path = os.path.join(self.tmp, "server.log")
        with open(self.log_path, "wb") as log:
            self.proc = spawn(pinned(cmd, cpu), env=env, stdout=subprocess.DEVNULL, stderr=log)
        self.started_at = time.monotonic()
        wait_port(self.port, proc=self.proc, host=self.host)
        self.listening_s = time.monotonic() - self.started_at

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}/ocpp"

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.api_port}"

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)

    def rss(self) -> int:
        return rss_bytes(self.proc.pid)

    def sched_wait(self) -> float:
        return sched_wait_seconds(self.proc.pid)

    def get_json(self, path: str, timeout_s: float = 30.0) -> Any:
        """GET ``path`` from the operator API (loopback needs no token)."""
        with urllib.request.urlopen(self.api_url + path, timeout=timeout_s) as resp:
            return orjson.loads(resp.read())

    def kill(self) -> None:
        """SIGKILL the whole process group (``kill -9``); keeps the database."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        _children.discard(self.proc)

    def interrupt(self, timeout_s: float = 60.0) -> None:
        """SIGINT (a profiler writes its output), then wait."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()
        _children.discard(self.proc)

    def stop(self, *, keep_files: bool = False) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        _children.discard(self.proc)
        if not keep_files:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def log_tail(self, lines: int = 5) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(Path(self.log_path).read_text(errors="replace").splitlines()[-lines:])
        return ""


def _loadgen_cmd(url: str, protocol: str, prefix: str, source_ips: int, extra: list[str]) -> list[str]:
    return [
        sys.executable, "-m", "bench.loadgen", "--url", url, "--protocol", protocol, "--prefix", prefix,
        "--source-ips", str(source_ips), *extra,
    ]


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
    source_ips: int = 8,
    on_event: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run ``bench.loadgen`` (throughput mode) in its own process pinned to ``cpu``; its JSON result.

    ``on_event("window_start" | "window_end")`` is called as the measured window opens and closes.
    """
    extra = ["--connections", str(connections), "--duration", str(duration), "--rate", str(rate),
             "--warmup", str(warmup)]
    proc = spawn(pinned(_loadgen_cmd(url, protocol, prefix, source_ips, extra), cpu),
                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    timer = threading.Timer(duration + warmup + 120, lambda: os.killpg(proc.pid, signal.SIGKILL))
    timer.start()
    result: dict[str, Any] = {}
    try:
        assert proc.stdout is not None and proc.stderr is not None
        for line in proc.stdout:
            msg = orjson.loads(line)
            if "event" in msg:
                if on_event is not None:
                    on_event(str(msg["event"]))
            else:
                result = msg
        err = proc.stderr.read()
        proc.wait(30)
    finally:
        timer.cancel()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        _children.discard(proc)
    if proc.returncode != 0 or not result:
        raise RuntimeError(f"loadgen failed ({proc.returncode}): {err.decode(errors='replace')[-800:]}")
    return result


def nofile_limit(pid: int) -> int:
    """The open-files limit of a running process."""
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            return int(line.split()[3])
    return 1024


GC_REPORT_MS = 20.0  # the node logs collector pauses from this long (read back by gc_pauses)


class Node:
    """The CSMS under test: one server process, or a core and ``gateways`` gateway processes
    that share one port, every process pinned to core 0."""

    def __init__(
        self, gateways: int, config: dict[str, dict[str, Any]] | None, db: str | None = None,
        host: str | None = None,
    ) -> None:
        self.sock_dir = tempfile.mkdtemp(prefix="csms-gw-") if gateways else ""
        sock = os.path.join(self.sock_dir, "core.sock")
        config = {**(config or {}), "gc": {**(config or {}).get("gc", {}), "slow_pause_ms": GC_REPORT_MS}}
        self.core = Server("csms", config=config, db=db, host=host,
                           extra=["--gateway-socket", sock] if gateways else None)
        self.gateways: list[subprocess.Popen[bytes]] = []
        self.logs = [self.core.log_path]
        self.url = self.core.url
        if gateways:
            host = self.core.host
            port = free_port(host)
            conf = os.path.join(self.sock_dir, "csms.toml")
            Path(conf).write_text(_toml(config))
            env = {k: v for k, v in os.environ.items() if not k.startswith("CSMS_")}
            for i in range(gateways):
                cmd = [sys.executable, "-m", "csms", "gateway", "--core", sock, "--host", host,
                       "--ocpp-port", str(port), "--reuse-port", "--log-level", "warning",
                       "--log-format", "json", "--config", conf]
                self.logs.append(os.path.join(self.sock_dir, f"gateway-{i}.log"))
                with open(self.logs[-1], "wb") as log:
                    proc = spawn(pinned(cmd, 0), env=env, stdout=subprocess.DEVNULL, stderr=log)
                self.gateways.append(proc)
            wait_port(port, host=host)
            time.sleep(1.0)  # every gateway linked and listening
            self.url = f"{self.core.scheme}://{host}:{port}/ocpp"

    def log_marks(self) -> list[int]:
        """Where every process's log ends now (for ``gc_pauses``)."""
        return [os.path.getsize(p) if os.path.exists(p) else 0 for p in self.logs]

    def gc_pauses(self, marks: list[int]) -> list[tuple[str, int, float, float]]:
        """Collector pauses of at least ``GC_REPORT_MS`` logged since ``marks``:
        (process, generation, ms, CPU ms); a thaw counts as generation 3."""
        out: list[tuple[str, int, float, float]] = []
        for k, (path, mark) in enumerate(zip(self.logs, marks, strict=True)):
            with contextlib.suppress(OSError), open(path, "rb") as f:
                f.seek(mark)
                for line in f:
                    if b'"gc ' not in line:
                        continue
                    with contextlib.suppress(ValueError):
                        e = orjson.loads(line)
                        gen = 3 if e["event"] == "gc thaw" else int(e["generation"])
                        out.append(("core" if k == 0 else f"gw{k}", gen, float(e["pause_ms"]),
                                    float(e.get("cpu_ms", e["pause_ms"]))))
        return out

    def _pids(self) -> list[int]:
        return [self.core.proc.pid, *(g.pid for g in self.gateways)]

    def rss(self) -> int:
        return sum(rss_bytes(pid) for pid in self._pids())

    def gateway_rss(self) -> int:
        return sum(rss_bytes(g.pid) for g in self.gateways)

    def cpu(self) -> float:
        return sum(cpu_seconds(pid) for pid in self._pids())

    def core_cpu(self) -> float:
        return cpu_seconds(self.core.proc.pid)

    def ceiling(self) -> int:
        """Stations the node may hold: the holders' open-files limits (a margin kept)."""
        if not self.gateways:
            return nofile_limit(self.core.proc.pid) - 100
        return sum(nofile_limit(g.pid) - 400 for g in self.gateways)  # SO_REUSEPORT spreads unevenly

    def stop(self) -> None:
        for g in self.gateways:
            g.kill()
            g.wait(10)
        self.core.kill()
        self.core.stop()
        if self.sock_dir:
            shutil.rmtree(self.sock_dir, ignore_errors=True)


class HoldLoadgen:
    """``bench.loadgen --mode hold`` in its own process: send a command, get its JSON answer."""

    def __init__(
        self, url: str, *, protocol: str = "mixed", prefix: str = "HOLD", cpu: int | None = 1,
        source_ips: int = 16, backoff: tuple[float, float, int] = (1.0, 5.0, 5), password: str | None = None,
        tls_args: list[str] | None = None,
    ) -> None:
        extra = ["--mode", "hold", "--wait-min", str(backoff[0]), "--random-range", str(backoff[1]),
                 "--repeat-times", str(backoff[2]), *(["--password", password] if password else []),
                 *(tls_args or [])]
        self.proc = spawn(pinned(_loadgen_cmd(url, protocol, prefix, source_ips, extra), cpu),
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self._lines: queue.Queue[bytes] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        self.ready = self._read(30.0)

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(b"")

    def _read(self, timeout_s: float) -> dict[str, Any]:
        try:
            line = self._lines.get(timeout=timeout_s)
        except queue.Empty:
            raise TimeoutError(f"load generator silent for {timeout_s:.0f}s") from None
        if not line:
            raise RuntimeError(f"load generator exited ({self.proc.poll()})")
        answer: dict[str, Any] = orjson.loads(line)
        if answer.get("event") == "error":
            raise RuntimeError(f"load generator: {answer.get('error')}")
        return answer

    def command(self, wait_s: float = 600.0, **cmd: Any) -> dict[str, Any]:
        """Send ``cmd`` (JSON) and wait up to ``wait_s`` for its answer."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(orjson.dumps(cmd) + b"\n")
        self.proc.stdin.flush()
        return self._read(wait_s)

    def rss(self) -> int:
        return rss_bytes(self.proc.pid)

    def close(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(Exception):
                self.command(wait_s=30.0, cmd="quit")
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        _children.discard(self.proc)
