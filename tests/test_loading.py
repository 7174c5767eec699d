"""Loading a model (``workers.engine.loading``): llama.cpp's weight repacking as HERD_CPU_REPACK
says, off by default where llama.cpp would hand the weights to its AMX kernels."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import llama_cpp
import pytest

from workers.broker.wire import ModelSpec
from workers.engine.loading import Llama, cpu_has_amx, repack_weights
from workers.worker.residency import Residency

REPO = Path(__file__).resolve().parent.parent


def test_auto_repacks_except_where_llama_cpp_reports_amx() -> None:
    assert repack_weights("on") is True
    assert repack_weights("off") is False
    reported = "AMX_INT8 = 1" in llama_cpp.llama_print_system_info().decode()
    assert cpu_has_amx() is reported
    assert repack_weights("auto") is not reported
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    if "amx_int8" not in flags:
        assert not cpu_has_amx()


def test_the_flag_reaches_the_model_params(tiny_gguf: Path) -> None:
    for repack in (True, False):
        llama = Llama(str(tiny_gguf), n_ctx=64, verbose=False, repack=repack)
        try:
            assert llama.model_params.use_extra_bufts is repack
            assert llama.tokenize(b"hello")  # the model loaded
        finally:
            llama.close()


def test_workers_load_models_as_herd_cpu_repack_says(tiny_gguf: Path, settings: Any) -> None:
    spec = ModelSpec(id=1, name="tiny", path=str(tiny_gguf), num_ctx=256)
    residency = Residency()
    for choice, repacked in (("off", False), ("on", True)):
        settings.HERD_CPU_REPACK = choice
        resident = residency.get(spec)
        try:
            assert resident.engine.llama.model_params.use_extra_bufts is repacked
        finally:
            residency.release(resident, 0)
            residency.unload(1)


@pytest.mark.live  # a herd command in a subprocess
def test_a_bad_herd_cpu_repack_stops_the_server_at_start() -> None:
    env = {**os.environ, "HERD_CPU_REPACK": "sometimes"}
    checked = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert checked.returncode != 0
    assert "HERD_CPU_REPACK: expected auto, on or off, got 'sometimes'" in checked.stderr
