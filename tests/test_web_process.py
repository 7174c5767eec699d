from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.live import LiveServer


def mapped_files(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


def cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")


def test_the_web_process_never_loads_llama_cpp(server: LiveServer) -> None:
    reply = httpx.post(
        f"{server.base_url}/v1/completions",
        json={"model": "tiny", "prompt": "hi", "max_tokens": 3},
        timeout=30,
    )
    assert reply.status_code == 200
    children = {pid: cmdline(pid) for pid in server.children()}
    (web,) = [pid for pid, cmd in children.items() if "uvicorn" in cmd]
    (worker,) = [pid for pid, cmd in children.items() if " worker " in cmd]
    assert "libllama" in mapped_files(worker)
    assert "libllama" not in mapped_files(web)


def test_a_model_is_loaded_once_and_kept(server: LiveServer) -> None:
    for _ in range(3):
        reply = httpx.post(
            f"{server.base_url}/v1/completions",
            json={"model": "tiny", "prompt": "hi", "max_tokens": 2},
            timeout=30,
        )
        assert reply.status_code == 200
    # The registry shows what the worker holds as of its last heartbeat.
    worker = server.wait_for_worker(lambda w: "tiny:latest" in w["resident"])
    assert worker["loads"].get("tiny:latest") == 1


def test_concurrent_first_requests_load_a_model_once(server: LiveServer, tiny_gguf: Path) -> None:
    server.herd("import", "fresh", str(tiny_gguf))

    def ask(_: int) -> int:
        return httpx.post(
            f"{server.base_url}/v1/completions",
            json={"model": "fresh", "prompt": "hi", "max_tokens": 2},
            timeout=60,
        ).status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        assert list(pool.map(ask, range(6))) == [200] * 6
    worker = server.wait_for_worker(lambda w: "fresh:latest" in w["resident"])
    assert worker["loads"]["fresh:latest"] == 1


def test_ps_status_and_the_registry_agree(server: LiveServer) -> None:
    assert (
        httpx.post(
            f"{server.base_url}/v1/completions",
            json={"model": "tiny", "prompt": "hi", "max_tokens": 2},
            timeout=60,
        ).status_code
        == 200
    )
    worker = server.wait_for_worker(lambda w: "tiny:latest" in w["resident"])
    held = set(worker["resident"])
    ps = {m["name"] for m in httpx.get(f"{server.base_url}/api/ps", timeout=10).json()["models"]}
    status = httpx.get(f"{server.base_url}/api/status", timeout=10).json()
    (listed,) = status["workers"]
    on_worker = {m["model"] for m in status["models"] if worker["name"] in m["resident_on"]}
    assert ps == held == set(listed["resident"]) == on_worker
    assert worker["lanes"] == listed["lanes"]
