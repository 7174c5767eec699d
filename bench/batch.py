"""Batch benchmark: N requests as one batch through Herd's Batch API, against llama.cpp's
``llama-server`` driven by 16 concurrent clients over the same N lines, and against the same
N sent one by one (to Herd over HTTP, and to llama-cpp-python in-process), on the demo model.

Each request is a short greedy completion with its own prompt. Herd runs with its defaults (as
`make run` starts it); llama-server with ``-np 8`` and with its own defaults, all up at once and
idle but the one measured. Throughput is completion tokens per second of wall time; the
batch's time runs from `batches.create` to the output file, the clients' from their first
request to their last answer. Run with `make bench`; it rewrites the batch section of
bench/RESULTS.md.
"""

from __future__ import annotations

import io
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from queue import Empty, SimpleQueue

import httpx
from openai import OpenAI

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.common import (  # noqa: E402
    DEMO,
    REPACK,
    THREADS,
    bench_arguments,
    record_figures,
    run_header,
    write_results,
)
from bench.peers import HERD, LLAMA_SERVER_NP8, Lineup, Server  # noqa: E402

CLIENTS = 16  # the clients that drive a server through the same lines
IN_PROCESS = "llama-cpp-python in-process, one by one"
REFERENCE = f"{LLAMA_SERVER_NP8}_clients"
BATCH = f"{HERD}_batch"


@dataclass(frozen=True)
class Run:
    key: str  # its name in the run's figures
    name: str
    settings: str
    seconds: float
    tokens: int

    def row(self, requests: int, base: Run, reference: Run) -> str:
        rate = self.tokens / self.seconds
        return (
            f"| {self.name} | {self.settings} | {self.seconds:.1f} s | "
            f"{requests / self.seconds:.2f} | {rate:.1f} | "
            f"{reference.seconds / self.seconds:.2f} | {rate / (base.tokens / base.seconds):.2f} |"
        )


def prompts(count: int) -> list[str]:
    return [f"Fact number {i} about the ocean:" for i in range(count)]


def in_process(path: Path, texts: list[str], max_tokens: int) -> tuple[float, int]:
    from workers.engine.loading import Llama

    llama = Llama(str(path), n_ctx=4096, n_threads=THREADS, verbose=False, repack=REPACK)
    started = time.perf_counter()
    tokens = 0
    for text in texts:
        reply = llama.create_completion(text, max_tokens=max_tokens, temperature=0.0)
        tokens += reply["usage"]["completion_tokens"]  # type: ignore[index]
    return time.perf_counter() - started, tokens


def driven(server: Server, texts: list[str], max_tokens: int, clients: int) -> tuple[float, int]:
    """``clients`` at once sending ``texts`` (each line once, to whichever client is free),
    each a plain (not streamed) completion; one client sends them one by one."""
    waiting: SimpleQueue[str] = SimpleQueue()
    for text in texts:
        waiting.put(text)

    def one_client(_: int) -> int:
        tokens = 0
        with httpx.Client(timeout=600) as http:
            while True:
                try:
                    text = waiting.get_nowait()
                except Empty:
                    return tokens
                body = {
                    "model": server.model,
                    "prompt": text,
                    "max_tokens": max_tokens,
                    "temperature": 0,
                }
                reply = http.post(f"{server.base}/v1/completions", json=body)
                reply.raise_for_status()
                tokens += int(reply.json()["usage"]["completion_tokens"])

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=clients) as pool:
        tokens = sum(pool.map(one_client, range(clients)))
    return time.perf_counter() - started, tokens


def as_batch(base: str, texts: list[str], max_tokens: int) -> tuple[float, int]:
    client = OpenAI(base_url=f"{base}/v1", api_key="bench", max_retries=0)
    lines = "\n".join(
        json.dumps(
            {
                "custom_id": f"r{i}",
                "method": "POST",
                "url": "/v1/completions",
                "body": {"model": DEMO, "prompt": text, "max_tokens": max_tokens, "temperature": 0},
            }
        )
        for i, text in enumerate(texts)
    )
    upload = client.files.create(file=("bench.jsonl", io.BytesIO(lines.encode())), purpose="batch")
    started = time.perf_counter()
    batch = client.batches.create(
        input_file_id=upload.id, endpoint="/v1/completions", completion_window="24h"
    )
    while batch.status not in ("completed", "failed", "expired", "cancelled"):
        time.sleep(0.2)
        batch = client.batches.retrieve(batch.id)
    assert batch.status == "completed" and batch.output_file_id, batch
    output = client.files.content(batch.output_file_id).text
    elapsed = time.perf_counter() - started
    results = [json.loads(line) for line in output.splitlines()]
    assert len(results) == len(texts)
    return elapsed, sum(r["response"]["body"]["usage"]["completion_tokens"] for r in results)


def measure(
    lineup: Lineup,
    herd: Server,
    reference: Server,
    defaults: Server,
    texts: list[str],
    max_tokens: int,
) -> list[Run]:
    """Every way of sending ``texts``, one after another, the in-process one first (the base)
    and llama-server -np 8 second (the reference)."""
    local = in_process(lineup.model(), texts, max_tokens)
    runs = [Run("in_process", IN_PROCESS, f"n_threads={THREADS}", *local)]
    for server in (reference, defaults, herd):
        took = driven(server, texts, max_tokens, CLIENTS)
        name = f"{server.name}, {CLIENTS} clients"
        runs.append(Run(f"{server.key}_clients", name, server.settings, *took))
    batched = as_batch(herd.base, texts, max_tokens)
    name = f"{herd.name}, one batch (/v1/batches)"
    runs.append(Run(BATCH, name, herd.settings, *batched))
    sequential = driven(herd, texts, max_tokens, 1)
    name = f"{herd.name}, one by one over HTTP"
    runs.append(Run(f"{HERD}_one_by_one", name, herd.settings, *sequential))
    return runs


def figures(runs: list[Run], requests: int) -> Iterator[tuple[str, float]]:
    for run in runs:
        yield f"batch.{run.key}.seconds", run.seconds
        yield f"batch.{run.key}.requests_per_s", requests / run.seconds


def main() -> None:
    parser = bench_arguments(__doc__)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--max-tokens", type=int, default=8)
    args = parser.parse_args()
    requests = 20 if args.quick else args.requests
    texts = prompts(requests)
    with tempfile.TemporaryDirectory(prefix="herd-bench-") as tmp, Lineup(Path(tmp)) as lineup:
        runs = measure(lineup, *lineup.start_main(), texts, args.max_tokens)
    record_figures(dict(figures(runs, requests)), quick=args.quick)
    report = summarize(runs, requests, args.max_tokens)
    print(report)
    write_results(report, quick=args.quick)


def summarize(runs: list[Run], requests: int, max_tokens: int) -> str:
    base, reference = runs[0], next(run for run in runs if run.key == REFERENCE)
    return "\n".join(
        [
            "## Batch API against llama-server and one by one: gemma3:270m (Q4_K_M)",
            "",
            f"{run_header()}; {requests} requests, each a greedy completion of at most "
            f"{max_tokens} tokens with its own prompt, the same lines for every way; "
            f"speed against {reference.name}: its wall time over this one's (above 1: faster).",
            "",
            "| how | settings | wall time | requests/s | completion tokens/s | "
            f"speed against {reference.name} | tokens/s ratio to in-process |",
            "|---|---|---|---|---|---|---|",
            *(run.row(requests, base, reference) for run in runs),
            "",
        ]
    )


if __name__ == "__main__":
    main()
