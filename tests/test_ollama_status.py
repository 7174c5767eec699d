"""``/api/ps``, ``/api/version``, and the root probe."""

from __future__ import annotations

import importlib.metadata
import time
from pathlib import Path

import httpx
import ollama

from tests.inprocess import InProcessServer
from tests.live import REPO, LiveServer


def test_ps_lists_what_the_worker_holds_with_its_details(
    server: LiveServer, ollama_client: ollama.Client
) -> None:
    ollama_client.generate(model="tiny", prompt="hi", options={"num_predict": 2})
    deadline = time.monotonic() + 5
    while not [m for m in ollama_client.ps().models if m.name == "tiny:latest"]:
        assert time.monotonic() < deadline, "tiny never showed in /api/ps"
        time.sleep(0.1)
    (model,) = [m for m in ollama_client.ps().models if m.name == "tiny:latest"]
    assert model.model == "tiny:latest"
    assert model.size and model.size > 100_000
    assert model.size_vram == 0  # the test worker is a CPU worker
    assert model.digest and len(model.digest) == 64
    assert model.context_length == 4096
    assert model.expires_at is not None
    assert model.details is not None
    assert model.details.format == "gguf"
    assert model.details.family == "llama"
    assert model.details.quantization_level == "F32"
    assert (model.details.parameter_size or "").endswith("K")
    # It matches what the worker itself reports in the registry.
    (worker,) = server.workers()
    assert "tiny:latest" in worker["resident"]


def test_ps_shows_a_model_only_once_a_worker_has_loaded_it(
    server: LiveServer, tiny_gguf: Path, ollama_client: ollama.Client
) -> None:
    server.herd("import", "ps-probe", str(tiny_gguf))
    imported = time.time()
    # A heartbeat written since: the registry is current.
    server.wait_for_worker(lambda worker: float(worker["time"]) > imported, timeout=10)
    assert "ps-probe:latest" not in {m.name for m in ollama_client.ps().models}
    ollama_client.generate(model="ps-probe", prompt="hi", options={"num_predict": 1})
    deadline = time.monotonic() + 5
    while "ps-probe:latest" not in {m.name for m in ollama_client.ps().models}:
        assert time.monotonic() < deadline, "ps-probe never showed in /api/ps"
        time.sleep(0.1)


def test_version_answers_the_ollama_api_version_and_herds_own_in_a_header(
    server: LiveServer,
) -> None:
    reply = httpx.get(f"{server.base_url}/api/version", timeout=10)
    assert reply.status_code == 200
    followed = (REPO / "tests" / "specs" / "ollama-version.txt").read_text().strip()
    assert reply.json() == {"version": followed}
    # Codex's --oss path refuses an Ollama older than 0.13.4.
    assert tuple(int(part) for part in followed.split(".")) >= (0, 13, 4)
    assert reply.headers["X-Herd-Version"] == importlib.metadata.version("herd")
    shown = server.herd("--version").stdout
    assert shown == f"herd version {importlib.metadata.version('herd')} (Ollama API {followed})\n"


def test_the_root_answers_get_and_head_as_ollama_does(web: InProcessServer) -> None:
    got = web.get(f"{web.base_url}/", timeout=10)
    assert got.status_code == 200
    assert got.text == "Ollama is running"
    head = web.head(f"{web.base_url}/", timeout=10)
    assert head.status_code == 200
    assert head.content == b""
