"""Interactive time to first token while a batch backlog saturates the worker.

A 200-line batch of completions fills the demo model's batch lane; while it runs, streamed
chat requests are sent one at a time on the interactive lane. Their first-token times are
compared with the same requests on the idle server and with llama-cpp-python in-process (on as
many threads as llama.cpp's own default). Herd runs with its defaults.
Run with `make bench`; it rewrites its section of bench/RESULTS.md.
"""

from __future__ import annotations

import io
import json
import statistics
import sys
import tempfile
import time
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

PROMPT = "Write one sentence about the moon."


def first_token_seconds(client: OpenAI) -> float:
    """Seconds to the first text of one streamed answer, read to its end: a stream closed
    early would leave its last tokens decoding into the next request's time."""
    started = time.perf_counter()
    stream = client.completions.create(
        model=DEMO, prompt=PROMPT, max_tokens=8, temperature=0.0, stream=True
    )
    elapsed = None
    for chunk in stream:
        if elapsed is None and chunk.choices and chunk.choices[0].text:
            elapsed = time.perf_counter() - started
    if elapsed is None:
        raise RuntimeError("no token came")
    return elapsed


def in_process_first_token(path: Path, trials: int) -> list[float]:
    from workers.engine.loading import Llama

    llama = Llama(str(path), n_ctx=4096, n_threads=THREADS, verbose=False, repack=REPACK)
    times = []
    for _ in range(trials):
        # Without a reset, llama-cpp-python samples a repeated prompt's answer from logits it
        # kept, decoding nothing.
        llama.reset()
        started = time.perf_counter()
        for chunk in llama.create_completion(PROMPT, max_tokens=8, temperature=0.0, stream=True):
            if chunk["choices"][0]["text"]:  # type: ignore[index]
                times.append(time.perf_counter() - started)
                break
    return times


def main() -> None:
    parser = bench_arguments(__doc__)
    parser.add_argument("--lines", type=int, default=200)
    parser.add_argument("--trials", type=int, default=10)
    args = parser.parse_args()
    if args.quick:
        # Still enough lines to outlast the trials: the backlog must run throughout.
        args.lines, args.trials = 60, 3
    with tempfile.TemporaryDirectory(prefix="herd-bench-") as tmp:
        home = Path(tmp)
        port = free_port()
        server = start_server(home, port)
        client = OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="bench", max_retries=0)
        try:
            first_token_seconds(client)  # loads the model
            idle = [first_token_seconds(client) for _ in range(args.trials)]
            lines = "\n".join(
                json.dumps(
                    {
                        "custom_id": f"b{i}",
                        "method": "POST",
                        "url": "/v1/completions",
                        "body": {
                            "model": DEMO,
                            "prompt": f"Story {i}:",
                            "max_tokens": 64,
                            "temperature": 0,
                        },
                    }
                )
                for i in range(args.lines)
            )
            upload = client.files.create(
                file=("backlog.jsonl", io.BytesIO(lines.encode())), purpose="batch"
            )
            batch = client.batches.create(
                input_file_id=upload.id, endpoint="/v1/completions", completion_window="24h"
            )
            time.sleep(2)
            busy = []
            for _ in range(args.trials):
                busy.append(first_token_seconds(client))
                time.sleep(0.5)
            counts = client.batches.retrieve(batch.id).request_counts
            assert counts is not None and counts.completed < args.lines, "backlog ran dry"
            client.batches.cancel(batch.id)
        finally:
            stop(server)
        # With the server gone, so that nothing else runs beside it.
        local = in_process_first_token(demo_model_path(home), args.trials)

    def ms(values: list[float]) -> str:
        return f"{statistics.median(values) * 1000:.0f} ms (p95 {max(values) * 1000:.0f} ms)"

    base = statistics.median(local)
    report = "\n".join(
        [
            "## Interactive first token under a batch backlog: gemma3:270m (Q4_K_M)",
            "",
            f"{run_header()}; {args.trials} streamed completions, one at a time, while a "
            f"{args.lines}-line batch (64 tokens a line) keeps the worker busy; median and max. "
            f"Herd with its defaults, in-process llama-cpp-python with n_threads={THREADS}.",
            "",
            "| | time to first token | ratio to in-process |",
            "|---|---|---|",
            f"| llama-cpp-python in-process, idle | {ms(local)} | 1.00 |",
            f"| Herd, idle | {ms(idle)} | {statistics.median(idle) / base:.2f} |",
            f"| Herd, batch backlog running | {ms(busy)} | {statistics.median(busy) / base:.2f} |",
            "",
            "Batch lines fill every slot of the model's engine but one, which is kept for",
            "interactive requests: a chat request joins the next decode step; without the lanes",
            "and that slot it would wait for the whole backlog. What it waits for is the step",
            "in progress, which carries up to 31 batch lines; from then on the batch lines take",
            "at most half of each step the chat is in.",
            "",
        ]
    )
    print(report)
    write_results(report, quick=args.quick)


if __name__ == "__main__":
    main()
