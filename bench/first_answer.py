"""The first answer after `make run`: the README's first request, as a newcomer pastes it.

Each trial starts `herd serve` afresh in an empty ``HERD_HOME`` with `make run`'s demo model
(smollm2:135m) and Herd's defaults, then sends the README's first chat request (streamed, no
sampling options: the model's own) twice: the first loads the model, the second finds it
resident. Figures per request: seconds to the first token and to the end of the answer, the
tokens it wrote and its ``finish_reason``. Run with `make bench`; it rewrites its section of
bench/RESULTS.md.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.common import (  # noqa: E402
    bench_arguments,
    record_figures,
    run_header,
    start_server,
    stop,
    write_results,
)
from tests.live import free_port  # noqa: E402

MODEL = "smollm2:135m"
# The README's first request, word for word but for the address.
FIRST_REQUEST = {
    "model": MODEL,
    "messages": [{"role": "user", "content": "Name three birds."}],
    "stream": True,
}
# The promise: the first answer within this, ended by the model itself.
PROMISED_S = 5.0


@dataclass(frozen=True)
class Answer:
    first_token_s: float
    total_s: float
    tokens: int
    finish_reason: str


def ask(base: str) -> Answer:
    started = time.perf_counter()
    first_token_s = 0.0
    tokens, finish_reason = 0, ""
    with httpx.stream(
        "POST", f"{base}/v1/chat/completions", json=FIRST_REQUEST, timeout=120
    ) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            choice = json.loads(line[6:])["choices"][0]
            if choice["delta"].get("content"):
                tokens += 1
                first_token_s = first_token_s or time.perf_counter() - started
            finish_reason = choice.get("finish_reason") or finish_reason
    return Answer(first_token_s, time.perf_counter() - started, tokens, finish_reason)


def trial() -> tuple[Answer, Answer]:
    """A fresh `herd serve` in a new home: the cold answer, then the warm one."""
    with tempfile.TemporaryDirectory(prefix="herd-first-") as home:
        port = free_port()
        process = start_server(Path(home), port, demo=MODEL)
        try:
            base = f"http://127.0.0.1:{port}"
            return ask(base), ask(base)
        finally:
            stop(process)


def row(name: str, answers: list[Answer]) -> str:
    totals = [a.total_s for a in answers]
    return (
        f"| {name} | {statistics.median(a.first_token_s for a in answers):.2f} s "
        f"| {statistics.median(totals):.2f} s | {max(totals):.2f} s "
        f"| {min(a.tokens for a in answers)} to {max(a.tokens for a in answers)} "
        f"| {', '.join(sorted({a.finish_reason for a in answers}))} |"
    )


def main() -> None:
    parser = bench_arguments(__doc__)
    parser.add_argument("--trials", type=int, default=5)
    args = parser.parse_args()
    trials = [trial() for _ in range(1 if args.quick else args.trials)]
    cold = [c for c, _ in trials]
    warm = [w for _, w in trials]
    met = all(a.total_s < PROMISED_S and a.finish_reason == "stop" for a in cold + warm)
    section = "\n".join(
        [
            f"## The first answer after make run: {MODEL} (Q4_1)",
            "",
            run_header(),
            "",
            f"The README's first request (streamed, the model's own sampling defaults) to a "
            f"`herd serve` started afresh in an empty home, {len(trials)} trials; the first "
            "request loads the model. Medians but for the slowest answer.",
            "",
            "| request | first token | answer done | slowest | tokens | finish_reason |",
            "|---|---|---|---|---|---|",
            row("first (loads the model)", cold),
            row("second (resident)", warm),
            "",
            f"Every answer done within {PROMISED_S:.0f} s and ended by the model: "
            f"{'yes' if met else 'no'}.",
            "",
        ]
    )
    write_results(section, quick=args.quick)
    record_figures(
        {
            "first_answer.cold.seconds": statistics.median(a.total_s for a in cold),
            "first_answer.warm.seconds": statistics.median(a.total_s for a in warm),
        },
        quick=args.quick,
    )
    print(section)


if __name__ == "__main__":
    main()
