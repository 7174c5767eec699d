"""Cold load of the demo model: Herd's first request after `make run` against llama-server's
start-to-ready, with the same slots and context.

Herd starts as `make run` starts it (its defaults); its first ``/api/generate`` loads the model,
and that answer's ``load_duration`` is Herd's figure. Its ``/api/ps`` then says what it
allocated (the context of one sequence and, from its size, the KV cells of all of them) and its
log how many sequences it decodes at once, and llama-server is started with the same: ``-c``
the cells, ``-np`` the sequences, sharing one cache of which each may hold one sequence's
context (``--kv-unified --kv-unified-per-slot``) where Herd's sequences share theirs. Its
figure is the time from the process's start until ``/health`` answers 200. Each server runs
alone, one after the other, ``--trials`` times (the model file is in the page cache for both
after the first); medians. Run with `make bench`; it rewrites its section of bench/RESULTS.md.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.common import (  # noqa: E402
    HerdContext,
    bench_arguments,
    cold_load_s,
    demo_model_path,
    herd_context,
    record_figures,
    run_header,
    start_server,
    stop,
    write_results,
)
from bench.peers import (  # noqa: E402
    LlamaServerSettings,
    herd_settings,
    llama_server_choices,
    start_llama_server,
)
from tests.live import free_port  # noqa: E402

# /health is asked this often: the start-to-ready time is known to within it.
POLL_S = 0.01
# Its names in the run's figures.
HERD_FIGURE = "cold_load.herd.seconds"
LLAMA_SERVER_FIGURE = "cold_load.llama_server.seconds"


@dataclass(frozen=True)
class Trial:
    herd_s: float
    herd_settings: str
    llama_server_s: float
    llama_server_settings: str


def herd_first_load(home: Path) -> tuple[float, HerdContext, str]:
    """`herd serve` started afresh in ``home``: its first request's load, what it allocated,
    and its settings in words."""
    port = free_port()
    process = start_server(home, port)
    try:
        base = f"http://127.0.0.1:{port}"
        loaded = cold_load_s(base)
        context = herd_context(base, home)
        return loaded, context, herd_settings(None, home, context)
    finally:
        stop(process)


def llama_server_ready(model: Path, context: HerdContext, log: Path) -> tuple[float, str]:
    """llama-server's start-to-ready with ``context``'s slots and cells, and its settings in
    words."""
    settings = LlamaServerSettings.like(context)
    started = time.perf_counter()
    process = start_llama_server(model, free_port(), settings, log, poll_s=POLL_S)
    ready = time.perf_counter() - started
    stop(process)
    return ready, f"{settings.describe()}; chose {llama_server_choices(log)}"


def trial(home: Path) -> Trial:
    loaded, context, herd = herd_first_load(home)
    ready, peer = llama_server_ready(demo_model_path(home), context, home / "llama-server.log")
    print(f"Herd loaded in {loaded:.2f} s ({herd}); llama-server ready in {ready:.2f} s ({peer})")
    return Trial(loaded, herd, ready, peer)


def main() -> None:
    parser = bench_arguments(__doc__)
    parser.add_argument("--trials", type=int, default=3)
    args = parser.parse_args()
    trials_wanted = 1 if args.quick else args.trials
    with tempfile.TemporaryDirectory(prefix="herd-bench-") as tmp:
        trials = [trial(Path(tmp)) for _ in range(trials_wanted)]
    herd_s = statistics.median(t.herd_s for t in trials)
    ready_s = statistics.median(t.llama_server_s for t in trials)
    record_figures({HERD_FIGURE: herd_s, LLAMA_SERVER_FIGURE: ready_s}, quick=args.quick)
    report = summarize(trials, herd_s, ready_s)
    print(report)
    write_results(report, quick=args.quick)


def summarize(trials: list[Trial], herd_s: float, ready_s: float) -> str:
    last = trials[-1]
    settings = {(t.herd_settings, t.llama_server_settings) for t in trials}
    varied = "" if len(settings) == 1 else " (the last trial's: they varied between trials)"
    return "\n".join(
        [
            "## Cold load of the demo model: gemma3:270m (Q4_K_M)",
            "",
            f"{run_header()}; {len(trials)} trial{'s' if len(trials) > 1 else ''}, each server "
            "alone; medians. Herd: `load_duration` of the first `/api/generate` after "
            "`herd serve` starts; llama-server: from its start until `/health` answers 200 "
            f"(asked every {POLL_S * 1000:.0f} ms), with the slots and context Herd allocated"
            f"{varied}.",
            "",
            "| server | settings | cold load | ratio to llama-server |",
            "|---|---|---|---|",
            f"| Herd | {last.herd_settings} | {herd_s:.2f} s | {herd_s / ready_s:.2f} |",
            f"| llama-server | {last.llama_server_settings} | {ready_s:.2f} s | 1.00 |",
            "",
        ]
    )


if __name__ == "__main__":
    main()
