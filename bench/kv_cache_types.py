"""KV cache types benchmark: Herd with a q8_0 KV cache against Herd with f16, in the same memory
budget (``HERD_MEMORY_BUDGET``), on the demo model (gemma3:270m Q4_K_M): 16 clients x 4
streamed completions of 64 tokens, aggregate tokens/s and first token p50 / p95.

The budget is chosen so that the cache type changes what the worker makes of it: an f16 cache
leaves room for a context of a few thousand tokens a sequence, a q8_0 one (34 bytes for 32
values instead of 64) for the model's whole 32k. Both servers are up at once, idle but the one
measured, the load run on each in turn in two passes (each in the order opposite to the last's).
Run with `make bench`; it rewrites the KV cache types section of bench/RESULTS.md.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.common import (  # noqa: E402
    LoadResult,
    bench_arguments,
    loaded_model,
    record_figures,
    run_header,
    run_load,
    write_results,
)
from bench.peers import Lineup, Server  # noqa: E402

# The worker's memory budget for both servers: the demo model's 241 MiB of weights, the
# windows of its sliding-window layers for 32 sequences (247 MiB in f16, 131 MiB in q8_0) and
# what is left for the layers that keep every token.
BUDGET = "600MiB"
CACHE_TYPES = ("f16", "q8_0")
CLIENTS, ROUNDS, MAX_TOKENS = 16, 4, 64
PASSES = 2


def start(lineup: Lineup, cache_type: str) -> Server:
    env = {"HERD_KV_CACHE_TYPE": cache_type, "HERD_MEMORY_BUDGET": BUDGET}
    return lineup.herd(f"herd_{cache_type}", f"Herd, {cache_type} KV cache", env)


def ps_entry(server: Server) -> dict[str, int]:
    """What ``/api/ps`` shows of the loaded model: its size (weights and KV cache) and the
    context a sequence may hold."""
    entry = loaded_model(server.base)
    return {"size": int(entry["size"]), "context_length": int(entry["context_length"])}


def measure(servers: list[Server], quick: bool) -> dict[str, LoadResult]:
    rounds, tokens = (1, 8) if quick else (ROUNDS, MAX_TOKENS)
    results: dict[str, LoadResult] = {}
    order = list(servers)
    for _ in range(1 if quick else PASSES):
        for server in order:
            result = run_load(server.base, server.model, CLIENTS, rounds, tokens)
            earlier = results.get(server.key)
            results[server.key] = result if earlier is None else earlier.joined(result)
            print(
                f"{server.name}: {result.tokens_per_s:.1f} tokens/s, first token p50 "
                f"{result.first_token(0.5):.3f} s",
                flush=True,
            )
            time.sleep(0.5)  # the last step and its usage writes settle before the next load
        order.reverse()
    return results


def main() -> None:
    args = bench_arguments(__doc__).parse_args()
    with tempfile.TemporaryDirectory(prefix="herd-bench-") as tmp, Lineup(Path(tmp)) as lineup:
        servers = [start(lineup, cache_type) for cache_type in CACHE_TYPES]
        shown = {server.key: ps_entry(server) for server in servers}
        results = measure(servers, args.quick)
        weights = (lineup.model()).stat().st_size
    figures: dict[str, float] = {}
    for server in servers:
        result = results[server.key]
        figures[f"kv_cache_types.{server.key}.tokens_per_s"] = result.tokens_per_s
        figures[f"kv_cache_types.{server.key}.first_token_p50"] = result.first_token(0.5)
        figures[f"kv_cache_types.{server.key}.first_token_p95"] = result.first_token(0.95)
        figures[f"kv_cache_types.{server.key}.context_length"] = shown[server.key]["context_length"]
    record_figures(figures, quick=args.quick)
    report = summarize(servers, results, shown, weights, args.quick)
    print(report)
    write_results(report, quick=args.quick)


def summarize(
    servers: list[Server],
    results: dict[str, LoadResult],
    shown: dict[str, dict[str, int]],
    weights: int,
    quick: bool,
) -> str:
    reference = results[servers[0].key]
    load = "1 x 8" if quick else f"{ROUNDS} x {MAX_TOKENS}"
    lines = [
        "## KV cache types: q8_0 against f16 in one memory budget, gemma3:270m (Q4_K_M)",
        "",
        f"{run_header()}. Both servers up at once with HERD_MEMORY_BUDGET={BUDGET}, idle but "
        f"the one measured; {CLIENTS} clients x {load} streamed greedy completions of "
        f"distinct prompts, in {1 if quick else PASSES} passes over the servers (alternating "
        "their order), figures over all passes. The machine is shared with other work while "
        "this runs: compare the two rows, not these figures with other sections'. KV cache "
        "is /api/ps's size less the model file; context is what one sequence may hold, as "
        "the budget left it. Both caches admit all 16 of these short answers at once (each "
        "takes its prompt and 64 cells): what the type changes here is the context the budget "
        "leaves each sequence and the bytes each step reads.",
        "",
        "| server | context a sequence | KV cache | tokens/s | first token p50 / p95 | "
        "tokens/s ratio | first token p50 ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for server in servers:
        result = results[server.key]
        entry = shown[server.key]
        kv_mib = (entry["size"] - weights) / 2**20
        lines.append(
            f"| {server.name} | {entry['context_length']} | {kv_mib:.1f} MiB | "
            f"{result.tokens_per_s:.1f} | {result.first_token(0.5):.3f} s / "
            f"{result.first_token(0.95):.3f} s | "
            f"{result.tokens_per_s / reference.tokens_per_s:.2f} | "
            f"{result.first_token(0.5) / reference.first_token(0.5):.2f} |"
        )
    return "\n".join([*lines, ""])


if __name__ == "__main__":
    main()
