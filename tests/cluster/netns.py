"""A test cluster of hosts made of Linux network namespaces on one bridge (needs root and ``ip``).

Every node is a namespace with its own address on a private /24 (``10.231.X.0/24``, X picked at
random among the subnets nobody here uses); the bridge has ``.1`` in the root namespace, so the test
process reaches every node directly. The ``infra`` node runs a private Mosquitto (MQTT v5) and a
private PostgreSQL on its own address::

    with Cluster.start(tmp_dir) as cluster:
        core = cluster.node("core1")
        proc = core.spawn([sys.executable, "-m", "csms", "serve", "--host", core.addr, ...])
        proc.wait_http(f"http://{core.addr}:8080/healthz")
        proc.kill9()

Names carry a run id (``csmst-<run>-<node>`` namespaces, ``cs<run>br`` bridge, ``cs<run>v<i>``
veths) and the run is recorded in ``/run/csms-netns/<run>.json`` with its owner's pid. Everything
is removed on every way out: ``close()`` (the fixtures' teardown, also after a test timeout or
Ctrl-C), an ``atexit`` hook, and a reaper process that waits for the owner's end on a pipe and
cleans up if the owner dies without doing it (``kill -9``, ``os._exit``). Runs whose owner is gone
are removed when the next cluster starts. Cleaning a run kills every process inside its
namespaces (``ip netns pids``), then deletes the namespaces, the bridge and the veths.

Standard library only: the reaper runs this file as a script.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import glob
import json
import os
import pwd
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType

NS_PREFIX = "csmst-"
STATE_DIR = Path("/run/csms-netns")
SUBNET_BASE = "10.231"
INFRA = "infra"
MQTT_PORT = 1883
PG_PORT = 5432
_RUN = re.compile(r"^[0-9a-f]{6}$")
_NS = re.compile(rf"^{NS_PREFIX}([0-9a-f]{{6}})-")
_LINK = re.compile(r"^cs([0-9a-f]{6})(?:br|v\d+|p\d+)$")
_NODE = re.compile(r"^[a-z][a-z0-9]{0,15}$")


class NetnsError(RuntimeError):
    """A namespace command failed, or a process or port did not come up."""


def _ip(*args: str, check: bool = True) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and done.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def usable() -> str | None:
    """Why namespaces cannot be made here (None when they can)."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is missing"
    return None


# --- runs: recording, finding and removing ---------------------------------------------------------

def _start_time(pid: int) -> str | None:
    """The process's start time in clock ticks (tells a live owner from a reused pid)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def _alive(run: str) -> bool:
    try:
        state = json.loads((STATE_DIR / f"{run}.json").read_text())
    except (OSError, ValueError):
        return False
    return bool(_start_time(int(state["pid"])) == state["started"])


def _namespaces() -> list[str]:
    out = _ip("netns", "list", check=False)
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _links() -> list[str]:
    out = _ip("-o", "link", "show", check=False)
    return [m.group(1).split("@")[0] for m in re.finditer(r"^\d+: ([^:]+):", out, re.MULTILINE)]


def _kill_inside(ns: str) -> None:
    """SIGKILL every process in namespace ``ns`` until none is left (bounded)."""
    for _ in range(50):
        pids = [int(p) for p in _ip("netns", "pids", ns, check=False).split()]
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


def _stop_postgres(ns: str) -> None:
    """Immediate shutdown of a postmaster in ``ns`` (SIGQUIT), so it frees its shared memory."""
    for pid in _ip("netns", "pids", ns, check=False).split():
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}/comm").read_text().strip() == "postgres" and \
                    Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[1:2] == [b"-D"]:
                os.kill(int(pid), signal.SIGQUIT)
                for _ in range(40):
                    if not Path(f"/proc/{pid}").exists():
                        break
                    time.sleep(0.05)


def remove_run(run: str) -> None:
    """Remove everything of ``run``: processes, namespaces, links, its state file and database files
    (process logs stay in the directory the run was given)."""
    if not _RUN.match(run):
        raise ValueError(f"not a run id: {run!r}")
    mine = [ns for ns in _namespaces() if ns.startswith(f"{NS_PREFIX}{run}-")]
    for ns in mine:
        _stop_postgres(ns)
    for ns in mine:
        _kill_inside(ns)
        _ip("netns", "delete", ns, check=False)
    for link in _links():
        m = _LINK.match(link)
        if m and m.group(1) == run:
            _ip("link", "delete", link, check=False)
    state = STATE_DIR / f"{run}.json"
    with contextlib.suppress(OSError, ValueError, KeyError):
        pg_root = Path(json.loads(state.read_text())["pg_root"])
        if pg_root.name.startswith("csms-netns-pg-"):
            shutil.rmtree(pg_root, ignore_errors=True)
    state.unlink(missing_ok=True)


def remove_stale_runs() -> list[str]:
    """Remove the runs whose owner process is gone; returns their ids."""
    runs = {m.group(1) for ns in _namespaces() if (m := _NS.match(ns))}
    runs |= {m.group(1) for link in _links() if (m := _LINK.match(link))}
    runs |= {p.stem for p in STATE_DIR.glob("*.json") if _RUN.match(p.stem)} if STATE_DIR.exists() else set()
    stale = sorted(run for run in runs if not _alive(run))
    for run in stale:
        remove_run(run)
    return stale


def _used_subnets() -> set[int]:
    used = {int(m.group(1)) for m in re.finditer(rf"inet {re.escape(SUBNET_BASE)}\.(\d+)\.",
                                                 _ip("-o", "addr", "show", check=False))}
    for path in STATE_DIR.glob("*.json") if STATE_DIR.exists() else ():
        with contextlib.suppress(OSError, ValueError, KeyError):
            used.add(int(json.loads(path.read_text())["subnet"]))
    return used


# --- processes -------------------------------------------------------------------------------------

class Proc:
    """A process started in a node's namespace, in its own process group; output goes to files."""

    def __init__(self, node: Node, argv: Sequence[str], env: Mapping[str, str] | None, name: str) -> None:
        self.node = node
        self.argv = list(argv)
        self.name = name
        logs = node.cluster.tmp / "logs"
        logs.mkdir(exist_ok=True)
        self.stdout_path = logs / f"{name}.out"
        self.stderr_path = logs / f"{name}.err"
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.popen = subprocess.Popen(
                ["ip", "netns", "exec", node.ns, *self.argv], stdin=subprocess.DEVNULL, stdout=out,
                stderr=err, env=dict(os.environ if env is None else env), cwd=node.home,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def running(self) -> bool:
        return self.popen.poll() is None

    def _signal_group(self, sig: int) -> None:
        if self.popen.returncode is not None:  # reaped: its pid (and group id) may be another's now
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, sig)

    def kill9(self) -> None:
        """SIGKILL the process and its group, and reap it."""
        self._signal_group(signal.SIGKILL)
        self.popen.wait(10)

    def terminate(self, timeout_s: float = 15.0) -> int:
        """SIGTERM, then SIGKILL after ``timeout_s``; returns the exit code."""
        if self.running:
            self._signal_group(signal.SIGTERM)
            try:
                return self.popen.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
        return self.popen.wait(10)

    def wait(self, timeout_s: float) -> int:
        """The exit code, waiting at most ``timeout_s`` (then SIGKILL and NetnsError)."""
        try:
            return self.popen.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill9()
            raise NetnsError(f"{self.name} still ran after {timeout_s} s: killed\n{self.tail()}") from None

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def tail(self, lines: int = 30) -> str:
        """The last lines of stderr and stdout, for failure messages."""
        err = self.stderr().splitlines()[-lines:]
        out = self.stdout().splitlines()[-lines:]
        return f"--- {self.name} stderr ({self.stderr_path}):\n" + "\n".join(err) + \
            f"\n--- {self.name} stdout ({self.stdout_path}):\n" + "\n".join(out)

    def _check_alive(self, waiting_for: str) -> None:
        code = self.popen.poll()
        if code is not None:
            raise NetnsError(f"{self.name} exited with code {code} while waiting for {waiting_for}\n"
                             f"{self.tail()}")

    def wait_port(self, port: int, timeout_s: float = 20.0) -> None:
        """Until ``node.addr:port`` accepts TCP connections (from the root namespace)."""
        deadline = time.monotonic() + timeout_s
        while True:
            self._check_alive(f"port {port}")
            with socket.socket() as s:
                s.settimeout(1.0)
                if s.connect_ex((self.node.addr, port)) == 0:
                    return
            if time.monotonic() > deadline:
                raise NetnsError(f"{self.name}: nothing on {self.node.addr}:{port} after {timeout_s} s\n"
                                 f"{self.tail()}")
            time.sleep(0.05)

    def wait_http(self, url: str, timeout_s: float = 30.0, headers: Mapping[str, str] | None = None) -> None:
        """Until GET ``url`` answers 200."""
        deadline = time.monotonic() + timeout_s
        last = ""
        while True:
            self._check_alive(url)
            try:
                with urllib.request.urlopen(urllib.request.Request(url, headers=dict(headers or {})),
                                            timeout=2) as r:
                    if r.status == 200:
                        return
                    last = f"HTTP {r.status}"
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}"
            except (OSError, urllib.error.URLError) as exc:
                last = repr(exc)
            if time.monotonic() > deadline:
                raise NetnsError(f"{self.name}: {url} not answering 200 after {timeout_s} s ({last})\n"
                                 f"{self.tail()}")
            time.sleep(0.1)


class Node:
    """One host of the cluster: a namespace with one address on the bridge."""

    def __init__(self, cluster: Cluster, name: str, index: int) -> None:
        self.cluster = cluster
        self.name = name
        self.ns = f"{NS_PREFIX}{cluster.run}-{name}"
        self.addr = f"{cluster.subnet_prefix}.{index}"
        self.procs: list[Proc] = []
        self.home = cluster.tmp / "nodes" / name  # the working directory of its processes
        self.home.mkdir(parents=True, exist_ok=True)
        self._count = 0
        host_end, peer = f"cs{cluster.run}v{index}", f"cs{cluster.run}p{index}"
        _ip("netns", "add", self.ns)
        _ip("link", "add", host_end, "type", "veth", "peer", "name", peer)
        _ip("link", "set", peer, "netns", self.ns)
        _ip("link", "set", host_end, "master", cluster.bridge, "up")
        _ip("-n", self.ns, "link", "set", peer, "name", "eth0")
        _ip("-n", self.ns, "addr", "add", f"{self.addr}/24", "dev", "eth0")
        _ip("-n", self.ns, "link", "set", "eth0", "up")
        _ip("-n", self.ns, "link", "set", "lo", "up")

    def spawn(
        self, argv: Sequence[str], env: Mapping[str, str] | None = None, name: str | None = None,
    ) -> Proc:
        """Start ``argv`` in this namespace, in ``home`` (``env``: the whole environment; default:
        this process's)."""
        self._count += 1
        label = f"{self.name}-{name or Path(argv[0]).name}-{self._count}"
        proc = Proc(self, argv, env, label)
        self.procs.append(proc)
        return proc

    def kill_all(self) -> None:
        """SIGKILL every process in the namespace (those spawned here and their children)."""
        for proc in self.procs:
            if proc.running:
                proc.kill9()
        _kill_inside(self.ns)
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(5)


class Cluster:
    """Namespaces on one bridge, with Mosquitto and PostgreSQL on the ``infra`` node."""

    def __init__(self, tmp: Path) -> None:
        self.run = secrets.token_hex(3)
        self.tmp = tmp
        self.bridge = f"cs{self.run}br"
        self.nodes: dict[str, Node] = {}
        self.subnet = -1
        self.subnet_prefix = ""
        self.broker: Proc | None = None
        self.postgres: Proc | None = None
        self._reaper: subprocess.Popen[bytes] | None = None
        self._closed = False
        self._next_index = 10
        self.pg_root = Path(tempfile.mkdtemp(prefix="csms-netns-pg-"))  # outside tmp: postgres must reach it

    # --- lifecycle ----------------------------------------------------------------------------
    @classmethod
    def start(cls, tmp: Path | None = None, *, services: bool = True) -> Cluster:
        """Remove stale runs, then build the bridge, the ``infra`` node and (``services``) Mosquitto
        and PostgreSQL on it. Process logs go to a new directory under ``tmp`` (default: the
        system's temp directory), which stays."""
        why = usable()
        if why is not None:
            raise NetnsError(f"cannot build the namespace cluster: {why}")
        remove_stale_runs()
        cluster = cls(Path(tempfile.mkdtemp(prefix="csms-netns-logs-", dir=tmp)))
        try:
            cluster._build(services)
        except BaseException:
            cluster.close()
            raise
        return cluster

    def _build(self, services: bool) -> None:
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        with open(STATE_DIR / ".lock", "w") as lock:  # runs starting at once pick different subnets
            fcntl.flock(lock, fcntl.LOCK_EX)
            used = _used_subnets()
            self.subnet = random.choice([x for x in range(10, 250) if x not in used])
            self.subnet_prefix = f"{SUBNET_BASE}.{self.subnet}"
            pid = os.getpid()
            state = {"pid": pid, "started": _start_time(pid), "subnet": self.subnet,
                     "pg_root": str(self.pg_root)}
            (STATE_DIR / f"{self.run}.json").write_text(json.dumps(state))
        atexit.register(self.close)
        self._reaper = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "reap", self.run], stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.subnet_prefix}.1/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        infra = Node(self, INFRA, 2)
        self.nodes[INFRA] = infra
        if services:
            self.start_broker()
            self._start_postgres(infra)

    def close(self) -> None:
        """Kill every process, remove namespaces, bridge, veths and files (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            remove_run(self.run)
        finally:
            shutil.rmtree(self.pg_root, ignore_errors=True)
            atexit.unregister(self.close)
            if self._reaper is not None:
                with contextlib.suppress(OSError):
                    assert self._reaper.stdin is not None
                    self._reaper.stdin.close()  # the reaper finds nothing left and ends
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._reaper.wait(10)

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # --- nodes --------------------------------------------------------------------------------
    def node(self, name: str) -> Node:
        """The node called ``name`` (``[a-z][a-z0-9]*``, at most 16 characters), made on first use."""
        if name not in self.nodes:
            if not _NODE.match(name):
                raise ValueError(f"node names are [a-z][a-z0-9]{{0,15}}: {name!r}")
            if self._next_index > 250:
                raise NetnsError("no address left on the bridge")
            self.nodes[name] = Node(self, name, self._next_index)
            self._next_index += 1
        return self.nodes[name]

    def kill_nodes(self, *, keep: Sequence[str] = (INFRA,)) -> None:
        """SIGKILL every process on every node but ``keep`` (between tests sharing a cluster)."""
        for name, node in self.nodes.items():
            if name not in keep:
                node.kill_all()

    # --- infrastructure -----------------------------------------------------------------------
    @property
    def infra(self) -> Node:
        return self.nodes[INFRA]

    @property
    def mqtt_url(self) -> str:
        return f"mqtt://{self.infra.addr}:{MQTT_PORT}"

    @property
    def pg_url(self) -> str:
        return f"postgresql://postgres@{self.infra.addr}:{PG_PORT}/postgres"

    def start_broker(self) -> Proc:
        """Start the private Mosquitto (MQTT 3.1.1 and 5) on the infra address."""
        if self.broker is not None and self.broker.running:
            raise NetnsError("the broker is running")
        conf = self.tmp / "mosquitto.conf"
        conf.write_text(
            f"listener {MQTT_PORT} {self.infra.addr}\nallow_anonymous true\npersistence false\n"
            "log_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\n"
        )
        self.broker = self.infra.spawn([shutil.which("mosquitto") or "/usr/sbin/mosquitto", "-c", str(conf)],
                                       name="mosquitto")
        self.broker.wait_port(MQTT_PORT, timeout_s=10)
        return self.broker

    def stop_broker(self, *, kill: bool = False) -> None:
        """Stop the broker: SIGTERM (or SIGKILL with ``kill``); clients see their connections drop."""
        if self.broker is None or not self.broker.running:
            raise NetnsError("the broker is not running")
        if kill:
            self.broker.kill9()
        else:
            self.broker.terminate()

    def _start_postgres(self, infra: Node) -> None:
        root = self.pg_root
        data = root / "data"
        as_postgres: list[str] = []
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            pw = pwd.getpwnam("postgres")
            os.chown(root, pw.pw_uid, pw.pw_gid)
            as_postgres = ["runuser", "-u", "postgres", "--"]
        done = subprocess.run([*as_postgres, _pg_bin("initdb"), "-D", str(data), "-A", "trust",
                               "-U", "postgres", "--no-sync"], capture_output=True, text=True)
        if done.returncode != 0:
            raise NetnsError(f"initdb failed: {done.stderr}")
        with open(data / "pg_hba.conf", "a") as hba:
            hba.write(f"host all all {self.subnet_prefix}.0/24 trust\n")
        self.postgres = infra.spawn(
            [*as_postgres, _pg_bin("postgres"), "-D", str(data), "-p", str(PG_PORT), "-k", str(root),
             "-c", f"listen_addresses={infra.addr}", "-c", "fsync=off", "-c", "max_connections=200"],
            name="postgres",
        )
        self.postgres.wait_port(PG_PORT, timeout_s=30)

    def wait_pg_ready(self, timeout_s: float = 30.0) -> None:
        """Until PostgreSQL accepts a session (the port opens a moment before it does)."""
        deadline = time.monotonic() + timeout_s
        while True:
            done = subprocess.run([_pg_bin("pg_isready"), "-h", self.infra.addr, "-p", str(PG_PORT), "-U",
                                   "postgres"], capture_output=True, text=True)
            if done.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise NetnsError(f"PostgreSQL not ready after {timeout_s} s: {done.stdout}{done.stderr}")
            time.sleep(0.1)


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise NetnsError(f"PostgreSQL server binary {name!r} not found: apt-get install postgresql")
    return found[-1]


@contextlib.contextmanager
def cluster(tmp: Path | None = None, *, services: bool = True) -> Iterator[Cluster]:
    """A started :class:`Cluster`, closed on the way out whatever happens."""
    c = Cluster.start(tmp, services=services)
    try:
        yield c
    finally:
        c.close()


def _reap(run: str) -> None:
    """Wait until the owner closes our stdin (or dies), then remove whatever is left of ``run``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C meant for the owner
    with contextlib.suppress(OSError):
        while sys.stdin.buffer.read(4096):
            pass
    remove_run(run)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "reap":
        _reap(sys.argv[2])
    elif len(sys.argv) == 2 and sys.argv[1] == "clean":
        print("removed stale runs:", " ".join(remove_stale_runs()) or "none")
    else:
        sys.exit(f"usage: {sys.argv[0]} reap RUN | clean")
