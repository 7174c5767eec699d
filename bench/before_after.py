"""Herd against an earlier checkout of itself: the same client loads on both, alternating, in
one run on one machine, so that a change to the request path shows what it costs.

    python bench/before_after.py /path/to/earlier/checkout [--label "the redesign"]

The earlier checkout runs with its own virtualenv (``.venv`` in it). Both servers run the demo
model with the same settings and are up at once, idle but for the one being measured; each load
runs on one, then the other, ``--trials`` times. First, each model's cold load (the first
request's ``load_duration``); then the loads: one client, eight clients
(streamed greedy completions of 64 tokens, as ``bench/concurrency.py`` sends them) and 32
clients asking for one token each (the cost of the web, queue, worker and stream path itself).
It rewrites its own section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.common import (  # noqa: E402
    DEMO,
    THREADS,
    LoadResult,
    bench_arguments,
    cold_load_s,
    run_header,
    run_load,
    start_server,
    stop,
    warm_up,
    write_results,
)
from tests.live import free_port  # noqa: E402

LOADS = ((1, 4, 64), (8, 4, 64), (32, 2, 1))  # clients, requests per client, max tokens
QUICK_LOADS = ((1, 1, 16), (8, 1, 16), (32, 1, 1))
# Both sides alike, so that what differs is the code: eight sequences of 2048 tokens.
PARALLEL = 8
N_CTX = 2048


def git_commit(repo: Path) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def requests_per_s(result: LoadResult) -> float:
    return result.requests_per_s


def tokens_per_s(result: LoadResult) -> float:
    return result.tokens_per_s


def main() -> None:
    parser = bench_arguments(__doc__)
    parser.add_argument("earlier", type=Path, help="the earlier checkout, with its .venv")
    parser.add_argument("--label", default="this change")
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args()
    if args.quick:
        args.trials = 1
    plan = QUICK_LOADS if args.quick else LOADS
    earlier: Path = args.earlier.resolve()
    settings = {
        "HERD_PARALLEL": str(PARALLEL),
        "HERD_NUM_CTX": str(N_CTX),
        "HERD_NUM_THREADS": str(THREADS),
    }
    sides = {
        f"before ({git_commit(earlier)})": (earlier, str(earlier / ".venv" / "bin" / "python")),
        f"after ({git_commit(REPO)})": (REPO, sys.executable),
    }
    results: dict[str, dict[int, list[LoadResult]]] = {name: {} for name in sides}
    processes = []
    loads: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="herd-before-after-") as tmp:
        try:
            bases = {}
            for index, (name, (repo, python)) in enumerate(sides.items()):
                port = free_port()
                home = Path(tmp) / f"side{index}"
                home.mkdir()
                processes.append(start_server(home, port, settings, repo=repo, python=python))
                bases[name] = f"http://127.0.0.1:{port}"
                loads[name] = cold_load_s(bases[name])
                print(f"{name}: the model loaded in {loads[name]:.2f} s", flush=True)
                warm_up(bases[name], DEMO)
            for trial in range(args.trials):
                for clients, rounds, max_tokens in plan:
                    for name, base in bases.items():
                        result = run_load(base, DEMO, clients, rounds, max_tokens)
                        results[name].setdefault(clients, []).append(result)
                        print(
                            f"trial {trial + 1}, {name}: {clients} clients, "
                            f"{result.tokens_per_s:.1f} tokens/s, {result.requests_per_s:.1f} "
                            f"requests/s, first token p50 {result.first_token(0.5):.3f} s",
                            flush=True,
                        )
                        time.sleep(0.5)  # the engine's last step and the usage writes settle
        finally:
            for process in processes:
                stop(process)
    report = summarize(results, loads, plan, args)
    print(report)
    write_results(report, quick=args.quick)


def summarize(
    results: dict[str, dict[int, list[LoadResult]]],
    loads: dict[str, float],
    plan: tuple[tuple[int, int, int], ...],
    args: argparse.Namespace,
) -> str:
    before, after = results
    rows = [
        f"| cold load of the model (first request) | {loads[before]:.2f} s | "
        f"{loads[after]:.2f} s | {loads[after] / loads[before]:.2f} |"
    ]
    for clients, _rounds, max_tokens in plan:
        cells = []
        for name in (before, after):
            runs = results[name][clients]
            if max_tokens == 1:
                cells.append(f"{statistics.median(requests_per_s(r) for r in runs):.1f} req/s")
            else:
                tokens = statistics.median(r.tokens_per_s for r in runs)
                first = statistics.median(r.first_token(0.5) for r in runs)
                cells.append(f"{tokens:.1f} tokens/s, first token {first * 1000:.0f} ms")
        metric = requests_per_s if max_tokens == 1 else tokens_per_s
        ratio = statistics.median(map(metric, results[after][clients])) / statistics.median(
            map(metric, results[before][clients])
        )
        load = f"{clients} clients x max_tokens {max_tokens}"
        rows.append(f"| {load} | {cells[0]} | {cells[1]} | {ratio:.2f} |")
    return "\n".join(
        [
            f"## Before and after {args.label}: gemma3:270m (Q4_K_M)",
            "",
            f"{run_header(THREADS)}; both servers up at once with HERD_PARALLEL={PARALLEL}, "
            f"{N_CTX} tokens of context per sequence; each load on one server, then the "
            f"other, {args.trials} times; medians of the trials (first token: median of each "
            "trial's p50).",
            "",
            f"| load | {before} | {after} | after / before |",
            "|---|---|---|---|",
            *rows,
            "",
        ]
    )


if __name__ == "__main__":
    main()
