"""Rerank benchmark: requests/s of Herd's ``/v1/rerank`` against llama.cpp's ``llama-server
--rerank`` (built by bench/peers.py from the llama.cpp llama-cpp-python vendors), on the same
tiny reranker GGUF the tests write (tests/tiny_gguf.py: qwen3 architecture, rank pooling, a
classifier head, random weights), in the same run.

Both servers up at once, idle but the one measured. Each of 8 clients sends rerank requests of
16 short documents one after another; requests/s over the whole load, and the latency of one
request p50 / p95. Both lay a pair out the same way and pool it through the same head, so
their scores for the same request are compared too. Run with `make bench`; it rewrites the
rerank section of bench/RESULTS.md.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.common import (  # noqa: E402
    REPACK,
    THREADS,
    bench_arguments,
    record_figures,
    run_header,
    stop,
    wait_until_up,
    write_results,
)
from bench.peers import llama_server_binary  # noqa: E402
from tests.live import free_port  # noqa: E402
from tests.tiny_gguf import write_tiny_reranker  # noqa: E402

CLIENTS = 8
DOCUMENTS = 16
WORDS = [
    "the",
    "herd",
    "of",
    "llama",
    "model",
    "answer",
    "world",
    "token",
    "yes",
    "no",
    "true",
    "false",
    "hello",
    "one",
]


@dataclass
class RerankLoad:
    wall_s: float
    latencies: list[float]

    @property
    def requests_per_s(self) -> float:
        return len(self.latencies) / self.wall_s

    def latency(self, quantile: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))]


def body(client: int, round_: int, model: str) -> dict[str, Any]:
    """A request of its own: a query and ``DOCUMENTS`` documents of a few words each."""
    seed = client * 1000 + round_
    documents = [
        " ".join(WORDS[(seed + i * j) % len(WORDS)] for j in range(3 + i % 5))
        for i in range(DOCUMENTS)
    ]
    return {"model": model, "query": f"{WORDS[seed % len(WORDS)]} world", "documents": documents}


def run_load(base: str, model: str, rounds: int) -> RerankLoad:
    def one_client(index: int) -> list[float]:
        times = []
        with httpx.Client(timeout=600) as http:
            for round_ in range(rounds):
                started = time.perf_counter()
                reply = http.post(f"{base}/v1/rerank", json=body(index, round_, model))
                reply.raise_for_status()
                times.append(time.perf_counter() - started)
        return times

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        latencies = [t for times in pool.map(one_client, range(CLIENTS)) for t in times]
    return RerankLoad(time.perf_counter() - started, latencies)


def scores(base: str, model: str) -> dict[int, float]:
    reply = httpx.post(f"{base}/v1/rerank", json=body(0, 0, model), timeout=60)
    reply.raise_for_status()
    return {r["index"]: float(r["relevance_score"]) for r in reply.json()["results"]}


def start_herd(home: Path, model: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env.update({"HERD_HOME": str(home), "HERD_HOST": f"127.0.0.1:{port}"})
    herd = [sys.executable, "-m", "project.cli"]
    subprocess.run([*herd, "migrate", "-v0"], env=env, cwd=REPO, check=True)
    subprocess.run([*herd, "import", "reranker", str(model)], env=env, cwd=REPO, check=True)
    log = home / "serve.log"
    process = subprocess.Popen(
        [*herd, "serve"], env=env, cwd=REPO, stdout=log.open("ab"), stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    wait_until_up(
        process,
        f"{base}/api/status",
        log,
        timeout_s=60,
        ready=lambda response: response.status_code == 200 and bool(response.json()["workers"]),
    )
    return process, base


def start_llama_server(home: Path, model: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [str(llama_server_binary()), "-m", str(model), "--host", "127.0.0.1"]
    command += ["--port", str(port), "--rerank", "-t", str(THREADS)]
    if not REPACK:
        command.append("--no-repack")
    log = home / "llama-server.log"
    process = subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    wait_until_up(process, f"{base}/health", log)
    return process, base


def main() -> None:
    args = bench_arguments(__doc__).parse_args()
    rounds = 2 if args.quick else 25
    with tempfile.TemporaryDirectory(prefix="herd-bench-") as tmp:
        home = Path(tmp)
        model = write_tiny_reranker(home / "reranker.gguf")
        (home / "herd").mkdir()
        herd, herd_base = start_herd(home / "herd", model)
        llama, llama_base = start_llama_server(home, model)
        try:
            sides = {"herd": (herd_base, "reranker"), "llama_server": (llama_base, str(model))}
            for base, name in sides.values():
                scores(base, name)  # warm up: Herd loads the model on its first request
            agreement = _agreement(scores(herd_base, "reranker"), scores(llama_base, str(model)))
            results: dict[str, RerankLoad] = {}
            for key in ("herd", "llama_server", "llama_server", "herd"):  # two passes, ABBA
                load = run_load(*sides[key], rounds)
                earlier = results.get(key)
                results[key] = (
                    load
                    if earlier is None
                    else RerankLoad(
                        earlier.wall_s + load.wall_s, earlier.latencies + load.latencies
                    )
                )
                print(f"{key}: {load.requests_per_s:.1f} requests/s", flush=True)
        finally:
            stop(herd)
            stop(llama)
    record_figures(
        {f"rerank.{key}.requests_per_s": r.requests_per_s for key, r in results.items()},
        quick=args.quick,
    )
    report = summarize(results, agreement, rounds)
    print(report)
    write_results(report, quick=args.quick)


def _agreement(herd: dict[int, float], llama: dict[int, float]) -> float:
    """The largest difference between the two servers' scores of the same documents."""
    return max(abs(herd[i] - llama[i]) for i in herd)


def summarize(results: dict[str, RerankLoad], agreement: float, rounds: int) -> str:
    herd, llama = results["herd"], results["llama_server"]
    rows = [
        ("Herd `/v1/rerank`, its defaults", herd),
        (f"llama-server --rerank -t {THREADS}, its defaults otherwise", llama),
    ]
    table = [
        "| server | requests/s | latency p50 / p95 | requests/s ratio |",
        "|---|---|---|---|",
    ]
    for name, load in rows:
        table.append(
            f"| {name} | {load.requests_per_s:.1f} | {load.latency(0.5) * 1000:.1f} ms / "
            f"{load.latency(0.95) * 1000:.1f} ms | "
            f"{load.requests_per_s / llama.requests_per_s:.2f} |"
        )
    mean_ms = statistics.mean(herd.latencies) * 1000
    return "\n".join(
        [
            "## Reranking: the tiny reranker (tests/tiny_gguf.py)",
            "",
            f"{run_header()}. Both servers up at once, idle but the one measured; {CLIENTS} "
            f"clients each send {rounds} rerank requests of {DOCUMENTS} short documents one "
            "after another, twice on each server (Herd, llama-server, llama-server, Herd); "
            "requests/s over both runs, ratio against llama-server. The machine is shared with "
            "other work while this runs. The model is tiny, so this measures each server's "
            "request path and batching of pairs more than the model's arithmetic. Both score "
            f"the same request alike: the largest difference was {agreement:.2e} (Herd's mean "
            f"latency {mean_ms:.1f} ms).",
            "",
            *table,
            "",
        ]
    )


if __name__ == "__main__":
    main()
