"""The "Must show" targets of issue 17, each checked against the figures of this `make bench`
run (the figures file the benchmarks before it wrote; the Makefile clears it first, so no
figure comes from an earlier run).

A target is met or not on the figures as measured; the ratio or difference shown beside it is
rounded against Herd (down where more is better, up where less is), so that no figure reads as
met by rounding. It writes the "Must show" section at the top of bench/RESULTS.md.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import batch, cold_load  # noqa: E402
from bench.common import bench_arguments, read_figures, run_header, write_results  # noqa: E402
from bench.concurrency import figure  # noqa: E402
from bench.peers import HERD, LLAMA_SERVER_NP8  # noqa: E402

REFERENCE = "llama-server -np 8"


class Kind(Enum):
    AT_LEAST = "at least"  # Herd's figure over the reference's, at least the bound
    AT_MOST = "at most"  # Herd's figure over the reference's, at most the bound
    WITHIN = "within"  # Herd's figure less the reference's, at most the bound
    UNDER = "under"  # Herd's figure itself, below the bound


@dataclass(frozen=True)
class Check:
    target: str  # the words
    herd: str  # figure names in the run's figures
    reference: str | None
    kind: Kind
    bound: float
    unit: str

    def verdict(self, figures: dict[str, float]) -> tuple[str, str, str, str]:
        """Herd's figure, the reference's, the measured ratio or difference, and whether the
        target is met."""
        herd = figures.get(self.herd)
        reference = figures.get(self.reference) if self.reference else None
        if herd is None or (self.reference and reference is None):
            return ("not measured in this run", "", "", "no")
        shown_reference = self.show(reference) if reference is not None else ""
        measured, met = self.compare(herd, reference)
        return (self.show(herd), shown_reference, measured, "yes" if met else "no")

    def compare(self, herd: float, reference: float | None) -> tuple[str, bool]:
        if self.kind is Kind.UNDER:
            shown = against_herd(herd, 3, larger_is_better=False)
            return f"{shown:.3f} s, against {self.bound:g} s", herd < self.bound
        assert reference is not None
        if self.kind is Kind.WITHIN:
            difference_ms = (herd - reference) * 1000
            shown = against_herd(difference_ms, 1, larger_is_better=False)
            return f"{shown:+.1f} ms", herd - reference <= self.bound
        ratio = herd / reference
        larger_is_better = self.kind is Kind.AT_LEAST
        shown_ratio = f"{against_herd(ratio, 2, larger_is_better=larger_is_better):.2f}x"
        return shown_ratio, ratio >= self.bound if larger_is_better else ratio <= self.bound

    def show(self, value: float) -> str:
        decimals = {"s": 3, "requests/s": 2}.get(self.unit, 1)
        return f"{value:.{decimals}f} {self.unit}"


def against_herd(value: float, decimals: int, *, larger_is_better: bool) -> float:
    """``value`` rounded to ``decimals`` in the direction that does not favour Herd."""
    scale = 10**decimals
    rounded = math.floor(value * scale) if larger_is_better else math.ceil(value * scale)
    return rounded / scale


def herd_and_reference(load: str, metric: str) -> tuple[str, str]:
    """Herd's and the reference's figure of one load of bench/concurrency.py."""
    return figure(load, HERD, metric), figure(load, LLAMA_SERVER_NP8, metric)


CHECKS = (
    Check(
        f"Herd's defaults, 8 clients: >= 1.0x {REFERENCE} aggregate tokens/s",
        *herd_and_reference("8", "tokens_per_s"),
        Kind.AT_LEAST,
        1.0,
        "tokens/s",
    ),
    Check(
        "Herd's defaults, 8 clients: p50 first token <= its own",
        *herd_and_reference("8", "first_token_p50"),
        Kind.AT_MOST,
        1.0,
        "s",
    ),
    Check(
        f"Single client: >= 0.95x {REFERENCE} tokens/s",
        *herd_and_reference("1", "tokens_per_s"),
        Kind.AT_LEAST,
        0.95,
        "tokens/s",
    ),
    Check(
        "Single client: p50 first token within 15 ms of it",
        *herd_and_reference("1", "first_token_p50"),
        Kind.WITHIN,
        0.015,
        "s",
    ),
    Check(
        f"16 clients: >= 1.0x {REFERENCE} aggregate tokens/s",
        *herd_and_reference("16", "tokens_per_s"),
        Kind.AT_LEAST,
        1.0,
        "tokens/s",
    ),
    Check(
        "16 clients: p50 first token under 1 s",
        figure("16", HERD, "first_token_p50"),
        None,
        Kind.UNDER,
        1.0,
        "s",
    ),
    Check(
        f"Batch API: >= 1.2x {REFERENCE} driven by 16 clients (requests/s over the same lines)",
        f"batch.{batch.BATCH}.requests_per_s",
        f"batch.{batch.REFERENCE}.requests_per_s",
        Kind.AT_LEAST,
        1.2,
        "requests/s",
    ),
    Check(
        f"32 clients x max_tokens 1: >= 0.8x {REFERENCE} requests/s",
        *herd_and_reference("32x1", "requests_per_s"),
        Kind.AT_LEAST,
        0.8,
        "requests/s",
    ),
    Check(
        f"One core busy elsewhere, 8 clients: p95 first token <= 3x {REFERENCE}'s",
        *herd_and_reference("8_busy", "first_token_p95"),
        Kind.AT_MOST,
        3.0,
        "s",
    ),
    Check(
        "Cold load of the demo model: <= 2x llama-server's start-to-ready, same slots and context",
        cold_load.HERD_FIGURE,
        cold_load.LLAMA_SERVER_FIGURE,
        Kind.AT_MOST,
        2.0,
        "s",
    ),
)


def section(stored: dict[str, dict[str, float | str]], quick: bool) -> str:
    figures = {name: float(entry["value"]) for name, entry in stored.items()}
    stamps = sorted(str(entry["at"]) for entry in stored.values())
    span = f"measured from {stamps[0]} to {stamps[-1]}" if stamps else "no figures recorded"
    smoke = " A --quick smoke run: tiny counts, not a measurement." if quick else ""
    rows = [f"| {check.target} | {' | '.join(check.verdict(figures))} |" for check in CHECKS]
    return "\n".join(
        [
            "## Must show (issue 17)",
            "",
            f"{run_header()}; figures from one `make bench` run ({span}), Herd with its "
            f"defaults, ratios against {REFERENCE} (or llama-server as said) from the same run; "
            "the settings every server ran with are in each benchmark's section below. Met "
            "or not on the figures as measured; the ratio or difference shown is rounded "
            f"against Herd.{smoke}",
            "",
            "| target | Herd | llama-server | measured | met |",
            "|---|---|---|---|---|",
            *rows,
            "",
            "The issue's last target, tests for the thread count choice (affinity, quota) and "
            "for admission by budget, is shown by the test suite, not by a benchmark.",
            "",
        ]
    )


def main() -> None:
    args = bench_arguments(__doc__).parse_args()
    report = section(read_figures(quick=args.quick), args.quick)
    print(report)
    write_results(report, quick=args.quick, first=True)


if __name__ == "__main__":
    main()
