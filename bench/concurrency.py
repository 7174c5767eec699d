"""Concurrency benchmark: aggregate tokens/s and time to first token with 1, 8 and 16 clients,
with 8 while another process keeps one core busy, and requests/s with 32 clients asking for
one token each; Herd with its defaults (what `make run` gives) beside llama.cpp's
``llama-server`` with its defaults and with ``-np 8``, llama-cpp-python's server, and Herd
tuned (a row of its own).

Every server runs the demo model (gemma3:270m Q4_K_M); all are up at once, idle but for the one
being measured, and each load is measured on each server in turn, so that a slower spell of the
machine falls on all of them alike. Each client sends streamed greedy completions, each with its
own prompt, one after another, for a fixed number of rounds; aggregate throughput is the
completion tokens of all clients over the wall time of the whole load. Ratios are against
``llama-server -np 8`` in the same run. Run with `make bench`; it rewrites the concurrency
section of bench/RESULTS.md.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.common import (  # noqa: E402
    THREADS,
    LoadResult,
    bench_arguments,
    one_core_busy,
    record_figures,
    run_header,
    run_load,
    write_results,
)
from bench.peers import LLAMA_SERVER_NP8, Lineup, Server  # noqa: E402

# What the ratios are against: llama-server with eight slots, as the targets name it.
REFERENCE = LLAMA_SERVER_NP8
# llama-cpp-python's server answers one request at a time: at 16 clients, or with a core gone,
# it would take minutes to say what 8 clients already say.
ONE_AT_A_TIME = "llama_cpp_python"
TUNED_HERD = "herd_tuned"
TUNED = {"HERD_PARALLEL": "8", "HERD_NUM_THREADS": str(THREADS)}


@dataclass(frozen=True)
class Load:
    key: str  # its name in the run's figures
    clients: int
    rounds: int  # requests per client
    max_tokens: int
    busy: bool = False  # another process keeps one core busy throughout
    skip: tuple[str, ...] = ()  # servers not measured under it
    # Times the load runs on every server, each pass in the order opposite to the last's, the
    # figures over all of them: a short load measured once leans on whoever ran in a slow spell.
    passes: int = 1

    @property
    def title(self) -> str:
        per = f"{self.rounds} streamed completion{'s' if self.rounds > 1 else ''}"
        text = f"{self.clients} client{'s' if self.clients > 1 else ''} x {per} of "
        text += f"{self.max_tokens} token{'s' if self.max_tokens > 1 else ''}"
        if self.passes > 1:
            text += f", in {self.passes} passes over the servers, alternating their order"
        return text + (", another process keeping one core busy" if self.busy else "")

    @property
    def counts_requests(self) -> bool:
        """One token an answer: the load measures the request path, in requests/s."""
        return self.max_tokens == 1


def loads(quick: bool) -> list[Load]:
    rounds, tokens = (1, 8) if quick else (4, 64)
    return [
        # First-token figures of a few dozen replies move by more than the targets' margins
        # from one pass to the next: the two loads those targets are set on run in more.
        Load("1", 1, rounds, tokens, passes=4),
        Load("8", 8, rounds, tokens, passes=2),
        Load("16", 16, rounds, tokens, skip=(ONE_AT_A_TIME,)),
        Load("32x1", 32, 1 if quick else 4, 1),
        Load("8_busy", 8, rounds, tokens, busy=True, skip=(ONE_AT_A_TIME, TUNED_HERD)),
    ]


def start_lineup(lineup: Lineup) -> None:
    lineup.start_main()
    lineup.llama_cpp_python(ONE_AT_A_TIME, "llama-cpp-python server")
    lineup.herd(TUNED_HERD, "Herd tuned (not its defaults)", TUNED)


Results = dict[str, dict[str, LoadResult]]  # load key -> server key -> result


def measure_all(servers: list[Server], plan: list[Load]) -> Results:
    """Each load on every server in turn (in as many passes as the load asks)."""
    results: Results = {}
    for load in plan:
        order = [server for server in servers if server.key not in load.skip]
        by_server = results.setdefault(load.key, {})
        for _ in range(load.passes):
            for server in order:
                result = measure(server, load)
                earlier = by_server.get(server.key)
                by_server[server.key] = result if earlier is None else earlier.joined(result)
                print(
                    f"{server.name}: {load.title}: {result.tokens_per_s:.1f} tokens/s, "
                    f"{result.requests_per_s:.2f} requests/s, "
                    f"first token p50 {result.first_token(0.5):.3f} s",
                    flush=True,
                )
            order.reverse()
    return results


def measure(server: Server, load: Load) -> LoadResult:
    with one_core_busy() if load.busy else nullcontext():
        result = run_load(server.base, server.model, load.clients, load.rounds, load.max_tokens)
    time.sleep(0.5)  # an engine's last step and its usage writes settle before the next load
    return result


def figure(load: str, server: str, metric: str) -> str:
    """The name of one figure of this benchmark in the run's figures."""
    return f"concurrency.{load}.{server}.{metric}"


def figures(results: Results) -> Iterator[tuple[str, float]]:
    for load, by_server in results.items():
        for server, result in by_server.items():
            yield figure(load, server, "tokens_per_s"), result.tokens_per_s
            yield figure(load, server, "requests_per_s"), result.requests_per_s
            yield figure(load, server, "first_token_p50"), result.first_token(0.5)
            yield figure(load, server, "first_token_p95"), result.first_token(0.95)


def main() -> None:
    args = bench_arguments(__doc__).parse_args()
    plan = loads(args.quick)
    with tempfile.TemporaryDirectory(prefix="herd-bench-") as tmp, Lineup(Path(tmp)) as lineup:
        start_lineup(lineup)
        results = measure_all(lineup.servers, plan)
        servers = list(lineup.servers)
    record_figures(dict(figures(results)), quick=args.quick)
    report = summarize(servers, plan, results)
    print(report)
    write_results(report, quick=args.quick)


def summarize(servers: list[Server], plan: list[Load], results: Results) -> str:
    names = {server.key: server.name for server in servers}
    lines = [
        "## Concurrent clients: gemma3:270m (Q4_K_M)",
        "",
        f"{run_header()}. All servers up at once, idle but the one measured; each load on "
        "every server in turn, once or in the passes its title says (each pass in the order "
        "opposite to the last's, its figures over all of them). Aggregate completion tokens/s "
        f"over the whole load; first token p50 / p95; ratios against {names[REFERENCE]} in "
        "the same run (a rate's above 1 and a time's below 1 are better than it). The busy "
        "core is a Python busy loop in another process, started before and stopped after "
        f"each load, for every server alike. {names[ONE_AT_A_TIME]} serves one request at a "
        "time and is left out at 16 clients and with a core busy, "
        f"{names[TUNED_HERD]} with a core busy, and the 4-client load is dropped, to keep "
        "`make bench` near 25 minutes.",
    ]
    for load in plan:
        lines += ["", f"### {load.title}", "", *table(servers, load, results[load.key])]
    return "\n".join([*lines, ""])


def table(servers: list[Server], load: Load, results: dict[str, LoadResult]) -> list[str]:
    reference = results[REFERENCE]
    unit = "requests/s" if load.counts_requests else "tokens/s"
    rows = [
        f"| server | settings | {unit} | first token p50 / p95 | {unit} ratio | "
        "first token p50 / p95 ratio |",
        "|---|---|---|---|---|---|",
    ]
    for server in servers:
        if server.key not in results:
            continue
        result = results[server.key]
        rate, base = (
            (result.requests_per_s, reference.requests_per_s)
            if load.counts_requests
            else (result.tokens_per_s, reference.tokens_per_s)
        )
        p50, p95 = result.first_token(0.5), result.first_token(0.95)
        rows.append(
            f"| {server.name} | {server.settings} | {rate:.1f} | {p50:.3f} s / {p95:.3f} s | "
            f"{rate / base:.2f} | {p50 / reference.first_token(0.5):.2f} / "
            f"{p95 / reference.first_token(0.95):.2f} |"
        )
    return rows


if __name__ == "__main__":
    main()
