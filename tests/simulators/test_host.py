"""The report's ``host`` section: the fleet's own CPU and the hypervisor's steal, and the
warnings that tell a load tester the latencies are partly the generator's or the host's."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from simulators import host
from simulators.host import HostSample
from simulators.metrics import Recorder
from simulators.report import build_report


def test_usage_is_cpu_and_steal_over_the_wall_time_between_two_samples() -> None:
    start = HostSample(wall_s=100.0, cpu_s=10.0, steal_s=50.0)
    end = HostSample(wall_s=110.0, cpu_s=25.0, steal_s=54.0)  # 1.5 cores busy; 4 s stolen
    used = host.usage(start, end, workers=2, cores=4)
    assert used == {"cores": 4, "usable_cores": 2, "fleet_cpu_percent": 150.0, "fleet_share_percent": 75.0,
                    "steal_percent": used["steal_percent"]}
    assert used["steal_percent"] == round(100 * 4 / (10 * (os.cpu_count() or 1)), 1)  # of every core
    one_loop = host.usage(HostSample(0.0, 0.0, None), HostSample(2.0, 1.8, None), cores=16)
    assert one_loop["usable_cores"] == 1 and one_loop["fleet_share_percent"] == 90.0  # one loop, one core
    assert one_loop["steal_percent"] is None


def test_a_quiet_run_has_no_warning_a_busy_or_stolen_one_has() -> None:
    quiet = {"cores": 16, "usable_cores": 1, "fleet_cpu_percent": 40.0, "fleet_share_percent": 40.0,
             "steal_percent": 0.5}
    assert host.warnings(quiet) == []
    assert host.warnings({**quiet, "steal_percent": None}) == []
    busy = host.warnings({**quiet, "fleet_cpu_percent": 95.0, "fleet_share_percent": 95.0})
    assert len(busy) == 1 and "95 % of the 1 core they can use" in busy[0]
    stolen = host.warnings({**quiet, "steal_percent": 12.0})
    assert len(stolen) == 1 and "hypervisor took 12 %" in stolen[0]


def test_the_summary_shows_the_host_line_and_its_warnings() -> None:
    now = datetime.now(UTC)
    config = {"chargers": 1, "protocol": "1.6", "csms_url": "ws://x"}
    stolen = {"cores": 2, "usable_cores": 1, "fleet_cpu_percent": 30.0, "fleet_share_percent": 30.0,
              "steal_percent": 20.0}
    text = build_report(Recorder(), config=config, started_at=now, finished_at=now, duration_s=1.0,
                        host=stolen).summary()
    assert "30.0 % of one core (30.0 % of the 1 usable), hypervisor steal 20.0 %" in text
    assert "warning: the hypervisor took 20 %" in text
    assert "host" not in build_report(Recorder(), config=config, started_at=now, finished_at=now,
                                      duration_s=1.0).data


def test_a_sample_counts_this_process_s_cpu() -> None:
    before = host.sample()
    deadline = time.process_time() + 0.2
    while time.process_time() < deadline:
        pass
    after = host.sample()
    assert after.cpu_s - before.cpu_s >= 0.19


def test_steal_is_read_per_core_or_for_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    stat = ("cpu  100 0 50 900 5 0 3 40 0 0\ncpu0 50 0 25 450 2 0 1 30 0 0\n"
            "cpu1 50 0 25 450 3 0 2 10 0 0\nintr 12345\n")
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: stat)
    tick = os.sysconf("SC_CLK_TCK")
    assert host.steal_seconds() == 40 / tick
    assert host.steal_seconds(0) == 30 / tick and host.steal_seconds(1) == 10 / tick
    assert host.steal_seconds(7) is None  # no such core
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: "cpu  1 2 3 4\n")  # an old kernel
    assert host.steal_seconds() is None
