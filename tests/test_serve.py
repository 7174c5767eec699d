"""`herd serve` as a whole: its settings, its children, and stopping without leftovers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.live import REPO, make_server


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes: it only waits to be reaped.
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


@pytest.mark.live
@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_it_serves_on_herd_host_and_stops_everything_on_a_signal(
    tmp_path: Path, tiny_gguf: Path, stop_signal: signal.Signals
) -> None:
    server = make_server(tmp_path, {"tiny": tiny_gguf}, {})
    server.start()
    try:
        assert httpx.get(f"http://{server.env['HERD_HOST']}/", timeout=5).status_code == 200
        children = server.children()
        names = {Path(f"/proc/{p}/cmdline").read_text() for p in children}
        assert any("uvicorn" in n for n in names)
        assert any("beat" in n for n in names)
        assert any("worker" in n for n in names)
        if not server.env.get("REDIS_URL"):
            assert any("valkey-server" in n for n in names)
            assert (server.home / "valkey").is_dir()
        if not server.env.get("DATABASE_URL"):
            assert (server.home / "herd.sqlite3").exists()
        assert server.process is not None
        server.process.send_signal(stop_signal)
        server.process.wait(30)
        deadline = time.monotonic() + 5
        while any(alive(p) for p in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [p for p in children if alive(p)] == []
    finally:
        server.stop()


@pytest.mark.live  # a herd command in a subprocess
def test_herd_lists_its_commands() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "project.cli", "help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    for command in ("serve", "worker", "import_model", "install_demo"):
        assert command in result.stdout


@pytest.mark.live  # a herd command in a subprocess
def test_a_malformed_herd_host_is_refused(tmp_path: Path) -> None:
    env = {**os.environ, "HERD_HOME": str(tmp_path), "HERD_HOST": "nonsense"}
    result = subprocess.run(
        [sys.executable, "-m", "project.cli", "serve"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "HERD_HOST" in result.stderr


@pytest.mark.live
def test_a_request_that_comes_before_any_worker_is_served_once_one_is_up(
    tmp_path: Path, tiny_gguf: Path
) -> None:
    server = make_server(tmp_path, {"tiny": tiny_gguf}, {})
    log = server.log_path.open("ab")
    server.process = subprocess.Popen(
        [sys.executable, "-m", "project.cli", "serve"],
        env=server.env,
        cwd=REPO,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{server.base_url}/v1/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline
            time.sleep(0.05)
        no_worker_yet = not server.workers()
        reply = httpx.post(
            f"{server.base_url}/v1/completions",
            json={"model": "tiny", "prompt": "hi", "max_tokens": 2},
            timeout=60,
        )
        assert reply.status_code == 200, (no_worker_yet, reply.text)
    finally:
        server.stop()
