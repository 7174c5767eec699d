"""/metrics in Prometheus text format, counted in Redis: the same totals from every web
process."""

from __future__ import annotations

import time

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.keyed import KeyedServer

pytestmark = pytest.mark.live

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(server: KeyedServer, base_url: str | None = None) -> Samples:
    reply = server.call("GET", "/metrics", server.staff_secret, base_url=base_url)
    assert reply.status_code == 200
    assert reply.headers["Content-Type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(reply.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_it_counts_requests_tokens_latency_and_time_to_first_token(
    keyed_server: KeyedServer,
) -> None:
    secret = keyed_server.create_key("metrics-counts")
    before = scrape(keyed_server)
    used_in = used_out = 0
    for _ in range(2):
        reply = keyed_server.complete(secret, max_tokens=3)
        assert reply.status_code == 200
        used_in += reply.json()["usage"]["prompt_tokens"]
        used_out += reply.json()["usage"]["completion_tokens"]
    with httpx.stream(
        "POST",
        f"{keyed_server.base_url}/v1/completions",
        headers={"Authorization": f"Bearer {secret}"},
        json={
            "model": "tiny",
            "prompt": "hello",
            "max_tokens": 3,
            "stream": True,
            "stream_options": {"include_usage": True},
        },
        timeout=60,
    ) as stream:
        assert stream.status_code == 200
        stream.read()
    assert keyed_server.complete(secret, model="missing").status_code == 404
    after = scrape(keyed_server)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    endpoint = "/v1/completions"
    assert delta("herd_requests_total", model="tiny:latest", endpoint=endpoint, status="200") == 3
    assert (
        delta("herd_requests_total", model="missing:latest", endpoint=endpoint, status="404") == 1
    )
    assert delta("herd_tokens_total", model="tiny:latest", direction="in") > used_in
    assert delta("herd_tokens_total", model="tiny:latest", direction="out") > used_out
    latency = {"model": "tiny:latest", "endpoint": endpoint}
    assert delta("herd_request_duration_seconds_count", **latency) == 3
    assert delta("herd_request_duration_seconds_sum", **latency) > 0
    assert delta("herd_request_duration_seconds_bucket", **latency, le="+Inf") == 3
    assert delta("herd_time_to_first_token_seconds_count", **latency) == 1
    assert delta("herd_time_to_first_token_seconds_bucket", **latency, le="+Inf") == 1


def test_it_shows_requests_running_now(keyed_server: KeyedServer) -> None:
    secret = keyed_server.create_key("metrics-running")
    idle = value(scrape(keyed_server), "herd_running_requests")
    with httpx.stream(
        "POST",
        f"{keyed_server.base_url}/v1/completions",
        headers={"Authorization": f"Bearer {secret}"},
        # Greedy, this prompt runs about 300 tokens on the slow model: seconds.
        json={
            "model": "slow",
            "prompt": "once",
            "max_tokens": 400,
            "temperature": 0,
            "stream": True,
        },
        timeout=60,
    ) as stream:
        chunks = stream.iter_bytes()
        next(chunks)
        assert value(scrape(keyed_server), "herd_running_requests") == idle + 1
        assert b"".join(chunks).endswith(b"[DONE]\n\n")  # it was still running
    deadline = time.monotonic() + 10
    while value(scrape(keyed_server), "herd_running_requests") != idle:
        assert time.monotonic() < deadline, "the running gauge did not come down"
        time.sleep(0.2)


def test_it_shows_the_models_each_worker_holds(keyed_server: KeyedServer) -> None:
    assert keyed_server.complete(keyed_server.staff_secret).status_code == 200
    worker = keyed_server.wait_for_worker(lambda w: "tiny:latest" in w["resident"])
    samples = scrape(keyed_server)
    assert value(samples, "herd_model_resident", worker=worker["name"], model="tiny:latest") == 1
    held = value(samples, "herd_worker_resident_models", worker=worker["name"], device="cpu")
    assert held == len(worker["resident"]) >= 1


def test_every_web_process_shows_the_same_totals(keyed_server: KeyedServer) -> None:
    secret = keyed_server.create_key("metrics-shared")
    with keyed_server.second_web() as second:
        before = scrape(keyed_server)
        reply = keyed_server.call(
            "POST",
            "/v1/completions",
            secret,
            base_url=second,
            json={"model": "tiny", "prompt": "hi", "max_tokens": 2},
        )
        assert reply.status_code == 200, keyed_server.web_log(second)
        labels = {"model": "tiny:latest", "endpoint": "/v1/completions", "status": "200"}
        after_here = value(scrape(keyed_server), "herd_requests_total", **labels)
        after_there = value(scrape(keyed_server, second), "herd_requests_total", **labels)
        assert after_here == after_there == value(before, "herd_requests_total", **labels) + 1
