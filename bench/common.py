"""What the benchmarks share: a real `herd serve` with the demo model, and RESULTS.md."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import httpx

from workers.engine.loading import repack_weights

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "RESULTS.md"
DEMO = "gemma3:270m"
# The server's own default; the in-process side uses the same.
THREADS = int(os.environ.get("BENCH_THREADS", "0")) or max(1, (os.cpu_count() or 1) // 2)
# Weight repacking as the server decides it (workers.engine.loading); every side of a run does
# the same.
REPACK = repack_weights(os.environ.get("HERD_CPU_REPACK", "auto"))


def start_server(
    home: Path,
    port: int,
    extra_env: dict[str, str] | None = None,
    *,
    repo: Path = REPO,
    python: str = sys.executable,
) -> subprocess.Popen[bytes]:
    """`herd serve` in ``home`` with the demo model installed, once it answers. ``repo`` and
    ``python`` run another checkout of Herd (with its own virtualenv's interpreter)."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env.update(
        {
            "HERD_HOME": str(home),
            "HERD_HOST": f"127.0.0.1:{port}",
            "HERD_NUM_THREADS": str(THREADS),
            **(extra_env or {}),
        }
    )
    herd = [python, "-m", "project.cli"]
    subprocess.run([*herd, "migrate", "-v0"], env=env, cwd=repo, check=True)
    subprocess.run([*herd, "install_demo"], env=env, cwd=repo, check=True)
    log = home / "serve.log"
    process = subprocess.Popen(
        [*herd, "serve"], env=env, cwd=repo, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )
    # Up once a worker has joined: web alone would answer the first requests 503.
    return wait_until_up(
        process,
        f"http://127.0.0.1:{port}/api/status",
        log,
        timeout_s=60,
        ready=lambda response: response.status_code == 200 and bool(response.json()["workers"]),
    )


def wait_until_up(
    process: subprocess.Popen[bytes],
    url: str,
    log: Path,
    timeout_s: float = 120,
    ready: Callable[[httpx.Response], bool] = lambda response: response.status_code == 200,
) -> subprocess.Popen[bytes]:
    """``process`` once ``url``'s answer is ``ready``; it is stopped, and its log's end
    raised, if it exits first or is not ready within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited:\n{log.read_text()[-3000:]}")
        try:
            if ready(httpx.get(url, timeout=1)):
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    process.terminate()
    raise RuntimeError(f"{process.args!r} did not start:\n{log.read_text()[-3000:]}")


def demo_model_path(home: Path) -> Path:
    return next((home / "models").glob("*.gguf"))


def run_header(threads: int = THREADS) -> str:
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    repack = "on" if REPACK else "off"
    return (
        f"Run {date.today().isoformat()} on {machine}, {threads} llama.cpp "
        f"thread{'' if threads == 1 else 's'}, "
        f"weight repacking {repack}"
    )


def write_results(section: str, path: Path = RESULTS) -> None:
    """Replace this benchmark's section of RESULTS.md (its first line is the title), keeping
    the others."""
    title = section.splitlines()[0]
    existing = path.read_text() if path.exists() else "# Benchmark results\n\n"
    parts = existing.split("\n## ")
    kept = [parts[0].rstrip() + "\n"] + [
        "## " + p.rstrip() + "\n" for p in parts[1:] if not ("## " + p).startswith(title)
    ]
    path.write_text("\n".join([*kept, section]))
