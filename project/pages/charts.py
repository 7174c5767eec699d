"""Stacked bar charts drawn as SVG on the server: one bar per day, one coloured segment per
series (a model, a key). No chart library, no script: the page is the picture."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

# Colour-blind-safe (Okabe-Ito), then grey for whatever is left.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442"]
OTHER_COLOUR = "#999999"
WIDTH, HEIGHT = 720, 240
LEFT, BOTTOM, TOP = 56, 28, 12


@dataclass
class Segment:
    x: float
    y: float
    width: float
    height: float
    colour: str
    title: str


@dataclass
class Chart:
    """What the template draws: segments, axis labels, a legend."""

    segments: list[Segment] = field(default_factory=list)
    day_labels: list[tuple[float, str]] = field(default_factory=list)
    value_labels: list[tuple[float, str]] = field(default_factory=list)
    legend: list[tuple[str, str, int]] = field(default_factory=list)
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    baseline: float = HEIGHT - BOTTOM

    @property
    def empty(self) -> bool:
        return not self.segments


def stacked_by_day(
    values: dict[tuple[dt.date, str], int], days: list[dt.date], max_series: int = len(PALETTE)
) -> Chart:
    """``values[(day, series)]`` tokens as stacked bars over ``days``. The ``max_series``
    largest series get a colour each; the rest are summed as "other"."""
    totals: dict[str, int] = {}
    for (_, series), amount in values.items():
        totals[series] = totals.get(series, 0) + amount
    # A series with no tokens (requests that failed before any) has nothing to draw.
    ranked = sorted((s for s in totals if totals[s]), key=lambda s: (-totals[s], s))
    named, rest = ranked[:max_series], set(ranked[max_series:])
    colours = {series: PALETTE[i] for i, series in enumerate(named)}
    order = [*named, *(["other"] if rest else [])]
    if rest:
        colours["other"] = OTHER_COLOUR
    per_day: dict[dt.date, dict[str, int]] = {day: {} for day in days}
    for (day, series), amount in values.items():
        if day in per_day and totals[series]:
            key = "other" if series in rest else series
            per_day[day][key] = per_day[day].get(key, 0) + amount
    peak = max((sum(d.values()) for d in per_day.values()), default=0)
    chart = Chart()
    chart.legend = [(s, colours[s], sum(d.get(s, 0) for d in per_day.values())) for s in order]
    if peak == 0 or not days:
        return chart
    plot_height = HEIGHT - BOTTOM - TOP
    slot = (WIDTH - LEFT) / len(days)
    bar = max(2.0, slot * 0.7)
    for index, day in enumerate(days):
        x = LEFT + index * slot + (slot - bar) / 2
        y = float(HEIGHT - BOTTOM)
        for series in order:
            amount = per_day[day].get(series, 0)
            if not amount:
                continue
            height = amount / peak * plot_height
            y -= height
            title = f"{day.isoformat()} · {series}: {amount:,} tokens"
            chart.segments.append(Segment(x, y, bar, height, colours[series], title))
        every = max(1, len(days) // 8)
        if index % every == 0:
            chart.day_labels.append((x + bar / 2, day.strftime("%b %d")))
    for fraction in (0.0, 0.5, 1.0):
        chart.value_labels.append(
            (HEIGHT - BOTTOM - fraction * plot_height, f"{round(peak * fraction):,}")
        )
    return chart
