"""Batch benchmark: N requests as one batch vs the same N sent one by one over HTTP, and vs
llama-cpp-python in-process, on the demo model.

Each request is a short greedy completion with its own prompt. Throughput is completion tokens
per second of wall time; the batch's time runs from `batches.create` to the output file.
Run with `make bench`; it rewrites the batch section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx
from openai import OpenAI

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.common import (  # noqa: E402
    DEMO,
    REPACK,
    THREADS,
    demo_model_path,
    run_header,
    start_server,
    write_results,
)
from tests.live import free_port  # noqa: E402


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


def one_by_one(base: str, texts: list[str], max_tokens: int) -> tuple[float, int]:
    client = httpx.Client(timeout=120)
    started = time.perf_counter()
    tokens = 0
    for text in texts:
        reply = client.post(
            f"{base}/v1/completions",
            json={"model": DEMO, "prompt": text, "max_tokens": max_tokens, "temperature": 0},
        )
        reply.raise_for_status()
        tokens += reply.json()["usage"]["completion_tokens"]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--max-tokens", type=int, default=8)
    args = parser.parse_args()
    texts = prompts(args.requests)
    with tempfile.TemporaryDirectory(prefix="herd-bench-") as tmp:
        home = Path(tmp)
        port = free_port()
        server = start_server(home, port)
        base = f"http://127.0.0.1:{port}"
        try:
            one_by_one(base, texts[:2], args.max_tokens)  # loads the model in the worker
            local = in_process(demo_model_path(home), texts, args.max_tokens)
            sequential = one_by_one(base, texts, args.max_tokens)
            batched = as_batch(base, texts, args.max_tokens)
        finally:
            server.terminate()
            server.wait(30)

    def row(name: str, result: tuple[float, int]) -> str:
        seconds, tokens = result
        rate = tokens / seconds
        base_rate = local[1] / local[0]
        return (
            f"| {name} | {seconds:.1f} s | {args.requests / seconds:.2f} | {rate:.1f} | "
            f"{rate / base_rate:.3f} |"
        )

    report = "\n".join(
        [
            "## Batch against one by one: gemma3:270m (Q4_K_M)",
            "",
            f"{run_header()}; {args.requests} requests, each a greedy completion of at most "
            f"{args.max_tokens} tokens with its own prompt.",
            "",
            "| how | wall time | requests/s | completion tokens/s | ratio to in-process |",
            "|---|---|---|---|---|",
            row("llama-cpp-python in-process, one by one", local),
            row("Herd, one by one over HTTP", sequential),
            row("Herd, one batch (/v1/batches)", batched),
            "",
        ]
    )
    print(report)
    write_results(report)


if __name__ == "__main__":
    main()
