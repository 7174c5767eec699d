"""How many llama.cpp threads a worker runs when ``HERD_NUM_THREADS`` does not say.

As llama.cpp counts them: one thread per physical core, since a core's second hardware
thread shares the core's arithmetic units and adds nothing to a decode but contention. Counted
within the CPUs this process may run on (``os.sched_getaffinity``: ``taskset``, a container's
cpuset) and no more than a cgroup CPU quota allows (``docker run --cpus``, a Kubernetes limit),
since threads beyond the quota wait for their turn and hold the others up at every step.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

SYS_CPU = Path("/sys/devices/system/cpu")
CGROUP_ROOT = Path("/sys/fs/cgroup")
PROC_CGROUP = Path("/proc/self/cgroup")


@dataclass(frozen=True)
class ThreadChoice:
    threads: int
    reason: str  # why, in words: ``herd serve`` logs it


def default_threads(
    *,
    affinity: set[int] | None = None,
    sys_cpu: Path = SYS_CPU,
    cgroup_root: Path = CGROUP_ROOT,
    proc_cgroup: Path = PROC_CGROUP,
) -> ThreadChoice:
    """The thread count for this process, and why (the paths are for tests)."""
    cpus = affinity if affinity is not None else os.sched_getaffinity(0)
    cores = physical_cores(cpus, sys_cpu)
    reason = f"{cores} physical core{'s' if cores != 1 else ''} among the {len(cpus)} CPUs"
    reason += " this process may use"
    quota = cgroup_cpu_quota(cgroup_root, proc_cgroup)
    if quota is not None and quota < cores:
        allowed = max(1, math.floor(quota))
        return ThreadChoice(allowed, f"{reason}, capped by a cgroup CPU quota of {quota:g}")
    return ThreadChoice(max(1, cores), reason)


def physical_cores(cpus: set[int], sys_cpu: Path = SYS_CPU) -> int:
    """How many distinct cores ``cpus`` are on: CPUs that are hardware threads of one core
    (the same ``thread_siblings_list``) count once. A CPU whose topology cannot be read counts
    as a core of its own."""
    cores: set[str] = set()
    for cpu in cpus:
        siblings = sys_cpu / f"cpu{cpu}" / "topology" / "thread_siblings_list"
        try:
            cores.add(siblings.read_text().strip())
        except OSError:
            cores.add(f"cpu{cpu}")
    return len(cores)


def cgroup_cpu_quota(
    cgroup_root: Path = CGROUP_ROOT, proc_cgroup: Path = PROC_CGROUP
) -> float | None:
    """CPUs' worth of time this process's cgroup (and every cgroup above it) may use, the
    smallest of them; None when none sets a quota. Reads cgroup v2's ``cpu.max``, else v1's
    ``cpu.cfs_quota_us`` and ``cpu.cfs_period_us``."""
    quotas = [q for q in (_v2_quota(d) for d in _v2_dirs(cgroup_root, proc_cgroup)) if q]
    v1 = _v1_quota(cgroup_root / "cpu")
    if v1:
        quotas.append(v1)
    return min(quotas) if quotas else None


def _v2_dirs(cgroup_root: Path, proc_cgroup: Path) -> list[Path]:
    """This process's cgroup v2 directory and its ancestors up to the root."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        return [cgroup_root]
    relative = next((line[3:] for line in lines if line.startswith("0::")), "/")
    here = cgroup_root / relative.lstrip("/")
    return [here, *[p for p in here.parents if p.is_relative_to(cgroup_root)]]


def _v2_quota(directory: Path) -> float | None:
    try:
        quota, period = (directory / "cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return None
    if quota == "max":
        return None
    return int(quota) / int(period)


def _v1_quota(directory: Path) -> float | None:
    try:
        quota = int((directory / "cpu.cfs_quota_us").read_text())
        period = int((directory / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None
