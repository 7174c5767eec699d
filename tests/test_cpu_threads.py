"""The default llama.cpp thread count (``workers.worker.cpus``): physical cores within the
process's CPU affinity, capped by a cgroup CPU quota, read from a sysfs and cgroup tree made
for each case."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from project import cli
from tests.live import LiveServer
from workers.management.commands.worker import llama_thread_choice
from workers.worker.cpus import cgroup_cpu_quota, default_threads, physical_cores


def fake_cpus(root: Path, cores: list[list[int]]) -> Path:
    """A /sys/devices/system/cpu where each inner list is one core's hardware threads."""
    sys_cpu = root / "sys-cpu"
    for threads in cores:
        siblings = ",".join(str(t) for t in threads)
        for cpu in threads:
            topology = sys_cpu / f"cpu{cpu}" / "topology"
            topology.mkdir(parents=True)
            (topology / "thread_siblings_list").write_text(siblings + "\n")
    return sys_cpu


def fake_cgroup(root: Path, cpu_max: str | None, relative: str = "/") -> tuple[Path, Path]:
    cgroup_root = root / "cgroup"
    here = cgroup_root / relative.lstrip("/")
    here.mkdir(parents=True)
    if cpu_max is not None:
        (here / "cpu.max").write_text(cpu_max + "\n")
    proc = root / "proc-self-cgroup"
    proc.write_text(f"0::{relative}\n")
    return cgroup_root, proc


def test_two_vcpus_without_smt_are_two_cores(tmp_path: Path) -> None:
    sys_cpu = fake_cpus(tmp_path, [[0], [1]])
    cgroup_root, proc = fake_cgroup(tmp_path, None)
    choice = default_threads(
        affinity={0, 1}, sys_cpu=sys_cpu, cgroup_root=cgroup_root, proc_cgroup=proc
    )
    assert choice.threads == 2
    assert "2 physical cores" in choice.reason


def test_hardware_threads_of_one_core_count_once(tmp_path: Path) -> None:
    sys_cpu = fake_cpus(tmp_path, [[0, 4], [1, 5], [2, 6], [3, 7]])
    assert physical_cores(set(range(8)), sys_cpu) == 4


def test_only_the_cpus_of_the_affinity_count(tmp_path: Path) -> None:
    sys_cpu = fake_cpus(tmp_path, [[0, 4], [1, 5], [2, 6], [3, 7]])
    cgroup_root, proc = fake_cgroup(tmp_path, "max 100000")
    # taskset -c 0,4,1: two hardware threads of core 0 and one of core 1.
    choice = default_threads(
        affinity={0, 4, 1}, sys_cpu=sys_cpu, cgroup_root=cgroup_root, proc_cgroup=proc
    )
    assert choice.threads == 2
    assert "among the 3 CPUs" in choice.reason


def test_a_cgroup_quota_caps_the_threads(tmp_path: Path) -> None:
    sys_cpu = fake_cpus(tmp_path, [[c] for c in range(8)])
    # docker run --cpus=2.5, in a nested cgroup.
    cgroup_root, proc = fake_cgroup(tmp_path, "250000 100000", "/docker/abc")
    choice = default_threads(
        affinity=set(range(8)), sys_cpu=sys_cpu, cgroup_root=cgroup_root, proc_cgroup=proc
    )
    assert choice.threads == 2
    assert "quota of 2.5" in choice.reason


def test_a_quota_above_the_cores_changes_nothing(tmp_path: Path) -> None:
    sys_cpu = fake_cpus(tmp_path, [[0], [1]])
    cgroup_root, proc = fake_cgroup(tmp_path, "800000 100000")
    choice = default_threads(
        affinity={0, 1}, sys_cpu=sys_cpu, cgroup_root=cgroup_root, proc_cgroup=proc
    )
    assert choice.threads == 2
    assert "quota" not in choice.reason


def test_the_smallest_quota_up_the_tree_holds(tmp_path: Path) -> None:
    cgroup_root, proc = fake_cgroup(tmp_path, "max 100000", "/outer/inner")
    (cgroup_root / "outer" / "cpu.max").write_text("150000 100000\n")
    assert cgroup_cpu_quota(cgroup_root, proc) == 1.5


def test_a_quota_under_one_cpu_still_runs_one_thread(tmp_path: Path) -> None:
    sys_cpu = fake_cpus(tmp_path, [[0], [1]])
    cgroup_root, proc = fake_cgroup(tmp_path, "50000 100000")
    choice = default_threads(
        affinity={0, 1}, sys_cpu=sys_cpu, cgroup_root=cgroup_root, proc_cgroup=proc
    )
    assert choice.threads == 1


def test_cgroup_v1_quotas_are_read_too(tmp_path: Path) -> None:
    cgroup_root = tmp_path / "cgroup"
    (cgroup_root / "cpu").mkdir(parents=True)
    (cgroup_root / "cpu" / "cpu.cfs_quota_us").write_text("300000\n")
    (cgroup_root / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_cpu_quota(cgroup_root, tmp_path / "no-proc-file") == 3.0


def test_this_machine_gets_at_least_one_thread() -> None:
    choice = default_threads()
    assert 1 <= choice.threads <= len(os.sched_getaffinity(0))


@pytest.mark.live
def test_herd_serve_logs_the_thread_count_and_why(server: LiveServer) -> None:
    # The live servers set HERD_NUM_THREADS (tests.live): the log says so.
    assert "1 llama.cpp threads (HERD_NUM_THREADS)" in server.log_path.read_text()


def test_the_worker_says_why_it_chose_its_default(settings: Any) -> None:
    settings.HERD_NUM_THREADS = 0
    choice = default_threads()
    said = llama_thread_choice()
    assert said == f"{choice.threads} llama.cpp threads ({choice.reason})"
    assert "physical core" in said


def run_herd(env: dict[str, str]) -> dict[str, str]:
    """The environment a command run by ``herd`` sees, started with ``env``."""
    script = (
        "import json, os, sys; from project import cli; "
        "cli.main(['shell', '-c', 'import json, os; print(json.dumps(dict(os.environ)))'])"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def test_herd_makes_llama_cpps_openmp_threads_spin_briefly(tmp_path: Path) -> None:
    base = {k: v for k, v in os.environ.items() if k not in ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    base["HERD_HOME"] = str(tmp_path)
    assert run_herd(base)["GOMP_SPINCOUNT"] == cli.OPENMP_SPIN_COUNT
    # What the environment says wins.
    assert run_herd({**base, "GOMP_SPINCOUNT": "5"})["GOMP_SPINCOUNT"] == "5"
    assert "GOMP_SPINCOUNT" not in run_herd({**base, "OMP_WAIT_POLICY": "PASSIVE"})
