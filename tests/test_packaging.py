"""A normal (non-editable) install carries every file the commands read at run time.

The wheels are built from a copy of the tracked sources with ``pip wheel --no-deps``; the
dashboards that ``csms dashboards push`` uploads by default, the console's static files and
the simulator's bundled scenarios must be in them. The fleet's own wheel (``fleet/``) carries
the fleet and the shared protocol package, and nothing of the CSMS.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from csms.telemetry import grafana_push

ROOT = Path(__file__).resolve().parents[1]


def _tracked(*paths: str) -> list[str]:
    out = subprocess.run(["git", "ls-files", "-z", *paths], cwd=ROOT, capture_output=True, check=True)
    return [p for p in out.stdout.decode().split("\0") if p]


def _can_build_offline() -> bool:
    """setuptools >= 69 and wheel here: build without pip's isolated build environment."""
    if importlib.util.find_spec("wheel") is None:
        return False
    return int(importlib.metadata.version("setuptools").split(".")[0]) >= 69


def _wheel(tmp_path_factory: pytest.TempPathFactory, project: str, name: str) -> zipfile.ZipFile:
    """The wheel ``pip wheel`` builds from ``project`` (a folder) of a copy of the tracked sources."""
    src = tmp_path_factory.mktemp("src")
    for rel in _tracked("pyproject.toml", "README.md", "csms", "simulators", "ocppj", "fleet"):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, src / rel)
    out = tmp_path_factory.mktemp("wheel")
    cmd = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(src / project)]
    if _can_build_offline():
        cmd.insert(-1, "--no-build-isolation")
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    (wheel,) = out.glob(f"{name}-*.whl")
    return zipfile.ZipFile(wheel)


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    with _wheel(tmp_path_factory, ".", "csms") as zf:
        return set(zf.namelist())


def test_the_fleet_wheel_holds_the_fleet_and_the_protocol_package_only(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    with _wheel(tmp_path_factory, "fleet", "csms_fleet") as zf:
        names = set(zf.namelist())
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        scripts = zf.read(entry_points).decode()
    packages = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert packages == {"ocppj", "simulators"}
    bundled = _tracked("simulators/scenarios", "simulators/templates")
    assert {"ocppj/py.typed", "simulators/py.typed", *bundled} <= names
    assert "csms-sim = simulators.cli:main" in scripts


def test_wheel_contains_the_dashboards_console_assets_and_scenarios(wheel_names: set[str]) -> None:
    needed = _tracked("csms/telemetry/dashboards", "csms/api/console/static", "simulators/scenarios",
                      "simulators/templates")
    assert any(n.endswith(".json") for n in needed) and any(n.endswith(".toml") for n in needed)
    assert {"csms/py.typed", "simulators/py.typed", "ocppj/py.typed", *needed} <= wheel_names


def test_push_defaults_to_the_dashboards_inside_the_package() -> None:
    directory = grafana_push.default_directory()
    assert directory == ROOT / "csms" / "telemetry" / "dashboards"
    assert len(grafana_push.load_dashboards(directory)) == 4


def test_dry_run_lists_the_dashboards_without_contacting_grafana(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    grafana_push.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["dashboards", "push", "--dry-run", "--grafana-url", "http://127.0.0.1:9"])
    assert grafana_push.run(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["csms-health", "csms-feeders", "csms-network",
                                                        "csms-station"]


def test_dry_run_of_an_empty_directory_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    grafana_push.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["dashboards", "push", "--dry-run", "--dir", str(tmp_path)])
    assert grafana_push.run(args) == 1
    assert "no dashboards" in capsys.readouterr().err
