"""The device a worker is pinned to: ``cpu`` or ``cuda:N``, and how much memory it may use.

Nothing here imports llama.cpp: the worker command must set ``CUDA_VISIBLE_DEVICES`` before the
library loads, since CUDA reads it once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_DEVICE = re.compile(r"^(cpu|cuda:(\d+))$")


class DeviceError(ValueError):
    pass


@dataclass(frozen=True)
class Device:
    kind: str  # "cpu" or "cuda"
    index: int | None = None

    def __str__(self) -> str:
        return self.kind if self.index is None else f"{self.kind}:{self.index}"

    @property
    def is_gpu(self) -> bool:
        return self.kind == "cuda"

    def environment(self) -> dict[str, str]:
        """Variables to set before llama.cpp loads: a GPU worker sees only its own GPU (as
        device 0); a CPU worker sees none, so llama.cpp cannot place anything on a GPU."""
        return {"CUDA_VISIBLE_DEVICES": str(self.index) if self.is_gpu else ""}

    @property
    def gpu_layers(self) -> int:
        """llama.cpp's ``n_gpu_layers``: every layer on a GPU, none on the CPU."""
        return -1 if self.is_gpu else 0


def parse_device(text: str) -> Device:
    match = _DEVICE.match(text.strip())
    if not match:
        raise DeviceError(f"expected cpu or cuda:N, got {text!r}")
    return Device("cpu") if match.group(2) is None else Device("cuda", int(match.group(2)))


def available_ram(meminfo: Path = Path("/proc/meminfo")) -> int:
    """Bytes of RAM available for new allocations (MemAvailable), as Linux reckons it."""
    for line in meminfo.read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    raise DeviceError(f"no MemAvailable in {meminfo}")


def gpu_memory(index: int) -> int:
    """Total memory of GPU ``index``, from NVML (the nvidia-ml-py package)."""
    try:
        import pynvml
    except ImportError as exc:
        raise DeviceError(
            "reading GPU memory needs nvidia-ml-py (pip install nvidia-ml-py), "
            "or give --memory-budget"
        ) from exc
    pynvml.nvmlInit()
    try:
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        return int(pynvml.nvmlDeviceGetMemoryInfo(handle).total)
    finally:
        pynvml.nvmlShutdown()


def default_budget(device: Device) -> int:
    """The memory a worker may fill with models when no ``--memory-budget`` is given: the
    GPU's memory, or the RAM available now."""
    return gpu_memory(device.index or 0) if device.is_gpu else available_ram()
