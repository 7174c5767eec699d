"""Per-key limits: 429 with Retry-After and x-ratelimit-* headers, counted in Redis so that
they hold across web processes.

Each test holds the server's limit clock (``KeyedServer.hold_limit_clock``) where its requests
share one minute and one day, and moves it on to see a window turn over, instead of waiting
for the wall clock."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.keyed import LIMIT_CLOCK_AT, KeyedServer

pytestmark = pytest.mark.live


def assert_rate_limited(reply: httpx.Response, kind: str, window: int = 60) -> None:
    assert reply.status_code == 429, reply.text
    error = reply.json()["error"]
    assert error["code"] == "rate_limit_exceeded"
    assert error["type"] == kind
    assert 1 <= int(reply.headers["Retry-After"]) <= window


def test_requests_past_the_per_minute_limit_get_429_with_headers(
    keyed_server: KeyedServer,
) -> None:
    secret = keyed_server.create_key("rpm3", "--rpm", "3")
    keyed_server.hold_limit_clock()
    remaining = []
    for _ in range(3):
        reply = keyed_server.complete(secret)
        assert reply.status_code == 200
        assert reply.headers["x-ratelimit-limit-requests"] == "3"
        assert reply.headers["x-ratelimit-reset-requests"].endswith("s")
        remaining.append(int(reply.headers["x-ratelimit-remaining-requests"]))
    assert remaining == [2, 1, 0]
    refused = keyed_server.complete(secret)
    assert_rate_limited(refused, "requests")
    assert refused.headers["x-ratelimit-remaining-requests"] == "0"
    # The Ollama API answers in its own shape, from the same window.
    ollama = keyed_server.call("POST", "/api/generate", secret, json={"model": "tiny"})
    assert ollama.status_code == 429
    assert set(ollama.json()) == {"error"}
    assert "Retry-After" in ollama.headers


def test_tokens_past_the_per_minute_limit_get_429_with_token_headers(
    keyed_server: KeyedServer,
) -> None:
    secret = keyed_server.create_key("tpm10", "--tpm", "10")
    keyed_server.hold_limit_clock()
    # Greedy: a sampled answer from random weights can meet its end-of-text token early.
    first = keyed_server.complete(secret, max_tokens=8, temperature=0)
    assert first.status_code == 200
    used = first.json()["usage"]["total_tokens"]
    assert used >= 10  # the prompt and 8 tokens are over the limit: the next one waits
    assert first.headers["x-ratelimit-limit-tokens"] == "10"
    assert first.headers["x-ratelimit-remaining-tokens"] == "10"
    refused = keyed_server.complete(secret)
    assert_rate_limited(refused, "tokens")
    assert refused.headers["x-ratelimit-remaining-tokens"] == "0"
    assert refused.headers["x-ratelimit-reset-tokens"].endswith("s")


def test_streamed_tokens_count_against_the_limit_without_include_usage(
    keyed_server: KeyedServer,
) -> None:
    secret = keyed_server.create_key("tpm-stream", "--tpm", "10")
    keyed_server.hold_limit_clock()
    with httpx.stream(
        "POST",
        f"{keyed_server.base_url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {secret}"},
        json={
            "model": "tiny",
            "messages": [{"role": "user", "content": "hello"}],
            "max_tokens": 8,
            "stream": True,
        },
        timeout=60,
    ) as stream:
        assert stream.status_code == 200
        body = stream.read().decode()
    assert '"usage"' not in body  # nothing in the stream told the counts
    assert_rate_limited(keyed_server.complete(secret), "tokens")


def test_tokens_past_the_daily_limit_get_429(keyed_server: KeyedServer) -> None:
    secret = keyed_server.create_key("tpd5", "--tpd", "5")
    keyed_server.hold_limit_clock()
    first = keyed_server.complete(secret, max_tokens=8)
    assert first.status_code == 200
    assert first.json()["usage"]["total_tokens"] >= 5
    refused = keyed_server.complete(secret)
    assert_rate_limited(refused, "tokens", window=86_400)
    assert refused.headers["x-ratelimit-limit-tokens"] == "5"
    assert int(refused.headers["Retry-After"]) > 60  # the day turns over, not the minute


def test_a_refused_key_is_served_again_once_its_minute_turns_over(
    keyed_server: KeyedServer,
) -> None:
    secret = keyed_server.create_key("rpm1-turnover", "--rpm", "1")
    keyed_server.hold_limit_clock()
    assert keyed_server.complete(secret).status_code == 200
    refused = keyed_server.complete(secret)
    assert_rate_limited(refused, "requests")
    wait = int(refused.headers["Retry-After"])
    keyed_server.hold_limit_clock(LIMIT_CLOCK_AT + wait - 1)
    assert_rate_limited(keyed_server.complete(secret), "requests")  # still the same minute
    keyed_server.hold_limit_clock(LIMIT_CLOCK_AT + wait)
    again = keyed_server.complete(secret)
    assert again.status_code == 200, again.text
    assert again.headers["x-ratelimit-remaining-requests"] == "0"


def test_a_key_without_limits_sends_no_limit_headers(keyed_server: KeyedServer) -> None:
    secret = keyed_server.create_key("unlimited")
    reply = keyed_server.complete(secret)
    assert reply.status_code == 200
    assert not [h for h in reply.headers if h.startswith("x-ratelimit")]


def test_limits_hold_across_two_web_processes(keyed_server: KeyedServer) -> None:
    secret = keyed_server.create_key("rpm4-shared", "--rpm", "4")
    with keyed_server.second_web() as second:
        keyed_server.hold_limit_clock()
        bases = [keyed_server.base_url, second] * 2
        for base in bases:
            reply = keyed_server.call(
                "POST",
                "/v1/completions",
                secret,
                base_url=base,
                json={"model": "tiny", "prompt": "hi", "max_tokens": 2},
            )
            assert reply.status_code == 200, keyed_server.web_log(base) if base == second else ""
        for base in (keyed_server.base_url, second):
            refused = keyed_server.call("GET", "/v1/models", secret, base_url=base)
            assert_rate_limited(refused, "requests")


def test_token_limits_hold_across_two_web_processes(keyed_server: KeyedServer) -> None:
    secret = keyed_server.create_key("tpm-shared", "--tpm", "10")
    with keyed_server.second_web() as second:
        keyed_server.hold_limit_clock()
        used = keyed_server.call(
            "POST",
            "/v1/completions",
            secret,
            base_url=second,
            json={"model": "tiny", "prompt": "hello there", "max_tokens": 8},
        )
        assert used.status_code == 200, keyed_server.web_log(second)
        assert json.loads(used.text)["usage"]["total_tokens"] >= 10
        assert_rate_limited(keyed_server.complete(secret), "tokens")
