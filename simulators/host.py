"""How busy the load generator's own machine was during a run.

A load test measures the CSMS only while the generator has CPU to spare. When the fleet
itself is short of CPU (too many chargers for its cores, or a cloud host that hands the VM's
cores to other tenants: *steal*), calls leave late and answers are read late, and the
latency in the report is partly the generator's. The report's ``host`` section says how much
CPU the fleet used and how much the hypervisor took, and the summary warns when either was
high enough to matter.
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BUSY_SHARE = 0.8  # of the cores the fleet can use: its own queueing shows in the latencies
STEAL_SHARE = 0.05  # of all cores, taken by the hypervisor: the figures measure the host too

_CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class HostSample:
    """A point in time: wall clock, the fleet's CPU seconds (this process and its finished
    workers) and the machine's stolen CPU seconds (None where /proc/stat has no steal)."""

    wall_s: float
    cpu_s: float
    steal_s: float | None


def sample() -> HostSample:
    me = resource.getrusage(resource.RUSAGE_SELF)
    workers = resource.getrusage(resource.RUSAGE_CHILDREN)  # worker processes, once joined
    cpu = me.ru_utime + me.ru_stime + workers.ru_utime + workers.ru_stime
    return HostSample(time.monotonic(), cpu, steal_seconds())


def steal_seconds(cpu: int | None = None) -> float | None:
    """CPU time the hypervisor gave to other tenants so far (``steal`` in /proc/stat), of core
    ``cpu`` or of all cores; None where the system does not report it."""
    label = "cpu" if cpu is None else f"cpu{cpu}"
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if fields and fields[0] == label:
            return int(fields[8]) / _CLK_TCK if len(fields) > 8 else None
    return None


def machine_cores() -> int:
    """The cores this process may run on (affinity, e.g. ``taskset``), else all of them."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def usage(
    start: HostSample, end: HostSample, *, workers: int = 1, cores: int | None = None
) -> dict[str, Any]:
    """The report's ``host`` section for the run between two samples. One event loop uses one
    core at most: the fleet can use ``min(workers, cores)`` of them."""
    cores = cores or machine_cores()
    usable = max(1, min(workers, cores))
    wall = max(1e-9, end.wall_s - start.wall_s)
    fleet = (end.cpu_s - start.cpu_s) / wall
    steal = None
    if start.steal_s is not None and end.steal_s is not None:
        steal = round(100 * (end.steal_s - start.steal_s) / (wall * (os.cpu_count() or 1)), 1)
    return {
        "cores": cores,
        "usable_cores": usable,
        "fleet_cpu_percent": round(100 * fleet, 1),  # 100 = one core busy for the whole run
        "fleet_share_percent": round(100 * fleet / usable, 1),  # of the cores it can use
        "steal_percent": steal,
    }


def warnings(host: dict[str, Any]) -> list[str]:
    """What in ``host`` makes the run's latencies suspect, in words."""
    out = []
    if host["fleet_share_percent"] >= 100 * BUSY_SHARE:
        usable = host["usable_cores"]
        out.append(f"this process and its workers kept {host['fleet_share_percent']:.0f} % of the "
                   f"{usable} core{'s' if usable > 1 else ''} they can use busy: the fleet's own queueing "
                   "is in these latencies (fewer chargers, or more --workers on a machine with cores "
                   "to spare)")
    steal = host["steal_percent"]
    if steal is not None and steal >= 100 * STEAL_SHARE:
        out.append(f"the hypervisor took {steal:.0f} % of this machine's CPU during the run: the "
                   "figures measure the host's other tenants too")
    return out
