"""What the benchmarks share: a real `herd serve` with the demo model, the client loads sent to
every server alike, and RESULTS.md (with the figures the "Must show" section is made of)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import httpx

from workers.engine.loading import repack_weights
from workers.worker.cpus import physical_cores

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "RESULTS.md"
# A --quick run writes here instead, so that smoke tests never land in RESULTS.md.
QUICK_OUTPUT = REPO / ".cache" / "bench-quick"
# The figures of this `make bench` run that bench/must_show.py checks (the Makefile clears it).
FIGURES = REPO / ".cache" / "bench" / "figures.json"
DEMO = "gemma3:270m"
# Herd settings that tune it: a run of Herd "with its defaults" has none of them, whatever the
# shell that started the benchmark exports.
TUNING = ("HERD_PARALLEL", "HERD_NUM_THREADS", "HERD_NUM_CTX")
# Weight repacking as the server decides it (workers.engine.loading); every side of a run does
# the same (HERD_CPU_REPACK=off in the environment turns it off on all of them).
REPACK = repack_weights(os.environ.get("HERD_CPU_REPACK", "auto"))
# The thread count of the sides that must be given one (llama-cpp-python in-process and its
# server, a tuned Herd): llama-server's own default (the physical cores this process may run
# on, as llama.cpp counts them), so that none runs on fewer than llama-server.
THREADS = int(os.environ.get("BENCH_THREADS", "0")) or physical_cores(os.sched_getaffinity(0))


def bench_arguments(description: str | None) -> argparse.ArgumentParser:
    """An argument parser with the ``--quick`` flag every benchmark takes."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"tiny counts, a smoke test; results go to {QUICK_OUTPUT.relative_to(REPO)}/",
    )
    return parser


def start_server(
    home: Path,
    port: int,
    extra_env: dict[str, str] | None = None,
    *,
    repo: Path = REPO,
    python: str = sys.executable,
    demo: str = DEMO,
) -> subprocess.Popen[bytes]:
    """`herd serve` in ``home`` with the demo model ``demo`` installed, once it answers,
    started as `make run` starts it: Herd's defaults but for ``extra_env``. ``repo`` and
    ``python`` run another checkout of Herd (with its own virtualenv's interpreter)."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL", *TUNING)}
    env.update({"HERD_HOME": str(home), "HERD_HOST": f"127.0.0.1:{port}", **(extra_env or {})})
    herd = [python, "-m", "project.cli"]
    subprocess.run([*herd, "migrate", "-v0"], env=env, cwd=repo, check=True)
    # The benchmarks run Gemma 3 270M, not `make run`'s demo model: figures stay comparable.
    subprocess.run([*herd, "install_demo", demo], env=env, cwd=repo, check=True)
    log = home / "serve.log"
    process = subprocess.Popen(
        [*herd, "serve"], env=env, cwd=repo, stdout=log.open("ab"), stderr=subprocess.STDOUT
    )
    # Up once a worker has joined: web alone would answer the first requests 503.
    return wait_until_up(
        process,
        f"http://127.0.0.1:{port}/api/status",
        log,
        timeout_s=60,
        ready=lambda response: response.status_code == 200 and bool(response.json()["workers"]),
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    process.wait(30)


def wait_until_up(
    process: subprocess.Popen[bytes],
    url: str,
    log: Path,
    timeout_s: float = 120,
    ready: Callable[[httpx.Response], bool] = lambda response: response.status_code == 200,
    poll_s: float = 0.2,
) -> subprocess.Popen[bytes]:
    """``process`` once ``url``'s answer is ``ready``, asked every ``poll_s``; it is stopped,
    and its log's end raised, if it exits first or is not ready within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args!r} exited:\n{log.read_text()[-3000:]}")
        try:
            if ready(httpx.get(url, timeout=1)):
                return process
        except httpx.HTTPError:
            pass
        time.sleep(poll_s)
    process.terminate()
    raise RuntimeError(f"{process.args!r} did not start:\n{log.read_text()[-3000:]}")


def demo_model_path(home: Path) -> Path:
    return next((home / "models").glob("*.gguf"))


def cold_load_s(base: str) -> float:
    """The first request's ``load_duration``: the model loads for it."""
    body = {"model": DEMO, "prompt": "hi", "stream": False, "options": {"num_predict": 1}}
    answer = httpx.post(f"{base}/api/generate", json=body, timeout=600)
    answer.raise_for_status()
    return float(answer.json()["load_duration"]) / 1e9


def herd_log(home: Path, pattern: str) -> str | None:
    """The first group of ``pattern``'s last match in the log of the `herd serve` in
    ``home`` (its worker's lines included); None when no line matches."""
    found = re.findall(pattern, (home / "serve.log").read_text(errors="replace"))
    return str(found[-1]) if found else None


def herd_threads(home: Path) -> str | None:
    """The llama.cpp threads the worker chose, as it logged them ("2 llama.cpp threads
    (...)")."""
    threads = herd_log(home, r"(\d+) llama\.cpp threads")
    return f"{threads} llama.cpp threads" if threads else None


@dataclass(frozen=True)
class HerdContext:
    """What a Herd worker allocated for the demo model and how many sequences it decodes at
    once, as its ``/api/ps`` and its log say."""

    per_sequence: int  # ``context_length``: the most one sequence may hold
    cells: int  # the KV cache of every sequence together
    at_once: int | None  # None where the log does not say

    @property
    def whole_contexts(self) -> int:
        """Contexts of ``per_sequence`` tokens the cache holds."""
        return max(1, self.cells // self.per_sequence) if self.per_sequence else 1

    @property
    def shared(self) -> bool:
        """Whether its sequences share one cache they cannot all fill at once."""
        return self.at_once is not None and self.at_once > self.whole_contexts

    def describe(self) -> str:
        at_once = f"up to {self.at_once} sequences at once, " if self.at_once else ""
        return (
            f"{at_once}{self.per_sequence} tokens a sequence, {self.cells} KV cells "
            f"({self.whole_contexts} whole context{'' if self.whole_contexts == 1 else 's'})"
        )


def loaded_model(base: str, timeout_s: float = 30) -> dict[str, Any]:
    """The first model ``/api/ps`` lists, once it lists one: the worker's registry entry,
    which ``/api/ps`` reads, follows a load by up to a heartbeat."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        models = httpx.get(f"{base}/api/ps", timeout=10).json()["models"]
        if models:
            return dict(models[0])
        time.sleep(0.2)
    raise RuntimeError(f"{base}/api/ps listed no model within {timeout_s:.0f} s")


def herd_context(base: str, home: Path) -> HerdContext:
    """Read from ``/api/ps`` and the worker's log once the demo model is loaded by the
    `herd serve` in ``home`` at ``base``."""
    entry = loaded_model(base)
    cells = herd_log(home, r"in a cache of (\d+) tokens")
    at_once = herd_log(home, r"up to (\d+) at once")
    return HerdContext(
        int(entry["context_length"]), int(cells or 0), int(at_once) if at_once else None
    )


@dataclass
class Reply:
    first_token_s: float
    tokens: int


@dataclass
class LoadResult:
    clients: int
    wall_s: float
    replies: list[Reply]

    @property
    def tokens_per_s(self) -> float:
        return sum(r.tokens for r in self.replies) / self.wall_s

    @property
    def requests_per_s(self) -> float:
        return len(self.replies) / self.wall_s

    def joined(self, other: LoadResult) -> LoadResult:
        """This load and another run of it, as one: their replies over their summed wall time."""
        return LoadResult(self.clients, self.wall_s + other.wall_s, self.replies + other.replies)

    def first_token(self, quantile: float) -> float:
        ordered = sorted(r.first_token_s for r in self.replies)
        return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))]


def prompt(client: int, round_: int) -> str:
    return f"Story {client}-{round_}: the lighthouse keeper looked at the sea and"


def streamed_completion(
    http: httpx.Client, base: str, model: str, text: str, max_tokens: int
) -> Reply:
    """One SSE completion; tokens are the server's usage count when it sends one, else the
    number of chunks that carried text (each peer sends one token a chunk)."""
    body = {
        "model": model,
        "prompt": text,
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    started = time.perf_counter()
    first = 0.0
    chunks = 0
    usage: int | None = None
    # A new connection for every request, on every server: llama-server drops a kept-alive
    # connection after a streamed reply.
    headers = {"connection": "close"}
    with http.stream("POST", f"{base}/v1/completions", json=body, headers=headers) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("choices") and chunk["choices"][0].get("text"):
                chunks += 1
                if not first:
                    first = time.perf_counter()
            if chunk.get("usage"):
                usage = int(chunk["usage"]["completion_tokens"])
    return Reply(first - started if first else time.perf_counter() - started, usage or chunks)


def run_load(base: str, model: str, clients: int, rounds: int, max_tokens: int) -> LoadResult:
    """``clients`` at once, each sending ``rounds`` streamed greedy completions (each with its
    own prompt) one after another."""

    def one_client(index: int) -> list[Reply]:
        with httpx.Client(timeout=600) as http:
            return [
                streamed_completion(http, base, model, prompt(index, r), max_tokens)
                for r in range(rounds)
            ]

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        replies = [r for batch in pool.map(one_client, range(clients)) for r in batch]
    return LoadResult(clients, time.perf_counter() - started, replies)


def warm_up(base: str, model: str) -> None:
    with httpx.Client(timeout=600) as http:
        streamed_completion(http, base, model, "warm up", 8)


@contextmanager
def one_core_busy() -> Iterator[None]:
    """Another process keeping about one core busy for the time of the block: a plain Python
    busy loop, pinned to nothing, so that the scheduler puts it wherever it likes."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.2)  # running before the load starts
        yield
    finally:
        spinner.kill()
        spinner.wait()


def run_header(threads: int | None = None) -> str:
    """The date, the machine and weight repacking; ``threads`` where every side of a benchmark
    runs that many llama.cpp threads."""
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    repack = "on" if REPACK else "off"
    ran = "" if threads is None else f", {threads} llama.cpp thread{'' if threads == 1 else 's'}"
    return (
        f"Run {date.today().isoformat()} on {machine}{ran}, weight repacking {repack} "
        "(every side alike)"
    )


def results_path(quick: bool) -> Path:
    return QUICK_OUTPUT / RESULTS.name if quick else RESULTS


def figures_path(quick: bool) -> Path:
    return QUICK_OUTPUT / FIGURES.name if quick else FIGURES


def write_results(section: str, *, quick: bool = False, first: bool = False) -> None:
    """Put this benchmark's section (its first line is the title) into RESULTS.md, keeping the
    others: in the place of the one it replaces, else at the end; a ``first`` section right
    below the file's title."""
    path = results_path(quick)
    path.parent.mkdir(parents=True, exist_ok=True)
    title = section.splitlines()[0]
    existing = path.read_text() if path.exists() else "# Benchmark results\n\n"
    head, *others = existing.split("\n## ")
    sections = ["## " + part.rstrip() + "\n" for part in others]
    mine = [i for i, text in enumerate(sections) if text.startswith(title)]
    if first or not mine:
        sections = [text for text in sections if not text.startswith(title)]
        sections.insert(0 if first else len(sections), section)
    else:
        sections[mine[0]] = section
        sections = [text for i, text in enumerate(sections) if i not in mine[1:]]
    path.write_text("\n".join([head.rstrip() + "\n", *sections]))


def record_figures(figures: dict[str, float], *, quick: bool = False) -> None:
    """Add this benchmark's figures (seconds, tokens or requests a second) to this run's."""
    path = figures_path(quick)
    path.parent.mkdir(parents=True, exist_ok=True)
    stored = read_figures(quick=quick)
    stamp = datetime.now().isoformat(timespec="seconds")
    stored.update({name: {"value": value, "at": stamp} for name, value in figures.items()})
    path.write_text(json.dumps(stored, indent=1, sort_keys=True))


def read_figures(*, quick: bool = False) -> dict[str, dict[str, float | str]]:
    path = figures_path(quick)
    return dict(json.loads(path.read_text())) if path.exists() else {}
