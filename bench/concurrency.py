"""Concurrency benchmark: aggregate tokens/s and time to first token with 1, 4, 8 and 16
clients, Herd against llama-cpp-python's server and llama.cpp's ``llama-server -np 8``.

Every server runs the demo model (gemma3:270m Q4_K_M) with the same thread count; all three
are up at once, idle but for the one being measured, and each client count is measured on each
server in turn. Each client sends streamed greedy completions of at
most 64 tokens, each with its own prompt, one after another, for a fixed number of rounds;
aggregate throughput is the completion tokens of all clients over the wall time of the whole
run. Run with `make bench`; it rewrites the concurrency section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.common import (  # noqa: E402
    DEMO,
    demo_model_path,
    run_header,
    start_server,
    write_results,
)
from bench.peers import (  # noqa: E402
    start_llama_cpp_python_server,
    start_llama_server,
)
from tests.live import free_port  # noqa: E402

CLIENTS = (1, 4, 8, 16)
# Every core: a step of several sequences is compute-bound, and each server gets the same.
THREADS = int(os.environ.get("BENCH_THREADS", "0")) or os.cpu_count() or 1
PARALLEL = 8  # Herd's HERD_PARALLEL and llama-server's -np
N_CTX = 2048  # per sequence, on every server


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


@dataclass
class Peer:
    name: str
    base: str
    model: str
    process: subprocess.Popen[bytes]
    results: list[LoadResult]


def measure_all(peers: list[Peer], args: argparse.Namespace) -> None:
    """Each client count on every server in turn, so that a slower spell of the machine falls
    on all of them alike rather than on whichever ran then."""
    for peer in peers:
        with httpx.Client(timeout=600) as http:
            streamed_completion(http, peer.base, peer.model, "warm up", 8)
    for clients in CLIENTS:
        for peer in peers:
            result = run_load(peer.base, peer.model, clients, args.rounds, args.max_tokens)
            print(
                f"{peer.name}: {clients} clients, {result.tokens_per_s:.1f} tokens/s, "
                f"first token p50 {result.first_token(0.5):.3f} s",
                flush=True,
            )
            peer.results.append(result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=4, help="requests per client")
    parser.add_argument("--max-tokens", type=int, default=64)
    args = parser.parse_args()

    peers: list[Peer] = []
    with tempfile.TemporaryDirectory(prefix="herd-bench-") as tmp:
        home = Path(tmp)
        try:
            port = free_port()
            herd_env = {
                "HERD_PARALLEL": str(PARALLEL),
                "HERD_NUM_CTX": str(N_CTX),
                "HERD_NUM_THREADS": str(THREADS),
            }
            process = start_server(home, port, herd_env)
            peers.append(Peer("Herd", f"http://127.0.0.1:{port}", DEMO, process, []))
            model = demo_model_path(home)
            port = free_port()
            process = start_llama_cpp_python_server(
                model, port, THREADS, N_CTX, home / "llama-cpp-python.log"
            )
            peers.append(
                Peer("llama-cpp-python server", f"http://127.0.0.1:{port}", str(model), process, [])
            )
            port = free_port()
            process = start_llama_server(
                model, port, THREADS, PARALLEL, N_CTX, home / "llama-server.log"
            )
            peers.append(Peer("llama-server", f"http://127.0.0.1:{port}", str(model), process, []))
            measure_all(peers, args)
        finally:
            for peer in peers:
                peer.process.terminate()
                peer.process.wait(30)

    herd, python_server, llama_server = (peer.results for peer in peers)
    report = summarize(herd, python_server, llama_server, args)
    print(report)
    write_results(report)


def summarize(
    herd: list[LoadResult],
    python_server: list[LoadResult],
    llama_server: list[LoadResult],
    args: argparse.Namespace,
) -> str:
    rows = []
    for ours, slow, fast in zip(herd, python_server, llama_server, strict=True):
        rows.append(
            f"| {ours.clients} | {ours.tokens_per_s:.0f} | "
            f"{ours.first_token(0.5):.2f} s / {ours.first_token(0.95):.2f} s | "
            f"{slow.tokens_per_s:.0f} | {slow.first_token(0.5):.2f} s / "
            f"{slow.first_token(0.95):.2f} s | {fast.tokens_per_s:.0f} | "
            f"{fast.first_token(0.5):.2f} s / {fast.first_token(0.95):.2f} s | "
            f"{ours.tokens_per_s / slow.tokens_per_s:.2f} | "
            f"{ours.tokens_per_s / fast.tokens_per_s:.2f} |"
        )
    median_tokens = statistics.median(r.tokens for r in herd[-1].replies)
    return "\n".join(
        [
            "## Concurrent clients: gemma3:270m (Q4_K_M)",
            "",
            f"{run_header(THREADS)}; each client sends {args.rounds} streamed greedy "
            f"completions of at most {args.max_tokens} tokens (median {median_tokens:.0f}), "
            f"one after another; Herd with HERD_PARALLEL={PARALLEL}, llama-server with "
            f"-np {PARALLEL}, {N_CTX} tokens of context per sequence on every server. "
            "Aggregate completion tokens/s over the whole run; first token p50 / p95.",
            "",
            "| clients | Herd tokens/s | Herd first token | llama-cpp-python server "
            "tokens/s | its first token | llama-server tokens/s | its first token | "
            "Herd / llama-cpp-python server | Herd / llama-server |",
            "|---|---|---|---|---|---|---|---|---|",
            *rows,
            "",
        ]
    )


if __name__ == "__main__":
    main()
