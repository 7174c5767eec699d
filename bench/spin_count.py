"""OpenMP spin count: how long llama.cpp's CPU threads spin before they sleep, measured on Herd.

llama.cpp's CPU backend runs its threads with OpenMP (GCC's libgomp), which spins
``GOMP_SPINCOUNT`` times at each barrier and between two parallel regions (two decode steps)
before it sleeps. Each variant is a `herd serve` with its defaults but for that variable (or
``OMP_WAIT_POLICY=PASSIVE``), measured at eight clients on a quiet machine, then with another
process keeping one core busy. `herd` sets ``GOMP_SPINCOUNT`` to ``project.cli.OPENMP_SPIN_COUNT``
unless the environment says otherwise; ``default`` below is libgomp's own (300000).

    python bench/spin_count.py [--spins 300000,10000,1000,100] [--rounds 2]

It rewrites its own section of bench/RESULTS.md.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.common import (  # noqa: E402
    DEMO,
    LoadResult,
    bench_arguments,
    one_core_busy,
    run_header,
    run_load,
    write_results,
)
from bench.peers import Lineup  # noqa: E402

CLIENTS = 8
MAX_TOKENS = 64


def measure(env: dict[str, str], rounds: int) -> tuple[LoadResult, LoadResult]:
    """Eight clients on a quiet machine, then with one core busy, on a Herd run with ``env``
    (the only server up while it is measured)."""
    with tempfile.TemporaryDirectory(prefix="herd-spin-") as home, Lineup(Path(home)) as lineup:
        server = lineup.herd("herd", "Herd", env)
        quiet = run_load(server.base, server.model, CLIENTS, rounds, MAX_TOKENS)
        with one_core_busy():
            busy = run_load(server.base, server.model, CLIENTS, max(1, rounds // 2), MAX_TOKENS)
        return quiet, busy


def main() -> None:
    parser = bench_arguments(__doc__)
    parser.add_argument("--spins", default="300000,10000,1000,100")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    variants = {
        f"GOMP_SPINCOUNT={spin}": {"GOMP_SPINCOUNT": spin} for spin in args.spins.split(",")
    }
    variants["OMP_WAIT_POLICY=PASSIVE"] = {"OMP_WAIT_POLICY": "PASSIVE"}
    rows = []
    for name, env in variants.items():
        quiet, busy = measure(env, 1 if args.quick else args.rounds)
        print(f"{name}: {quiet.tokens_per_s:.1f} / {busy.tokens_per_s:.1f} tokens/s", flush=True)
        rows.append(
            f"| {name} | {quiet.tokens_per_s:.1f} | {quiet.first_token(0.5):.2f} s / "
            f"{quiet.first_token(0.95):.2f} s | {busy.tokens_per_s:.1f} | "
            f"{busy.first_token(0.5):.2f} s / {busy.first_token(0.95):.2f} s |"
        )
    lines = [
        f"## OpenMP spin count: {DEMO} (Q4_K_M)",
        "",
        f"{run_header()}; Herd with its defaults but for the variable named; {CLIENTS} clients "
        f"x {MAX_TOKENS}-token streamed greedy completions, {args.rounds} each on a quiet "
        "machine, then half as many while a Python busy loop keeps one core busy.",
        "",
        "| variant | quiet tokens/s | quiet first token p50 / p95 | one core busy tokens/s "
        "| one core busy first token p50 / p95 |",
        "|---|---|---|---|---|",
        *rows,
    ]
    write_results("\n".join(lines) + "\n", quick=args.quick)


if __name__ == "__main__":
    main()
