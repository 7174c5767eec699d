from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.live import REPO
from workers.worker.devices import Device, DeviceError, available_ram, default_budget, parse_device


def test_it_parses_cpu_and_cuda_devices() -> None:
    assert parse_device("cpu") == Device("cpu")
    assert parse_device("cuda:1") == Device("cuda", 1)
    assert str(parse_device("cuda:3")) == "cuda:3"


@pytest.mark.parametrize("text", ["gpu", "cuda", "cuda:x", "cuda:-1", "CPU", ""])
def test_it_rejects_anything_else(text: str) -> None:
    with pytest.raises(DeviceError):
        parse_device(text)


def test_a_gpu_worker_sees_only_its_gpu_and_offloads_every_layer() -> None:
    gpu = parse_device("cuda:2")
    assert gpu.environment() == {"CUDA_VISIBLE_DEVICES": "2"}
    assert gpu.gpu_layers == -1


def test_a_cpu_worker_sees_no_gpu_and_offloads_nothing() -> None:
    cpu = parse_device("cpu")
    assert cpu.environment() == {"CUDA_VISIBLE_DEVICES": ""}
    assert cpu.gpu_layers == 0


def test_the_cpu_budget_is_the_available_ram(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal: 2000 kB\nMemFree: 10 kB\nMemAvailable: 1500 kB\n")
    assert available_ram(meminfo) == 1500 * 1024
    assert 0 < default_budget(parse_device("cpu")) <= available_ram() * 2


@pytest.mark.live  # a herd worker in a subprocess
@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--device", "gpu"], "expected cpu or cuda:N"),
        (["--memory-budget", "lots"], "is not a size"),
    ],
)
def test_the_worker_command_refuses_a_bad_device_or_budget(
    tmp_path: Path, flags: list[str], message: str
) -> None:
    env = {**os.environ, "HERD_HOME": str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-m", "project.cli", "worker", *flags],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert message in result.stderr
