"""Streaming benchmark: time to first token and decode speed, through the server vs in-process.

Both sides run the demo model (gemma3:270m) with the same prompt and greedy decoding; the
in-process side on as many threads as llama.cpp's own default. Trials alternate between the two
so that any background load hits both alike. The server is a real `herd serve` with its
defaults (embedded Valkey, one CPU worker) in a temporary HERD_HOME; requests go web -> Redis
-> Celery worker -> Redis stream -> web as SSE.

Run with `make bench`; it rewrites the streaming section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from openai import OpenAI

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.common import (  # noqa: E402
    DEMO,
    REPACK,
    THREADS,
    bench_arguments,
    demo_model_path,
    run_header,
    start_server,
    stop,
    write_results,
)
from tests.live import free_port  # noqa: E402

PROMPT = "Here is a long story about a lighthouse keeper and the sea. Once upon a time,"


@dataclass
class Trial:
    first_token_s: float
    decode_tokens_per_s: float
    tokens: int


def decode_rate(tokens: int, first_at: float, last_at: float) -> float:
    return (tokens - 1) / (last_at - first_at) if tokens > 1 and last_at > first_at else 0.0


def in_process_trial(llama: object, max_tokens: int) -> Trial:
    started = time.perf_counter()
    first_at = last_at = 0.0
    tokens = 0
    for _chunk in llama.create_completion(  # type: ignore[attr-defined]
        PROMPT, max_tokens=max_tokens, temperature=0.0, stream=True
    ):
        last_at = time.perf_counter()
        if tokens == 0:
            first_at = last_at
        tokens += 1
    return Trial(first_at - started, decode_rate(tokens, first_at, last_at), tokens)


def server_trial(client: OpenAI, max_tokens: int) -> Trial:
    started = time.perf_counter()
    first_at = last_at = 0.0
    tokens = 0
    stream = client.completions.create(
        model=DEMO,
        prompt=PROMPT,
        max_tokens=max_tokens,
        temperature=0.0,
        stream=True,
        stream_options={"include_usage": True},
    )
    for chunk in stream:
        if chunk.choices and chunk.choices[0].text:
            last_at = time.perf_counter()
            if not first_at:
                first_at = last_at
        if chunk.usage is not None:
            tokens = chunk.usage.completion_tokens
    return Trial(first_at - started, decode_rate(tokens, first_at, last_at), tokens)


def main() -> None:
    parser = bench_arguments(__doc__)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--max-tokens", type=int, default=128)
    args = parser.parse_args()
    if args.quick:
        args.trials, args.max_tokens = 2, 16

    from workers.engine.loading import Llama

    with tempfile.TemporaryDirectory(prefix="herd-bench-") as tmp:
        home = Path(tmp)
        port = free_port()
        server = start_server(home, port)
        try:
            client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="bench", max_retries=0)
            model_path = demo_model_path(home)
            llama = Llama(
                str(model_path), n_ctx=4096, n_threads=THREADS, verbose=False, repack=REPACK
            )
            # Warm both: the first server request loads the model in the worker.
            server_trial(client, 8)
            in_process_trial(llama, 8)
            local: list[Trial] = []
            remote: list[Trial] = []
            for _ in range(args.trials):
                local.append(in_process_trial(llama, args.max_tokens))
                remote.append(server_trial(client, args.max_tokens))
        finally:
            stop(server)

    report = summarize(local, remote, args)
    print(report)
    write_results(report, quick=args.quick)


def summarize(local: list[Trial], remote: list[Trial], args: argparse.Namespace) -> str:
    ttft_local = statistics.median(t.first_token_s for t in local) * 1000
    ttft_remote = statistics.median(t.first_token_s for t in remote) * 1000
    rate_local = statistics.median(t.decode_tokens_per_s for t in local)
    rate_remote = statistics.median(t.decode_tokens_per_s for t in remote)
    return "\n".join(
        [
            "## Streaming: one client, gemma3:270m (Q4_K_M)",
            "",
            f"{run_header()}; {args.trials} alternating trials of {args.max_tokens} greedy "
            f"tokens; medians. Herd with its defaults, in-process llama-cpp-python with "
            f"n_threads={THREADS}.",
            "",
            "| | in-process llama-cpp-python | Herd server (SSE) | ratio / difference |",
            "|---|---|---|---|",
            f"| decode tokens/s | {rate_local:.1f} | {rate_remote:.1f} | "
            f"{rate_remote / rate_local:.3f} of in-process |",
            f"| time to first token | {ttft_local:.1f} ms | {ttft_remote:.1f} ms | "
            f"{ttft_remote - ttft_local:+.1f} ms |",
            f"| tokens per answer | {local[0].tokens} | {remote[0].tokens} | |",
            "",
        ]
    )


if __name__ == "__main__":
    main()
