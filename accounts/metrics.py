"""Prometheus metrics, kept in Redis so that ``/metrics`` on any web process shows the whole
installation, however many web processes there are.

Each metric is a Redis hash (``rkeys.metric(name)``) with one field per label set, the field
being the JSON list of label values; histograms add the bucket (``le``, non-cumulative here,
made cumulative when rendered) or ``sum`` as the last element. The running-requests gauge is a
plain counter, raised when a request starts and lowered when its response has ended; a web
process killed mid-request leaves it too high by the requests it had in flight.

Writes are queued on a pipeline the request path executes anyway (see accounts.middleware), so
metrics cost no round trip of their own.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from accounts import rkeys
from project.broker import sync_client
from workers.broker.registry import live_workers

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
TTFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
INF = "+Inf"


def _field(*labels: str) -> str:
    return json.dumps(labels, separators=(",", ":"))


def _bucket(value: float, buckets: tuple[float, ...]) -> str:
    for bound in buckets:
        if value <= bound:
            return repr(bound)
    return INF


def queue_started(pipe: Any) -> None:
    pipe.incr(rkeys.metric("running"))


def queue_finished(
    pipe: Any,
    *,
    model: str,
    endpoint: str,
    status: int,
    prompt_tokens: int,
    completion_tokens: int,
    duration: float,
    ttft: float | None,
) -> None:
    """Queue what one finished request adds to the metrics (times in seconds)."""
    pipe.decr(rkeys.metric("running"))
    pipe.hincrby(rkeys.metric("requests"), _field(model, endpoint, str(status)), 1)
    if prompt_tokens:
        pipe.hincrby(rkeys.metric("tokens"), _field(model, "in"), prompt_tokens)
    if completion_tokens:
        pipe.hincrby(rkeys.metric("tokens"), _field(model, "out"), completion_tokens)
    latency = rkeys.metric("latency")
    pipe.hincrby(latency, _field(model, endpoint, _bucket(duration, LATENCY_BUCKETS)), 1)
    pipe.hincrbyfloat(latency, _field(model, endpoint, "sum"), duration)
    if ttft is not None:
        first = rkeys.metric("ttft")
        pipe.hincrby(first, _field(model, endpoint, _bucket(ttft, TTFT_BUCKETS)), 1)
        pipe.hincrbyfloat(first, _field(model, endpoint, "sum"), ttft)


def _read(raw: dict[bytes, bytes]) -> Iterator[tuple[list[str], float]]:
    for name, value in raw.items():
        yield json.loads(name), float(value)


def _histogram(
    name: str, documentation: str, raw: dict[bytes, bytes], buckets: tuple[float, ...]
) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, documentation, labels=["model", "endpoint"])
    counts: dict[tuple[str, ...], dict[str, float]] = defaultdict(dict)
    for fields, value in _read(raw):
        counts[tuple(fields[:-1])][fields[-1]] = value
    for labels, per_tag in sorted(counts.items()):
        running = 0.0
        cumulative = []
        for bound in (*(repr(b) for b in buckets), INF):
            running += per_tag.get(bound, 0.0)
            cumulative.append((bound, running))
        family.add_metric(list(labels), cumulative, per_tag.get("sum", 0.0))
    return family


class RedisCollector(Collector):
    """Renders the metrics in Redis, and the worker registry, for one scrape."""

    def collect(self) -> Iterator[Metric]:
        client = sync_client()
        pipe = client.pipeline(transaction=False)
        for name in ("requests", "tokens", "latency", "ttft"):
            pipe.hgetall(rkeys.metric(name))
        pipe.get(rkeys.metric("running"))
        requests, tokens, latency, ttft, running = pipe.execute()

        family = CounterMetricFamily(
            "herd_requests",
            "API requests by model, endpoint and status.",
            labels=["model", "endpoint", "status"],
        )
        for labels, value in sorted(_read(requests)):
            family.add_metric(labels, value)
        yield family

        family = CounterMetricFamily(
            "herd_tokens",
            "Tokens read (in: prompt) and written (out: completion) by model.",
            labels=["model", "direction"],
        )
        for labels, value in sorted(_read(tokens)):
            family.add_metric(labels, value)
        yield family

        yield _histogram(
            "herd_request_duration_seconds",
            "Time from a request's arrival to the end of its response.",
            latency,
            LATENCY_BUCKETS,
        )
        yield _histogram(
            "herd_time_to_first_token_seconds",
            "Streams: time from a request's arrival to the first chunk of its response.",
            ttft,
            TTFT_BUCKETS,
        )
        yield GaugeMetricFamily(
            "herd_running_requests",
            "Requests being answered now, across web processes.",
            value=max(0, int(running or 0)),
        )

        per_worker = GaugeMetricFamily(
            "herd_worker_resident_models",
            "Models loaded in each live worker.",
            labels=["worker", "device"],
        )
        resident = GaugeMetricFamily(
            "herd_model_resident",
            "1 for each model a live worker holds.",
            labels=["worker", "model"],
        )
        for worker in live_workers(client):
            models = list(worker.get("resident", []))
            per_worker.add_metric([worker["name"], str(worker.get("device", ""))], len(models))
            for model in models:
                resident.add_metric([worker["name"], model], 1)
        yield per_worker
        yield resident


def render() -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RedisCollector())
    return generate_latest(registry)
