"""The deployment files under ``deploy/`` (and the ``Dockerfile``) are checked by what runs here.

There is no container engine and no Kubernetes cluster, so each file is checked with the real
tool it is read by, short of starting it: every YAML file parses; the Kubernetes manifests are
validated against the Kubernetes API schemas (strict: an unknown field fails) and their
references (selectors, named ports, config maps, secrets, images) are resolved; every ``csms``
command line in the compose files, the manifests and the systemd units goes through the CLI's
own argument parser; HAProxy checks its configuration (``haproxy -c``) and then serves a real
core and gateway with it; the Mosquitto configurations start a private broker that must offer
what the bus uses of MQTT v5; ``systemd-analyze verify`` reads the units; the gateway templates'
metrics-port arithmetic runs in ``/bin/sh`` exactly as systemd would start it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import queue
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import paho.mqtt.client as mqtt
import pytest
import websockets
import yaml  # type: ignore[import-untyped]
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from csms.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose"
K8S = DEPLOY / "k8s"
SYSTEMD = DEPLOY / "systemd"
K8S_VERSION = "1.30.0"  # the oldest Kubernetes the manifests are meant for


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _yaml_files() -> list[Path]:
    return sorted(p for p in DEPLOY.rglob("*") if p.suffix in (".yml", ".yaml"))


def _docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]


def _compose() -> dict[str, Any]:
    (doc,) = _docs(COMPOSE / "docker-compose.yml")
    return doc


def _unescape_compose(arg: str) -> str:
    """Compose interpolation of a literal: ``$$`` is one ``$``."""
    return arg.replace("$$", "$")


# --- every YAML file -----------------------------------------------------------------------
@pytest.mark.parametrize("path", _yaml_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_deploy_yaml_file_parses(path: Path) -> None:
    docs = _docs(path)
    assert docs and all(isinstance(d, dict) for d in docs)


# --- command lines -------------------------------------------------------------------------
@dataclass(frozen=True)
class CommandLine:
    where: str
    argv: tuple[str, ...]  # argv[0] is the csms executable

    @property
    def command(self) -> str:
        return self.argv[1]

    def value(self, flag: str) -> str | None:
        args = list(self.argv)
        for i, a in enumerate(args):
            if a == flag and i + 1 < len(args):
                return args[i + 1]
            if a.startswith(flag + "="):
                return a.split("=", 1)[1]
        return None


def _compose_command_lines() -> list[CommandLine]:
    out: list[CommandLine] = []
    for path in (COMPOSE / "docker-compose.yml", DEPLOY / "docker-compose.yml"):
        (doc,) = _docs(path)
        for name, svc in doc["services"].items():
            cmd = svc.get("command")
            if cmd and cmd[0] == "csms":
                argv = tuple(map(_unescape_compose, cmd))
                out.append(CommandLine(f"{path.relative_to(ROOT)}:{name}", argv))
    return out


def _k8s_objects() -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name != "kustomization.yaml":
            out.extend((path.name, d) for d in _docs(path))
    return out


def _by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for _, d in _k8s_objects() if d["kind"] == kind}


def _container_env(container: dict[str, Any]) -> dict[str, str]:
    """The container's environment as Kubernetes builds it (field references: a stand-in value)."""
    maps, secrets = _by_kind("ConfigMap"), _by_kind("Secret")
    env: dict[str, str] = {}
    for src in container.get("envFrom", []):
        env.update(maps[src["configMapRef"]["name"]]["data"])
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = item["value"]
            continue
        ref = item["valueFrom"]
        if "configMapKeyRef" in ref:
            env[item["name"]] = maps[ref["configMapKeyRef"]["name"]]["data"][ref["configMapKeyRef"]["key"]]
        elif "secretKeyRef" in ref:
            env[item["name"]] = secrets[ref["secretKeyRef"]["name"]]["stringData"][ref["secretKeyRef"]["key"]]
        else:
            env[item["name"]] = "pod-a1b2c"
    return env


def _k8s_expand(arg: str, env: dict[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` references in a container's args."""
    return re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], arg)


def _k8s_command_lines() -> list[CommandLine]:
    out = []
    for name, dep in _by_kind("Deployment").items():
        for c in dep["spec"]["template"]["spec"]["containers"]:
            args = c.get("command", []) + c.get("args", [])
            if args and args[0] == "csms":
                env = _container_env(c)
                expanded = [_k8s_expand(a, env) for a in args]
                out.append(CommandLine(f"deploy/k8s:{name}", tuple(expanded)))
    return out


def _env_file(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            env[key.strip()] = value.strip()
    return env


CLUSTER_ENV = _env_file(SYSTEMD / "cluster.env")


def _exec_start(unit: Path) -> str:
    text = unit.read_text(encoding="utf-8").replace("\\\n", " ")
    (line,) = [ln for ln in text.splitlines() if ln.startswith("ExecStart=")]
    return line.removeprefix("ExecStart=")


def _systemd_argv(unit: Path, instance: str, env: dict[str, str]) -> list[str]:
    """ExecStart as systemd splits it: specifiers, ``$$``, ``${VAR}`` from the environment files."""
    line = _exec_start(unit)
    line = line.replace("%i", instance).replace("%H", "host-a").replace("%%", "%")
    line = re.sub(r"(?<!\$)\$\{(\w+)\}", lambda m: env[m.group(1)], line)
    return [a.replace("$$", "$") for a in shlex.split(line)]


@pytest.fixture(scope="module")
def stub_csms(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An executable that prints its arguments as JSON: stands in for /opt/csms/bin/csms."""
    path = tmp_path_factory.mktemp("bin") / "csms"
    path.write_text(f"#!{sys.executable}\nimport json, sys\nprint(json.dumps(sys.argv[1:]))\n")
    path.chmod(0o755)
    return path


def _run_unit(unit: Path, instance: str, stub: Path) -> subprocess.CompletedProcess[str]:
    """Start the unit's ExecStart as systemd would, with the csms executable replaced by ``stub``."""
    env = {"PATH": os.environ["PATH"], **CLUSTER_ENV}
    argv = [a.replace("/opt/csms/bin/csms", str(stub)) for a in _systemd_argv(unit, instance, env)]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30)


def _systemd_command_lines(stub: Path) -> list[CommandLine]:
    out = []
    for unit in sorted(SYSTEMD.glob("*.service")):
        done = _run_unit(unit, "3", stub)
        assert done.returncode == 0, f"{unit.name}: {done.stderr}"
        out.append(CommandLine(f"deploy/systemd/{unit.name}", ("csms", *json.loads(done.stdout))))
    return out


@pytest.fixture(scope="module")
def command_lines(stub_csms: Path) -> list[CommandLine]:
    return _compose_command_lines() + _k8s_command_lines() + _systemd_command_lines(stub_csms)


def _parse(line: CommandLine) -> tuple[argparse.Namespace, list[str]]:
    try:
        return build_parser().parse_known_args(list(line.argv[1:]))
    except SystemExit:  # argparse printed why
        pytest.fail(f"{line.where}: the CLI parser rejects {shlex.join(line.argv)}")


def _unknown_flags(extra: list[str]) -> set[str]:
    return {a.split("=", 1)[0] for a in extra if a.startswith("-")}


def test_the_command_lines_are_all_found(command_lines: list[CommandLine]) -> None:
    where = sorted(c.where for c in command_lines)
    assert len([w for w in where if w.startswith("deploy/compose/")]) == 4  # 2 cores, 2 gateways
    assert {"deploy/k8s:csms-core", "deploy/k8s:csms-gateway"} <= set(where)
    assert len([w for w in where if w.startswith("deploy/systemd/")]) == len(list(SYSTEMD.glob("*.service")))


def test_every_command_line_parses_apart_from_the_flags_the_cli_lacks(
    command_lines: list[CommandLine],
) -> None:
    """Known flags get valid values; what the parser does not know is only flags and their values."""
    for line in command_lines:
        ns, extra = _parse(line)
        assert ns.command in ("serve", "gateway"), line
        unknown = _unknown_flags(extra)
        stray = [a for i, a in enumerate(extra)
                 if not a.startswith("-") and not (i > 0 and extra[i - 1] in unknown)]
        assert not stray, f"{line.where}: arguments that belong to no flag: {stray}"


def test_every_flag_of_the_deploy_files_is_known_to_the_cli(command_lines: list[CommandLine]) -> None:
    """Fails, naming the flags, while ``csms serve``/``csms gateway`` lack flags the files use."""
    missing: dict[str, set[str]] = {}
    for line in command_lines:
        _, extra = _parse(line)
        for flag in _unknown_flags(extra):
            missing.setdefault(f"csms {line.command} {flag}", set()).add(line.where)
    assert not missing, "flags the CLI parser lacks:\n" + "\n".join(
        f"  {flag}  (used in {', '.join(sorted(where))})" for flag, where in sorted(missing.items()))


def test_the_multi_node_command_lines_follow_the_topology(command_lines: list[CommandLine]) -> None:
    nodes = [c for c in command_lines if c.value("--bus") is not None]
    cores = [c for c in nodes if c.command == "serve"]
    gateways = [c for c in nodes if c.command == "gateway"]
    assert len(cores) == 4 and len(gateways) == 4  # compose x2, k8s, systemd; each
    for c in nodes:
        assert re.fullmatch(r"mqtt://[\w.-]+:\d+", c.value("--bus") or ""), c
        assert c.value("--node-id"), c
        assert c.value("--host") == "0.0.0.0", c
    for c in cores:
        assert "--no-ocpp" in c.argv and c.value("--api-port") == "8080", c
        assert re.fullmatch(r"postgresql://[\w.-]+(:[^@]+)?@[\w.-]+:\d+/\w+", c.value("--db") or ""), c
    for c in gateways:
        assert c.value("--ocpp-port") == "9000" and c.value("--db") is None, c
    compose_ids = [c.value("--node-id") for c in nodes if c.where.startswith("deploy/compose/")]
    assert len(set(compose_ids)) == len(compose_ids) == 4


# --- systemd -------------------------------------------------------------------------------
GATEWAY_TEMPLATES = sorted(SYSTEMD.glob("*gateway@.service"))


@pytest.mark.parametrize("unit", GATEWAY_TEMPLATES, ids=lambda p: p.name)
def test_gateway_instances_get_distinct_valid_metrics_ports(unit: Path, stub_csms: Path) -> None:
    ports = {}
    for n in range(1, 21):
        done = _run_unit(unit, str(n), stub_csms)
        assert done.returncode == 0, done.stderr
        argv = json.loads(done.stdout)
        ports[n] = int(argv[argv.index("--metrics-port") + 1])
    assert ports == {n: 9100 + n for n in range(1, 21)}  # instance 10 is 9110, not 91010
    assert all(1024 < p < 65536 and p not in (9000, 8080) for p in ports.values())


@pytest.mark.parametrize("unit", GATEWAY_TEMPLATES, ids=lambda p: p.name)
@pytest.mark.parametrize("instance", ["a", "01", "0", "1000", "2x", "-1"])
def test_a_gateway_instance_that_is_not_a_small_number_does_not_start(
    unit: Path, instance: str, stub_csms: Path
) -> None:
    done = _run_unit(unit, instance, stub_csms)
    assert done.returncode == 2 and done.stdout == "" and "not a number from 1 to 999" in done.stderr
    assert "RestartPreventExitStatus=2" in unit.read_text(encoding="utf-8")


def test_systemd_analyze_verifies_the_units(tmp_path: Path, stub_csms: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze not found (apt-get install systemd)"
    units = []
    for unit in sorted(SYSTEMD.glob("*.service")):
        copy = tmp_path / unit.name
        copy.write_text(unit.read_text(encoding="utf-8").replace("/opt/csms/bin/csms", str(stub_csms)))
        units.append(str(copy))
    done = subprocess.run([analyze, "verify", *units], capture_output=True, text=True, timeout=60)
    ours = [ln for ln in (done.stdout + done.stderr).splitlines()
            if str(tmp_path) in ln or any(Path(u).name.split("@")[0] in ln for u in units)]
    assert done.returncode == 0 and not ours, done.stdout + done.stderr


def test_the_units_documentation_is_installed_by_their_install_steps() -> None:
    for unit in sorted(SYSTEMD.glob("*.service")):
        text = unit.read_text(encoding="utf-8")
        docs = re.findall(r"^Documentation=(.+)$", text, re.MULTILINE)
        assert docs, unit.name
        for url in " ".join(docs).split():
            m = re.fullmatch(r"file:///opt/csms/share/doc/csms/([\w.-]+\.md)", url)
            assert m, f"{unit.name}: {url} is not a file the install steps put in place"
            readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
            installs = re.findall(r"install -D -m 644 -t /opt/csms/share/doc/csms ([^\n`]+)", readme)
            assert installs, "deploy/README.md does not install the documentation"
            sources = installs[0].split()
            assert any(Path(s).name == m.group(1) for s in sources), (unit.name, url)
            assert all((ROOT / s).is_file() for s in sources)


# --- Kubernetes ----------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "doc"), _k8s_objects(),
                         ids=lambda v: v if isinstance(v, str) else v["kind"])
def test_the_manifests_are_valid_kubernetes_objects(name: str, doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_a_misspelt_field_is_caught_by_the_validation() -> None:
    doc = _by_kind("Deployment")["csms-core"]
    broken = json.loads(json.dumps(doc))
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_the_kustomization_lists_every_manifest_and_names_the_image() -> None:
    (kust,) = _docs(K8S / "kustomization.yaml")
    listed = set(kust["resources"])
    on_disk = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk
    images = {i["name"] for i in kust["images"]}
    used = {c["image"] for d in _by_kind("Deployment").values()
            for c in d["spec"]["template"]["spec"]["containers"]}
    assert "csms" in images and "csms" in used
    assert {_docs(K8S / "namespace.yaml")[0]["metadata"]["name"]} == {kust["namespace"]}


def test_the_manifests_references_resolve() -> None:
    workloads = {**_by_kind("Deployment"), **_by_kind("StatefulSet")}
    labels = {n: d["spec"]["template"]["metadata"]["labels"] for n, d in workloads.items()}
    for name, svc in _by_kind("Service").items():
        match = [w for w, lab in labels.items() if svc["spec"]["selector"].items() <= lab.items()]
        assert len(match) == 1, f"Service {name} selects {match}"
        ports = {p["name"] for c in workloads[match[0]]["spec"]["template"]["spec"]["containers"]
                 for p in c.get("ports", [])}
        assert {p["targetPort"] for p in svc["spec"]["ports"]} <= ports, name
    for name, pdb in _by_kind("PodDisruptionBudget").items():
        sel = pdb["spec"]["selector"]["matchLabels"].items()
        assert [w for w, lab in labels.items() if sel <= lab.items()] == [name], name
    for name, w in workloads.items():
        assert w["spec"]["selector"]["matchLabels"].items() <= labels[name].items()
        for c in w["spec"]["template"]["spec"]["containers"]:
            assert c["resources"]["requests"], (name, c["name"])
            assert "readinessProbe" in c and "livenessProbe" in c, (name, c["name"])
            ports = {p["name"] for p in c.get("ports", [])}
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                for kind in ("httpGet", "tcpSocket"):
                    port = c.get(probe, {}).get(kind, {}).get("port")
                    assert port is None or port in ports, (name, probe)
            _container_env(c)  # every config map and secret key it names exists
    assert _by_kind("Deployment")["csms-core"]["spec"]["replicas"] == 2
    assert _by_kind("Deployment")["csms-gateway"]["spec"]["replicas"] == 2
    assert _by_kind("Service")["csms-ocpp"]["spec"]["type"] == "LoadBalancer"
    assert _by_kind("Service")["csms-ocpp"]["spec"]["ports"][0]["protocol"] == "TCP"


# --- compose -------------------------------------------------------------------------------
def test_the_cluster_compose_file_describes_the_topology() -> None:
    doc = _compose()
    services = doc["services"]
    assert {"postgres", "mosquitto", "core-1", "core-2", "gateway-1", "gateway-2", "haproxy",
            "influxdb"} == set(services)
    assert services["influxdb"]["profiles"] == ["telemetry"]
    for name, svc in services.items():
        assert svc["healthcheck"]["test"][0] == "CMD", name
        for dep in svc.get("depends_on", {}):
            assert dep in services, (name, dep)
        for vol in svc.get("volumes", []):
            src = vol.split(":")[0]
            if src.startswith("."):
                assert (COMPOSE / src).is_file(), (name, src)
            else:
                assert src in doc["volumes"], (name, src)
        if "build" in svc:
            assert (COMPOSE / svc["build"]["context"] / svc["build"]["dockerfile"]).is_file()
    published = {p for svc in services.values() for p in svc.get("ports", [])}
    assert {"9000:9000", "8080:8080"} <= published
    assert all(p.startswith("127.0.0.1:") for s, svc in services.items() if s != "haproxy"
               for p in svc.get("ports", []))
    assert services["postgres"]["healthcheck"]["test"][1] == "pg_isready"


# --- Mosquitto -----------------------------------------------------------------------------
def _mosquitto_configs() -> list[Any]:
    k8s = _by_kind("ConfigMap")["mosquitto-config"]["data"]["mosquitto.conf"]
    compose = (COMPOSE / "mosquitto.conf").read_text(encoding="utf-8")
    return [pytest.param(compose, id="compose"), pytest.param(k8s, id="k8s")]


@contextmanager
def _process(
    argv: list[str], log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def _wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text(errors="replace")[-3000:]
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing on port {port}: {log.read_text(errors='replace')[-3000:]}")


@contextmanager
def _mosquitto(conf: str, tmp_path: Path) -> Iterator[int]:
    """A private broker started from ``conf``: its listener moved to a free loopback port."""
    port = free_port()
    text = re.sub(r"^listener 1883$", f"listener {port} 127.0.0.1", conf, flags=re.MULTILINE)
    assert text != conf, "no `listener 1883` line"
    text = re.sub(r"^persistence_location .*$", f"persistence_location {tmp_path}/", text, flags=re.MULTILINE)
    text = text.replace("log_dest stdout", "log_dest stderr")
    if os.geteuid() == 0:
        text = "user root\n" + text  # as root, mosquitto would drop to its own user
    path = tmp_path / "mosquitto.conf"
    path.write_text(text)
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    with _process([binary, "-c", str(path)], tmp_path / "mosquitto.log") as proc:
        _wait_port(port, proc, tmp_path / "mosquitto.log")
        yield port


class _Client:
    """A paho MQTT v5 client with its received messages in a queue."""

    def __init__(self, port: int, client_id: str, *, clean_start: bool = True, expiry_s: int = 0,
                 will: tuple[str, bytes] | None = None) -> None:
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.client.on_message = lambda _c, _u, msg: self.messages.put(msg)
        if will is not None:
            self.client.will_set(will[0], will[1], qos=1, retain=True)
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = expiry_s
        self.client.connect("127.0.0.1", port, keepalive=5, clean_start=clean_start, properties=props)
        self.client.loop_start()
        deadline = time.monotonic() + 10
        while not self.client.is_connected():
            if time.monotonic() > deadline:
                self.close()
                raise AssertionError(f"{client_id} not connected")
            time.sleep(0.01)

    def subscribe(self, topic: str) -> None:
        done: queue.Queue[bool] = queue.Queue()
        self.client.on_subscribe = lambda *_a: done.put(True)
        self.client.subscribe(topic, qos=1)
        done.get(timeout=10)

    def publish(self, topic: str, payload: bytes, *, retain: bool = False,
                properties: Properties | None = None) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain, properties=properties).wait_for_publish(10)

    def get(self, timeout_s: float = 10.0) -> mqtt.MQTTMessage:
        return self.messages.get(timeout=timeout_s)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.mark.parametrize("conf", _mosquitto_configs())
def test_the_broker_config_serves_what_the_bus_uses_of_mqtt5(conf: str, tmp_path: Path) -> None:
    with _mosquitto(conf, tmp_path) as port:
        # the health checks of compose and Kubernetes, against this broker
        compose_test = _compose()["services"]["mosquitto"]["healthcheck"]["test"]
        compose_check = [_unescape_compose(a) for a in compose_test[1:]]
        k8s_check = _by_kind("Deployment")["mosquitto"]["spec"]["template"]["spec"]["containers"][0][
            "readinessProbe"]["exec"]["command"]
        for check in (compose_check, k8s_check):
            argv = [str(port) if a == "1883" else a for a in check]
            done = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            assert done.returncode == 0 and done.stdout.strip(), (argv, done.stderr)

        clients: list[_Client] = []
        try:
            # shared subscription: each request reaches exactly one of the cores
            core_a, core_b, gw = (_Client(port, n) for n in ("core-a", "core-b", "gw"))
            clients += [core_a, core_b, gw]
            for core in (core_a, core_b):
                core.subscribe("$share/cores/csms/req/#")
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.ResponseTopic = "csms/resp/gw"
            props.CorrelationData = b"\x00\x01"
            for i in range(20):
                gw.publish(f"csms/req/CP{i}", str(i).encode(), properties=props)
            got = []
            for core in (core_a, core_b):
                with suppress(queue.Empty):
                    while True:
                        got.append((core, core.get(timeout_s=1.0)))
            assert sorted(int(m.payload) for _, m in got) == list(range(20))
            assert {c for c, _ in got} == {core_a, core_b}
            # response topic and correlation data arrive as sent
            sent_back = {(getattr(m.properties, "ResponseTopic", None),
                          getattr(m.properties, "CorrelationData", None)) for _, m in got}
            assert sent_back == {("csms/resp/gw", b"\x00\x01")}

            # last will (retained): a gateway that vanishes is announced, also to later subscribers
            doomed = _Client(port, "gw-doomed", will=("csms/nodes/gw-doomed", b"offline"))
            sock = doomed.client.socket()
            assert sock is not None
            doomed.client.loop_stop()
            sock.close()
            late = _Client(port, "late")
            clients.append(late)
            late.subscribe("csms/nodes/#")
            will = late.get()
            assert (will.topic, will.payload, will.retain) == ("csms/nodes/gw-doomed", b"offline", True)

            # session expiry: a subscriber's session outlives its connection
            sleeper = _Client(port, "core-sleeper", clean_start=True, expiry_s=60)
            sleeper.subscribe("csms/direct/core-sleeper")
            sleeper.close()
            gw.publish("csms/direct/core-sleeper", b"while away")
            back = _Client(port, "core-sleeper", clean_start=False, expiry_s=60)
            clients.append(back)
            assert back.get().payload == b"while away"
        finally:
            for c in clients:
                c.close()


# --- HAProxy and the health checks, in front of a real core and gateway ----------------------
def test_haproxy_accepts_its_config() -> None:
    binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
    assert Path(binary).exists(), "haproxy not found (apt-get install haproxy)"
    done = subprocess.run([binary, "-c", "-f", str(COMPOSE / "haproxy.cfg")], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr
    warnings = [ln for ln in (done.stdout + done.stderr).splitlines()
                if "WARNING" in ln and "could not resolve address" not in ln]  # no Docker DNS here
    assert not warnings, warnings


@dataclass
class _Ports:
    api: int
    gateway: int
    metrics: int
    ocpp_lb: int
    api_lb: int
    stats: int


def _local_haproxy_config(p: _Ports) -> str:
    """The compose HAProxy config with every address moved to this host's free ports."""
    text = (COMPOSE / "haproxy.cfg").read_text(encoding="utf-8")
    binds = {"9000": p.ocpp_lb, "8080": p.api_lb, "8404": p.stats}
    text = re.sub(r"bind :(\d+)", lambda m: f"bind 127.0.0.1:{binds[m.group(1)]}", text)
    text = re.sub(r"(server gateway-\d) gateway-\d:9000 check port 9100",
                  rf"\1 127.0.0.1:{p.gateway} check port {p.metrics}", text)
    text = re.sub(r"(server core-\d) core-\d:8080 check", rf"\1 127.0.0.1:{p.api} check", text)
    text = re.sub(r"^\s*maxconn \d+$", "    maxconn 1000", text, flags=re.MULTILINE)
    assert not re.search(r"(gateway|core)-\d:", text), text
    return text


def _run_check(test: list[str], mapping: dict[str, int]) -> int:
    """A compose health check (``["CMD", ...]``) with its ports moved, run here."""
    argv = [sys.executable if a == "python" else _unescape_compose(a) for a in test[1:]]
    for old, new in mapping.items():
        argv = [a.replace(old, str(new)) for a in argv]
    return subprocess.run(argv, capture_output=True, timeout=20).returncode


async def _boot_through(url: str) -> list[Any]:
    async with websockets.connect(url, subprotocols=[websockets.Subprotocol("ocpp1.6")],
                                  open_timeout=10) as ws:
        await ws.send(json.dumps([2, "m1", "BootNotification", {"chargePointVendor": "V",
                                                                 "chargePointModel": "M"}]))
        reply: list[Any] = json.loads(await asyncio.wait_for(ws.recv(), 10))
        return reply


def test_haproxy_and_the_health_checks_serve_a_real_core_and_gateway(tmp_path: Path) -> None:
    """Today's core and gateway (linked over a Unix socket) stand in for the nodes on the bus."""
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    p = _Ports(*(free_port() for _ in range(6)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CSMS_")}
    env["PYTHONPATH"] = str(ROOT)
    sock = str(tmp_path / "core.sock")
    core_cmd = [sys.executable, "-m", "csms", "serve", "--db", str(tmp_path / "csms.sqlite3"),
                "--ocpp-port", str(free_port()), "--api-port", str(p.api), "--gateway-socket", sock,
                "--auto-register", "--log-level", "warning"]
    gw_cmd = [sys.executable, "-m", "csms", "gateway", "--core", sock, "--ocpp-port", str(p.gateway),
              "--metrics-port", str(p.metrics), "--log-level", "warning"]
    cfg = tmp_path / "haproxy.cfg"
    cfg.write_text(_local_haproxy_config(p))
    services = _compose()["services"]
    with _process(core_cmd, tmp_path / "core.log", env) as core, \
            _process(gw_cmd, tmp_path / "gateway.log", env) as gw:
        _wait_port(p.api, core, tmp_path / "core.log")
        _wait_port(p.metrics, gw, tmp_path / "gateway.log")
        assert _run_check(services["core-1"]["healthcheck"]["test"], {"8080": p.api}) == 0
        assert _run_check(services["gateway-1"]["healthcheck"]["test"], {"9100": p.metrics}) == 0
        with _process([haproxy, "-db", "-f", str(cfg)], tmp_path / "haproxy.log") as lb:
            _wait_port(p.stats, lb, tmp_path / "haproxy.log")
            assert _run_check(services["haproxy"]["healthcheck"]["test"], {"8404": p.stats}) == 0
            with urllib.request.urlopen(f"http://127.0.0.1:{p.api_lb}/healthz", timeout=10) as resp:
                assert resp.status == 200 and json.loads(resp.read())["status"] == "ok"
            reply = asyncio.run(_boot_through(f"ws://127.0.0.1:{p.ocpp_lb}/ocpp/CP-LB-1"))
            assert reply[:2] == [3, "m1"] and reply[2]["status"] == "Accepted", reply
            deadline = time.monotonic() + 20
            while True:  # HAProxy's own checks (GET /metrics, GET /healthz) find the servers up
                with urllib.request.urlopen(f"http://127.0.0.1:{p.stats}/stats;csv", timeout=5) as resp:
                    rows = [r.split(",") for r in resp.read().decode().splitlines()]
                status = {(r[0], r[1]): r[17] for r in rows if len(r) > 17}
                checked = {(r[0], r[1]): r[36] for r in rows if len(r) > 36}
                up = [k for k in (("gateways", "gateway-1"), ("cores", "core-1")) if status.get(k) == "UP"
                      and checked.get(k, "").startswith("L7OK")]
                if len(up) == 2:
                    break
                assert time.monotonic() < deadline, (status, checked)
                time.sleep(0.5)
        gw.send_signal(signal.SIGTERM)
        gw.wait(15)
        core.send_signal(signal.SIGTERM)
        core.wait(15)
    # the same checks fail once nothing answers
    assert _run_check(services["core-1"]["healthcheck"]["test"], {"8080": p.api}) != 0
    assert _run_check(services["gateway-1"]["healthcheck"]["test"], {"9100": p.metrics}) != 0
