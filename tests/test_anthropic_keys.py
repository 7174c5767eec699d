"""``/v1/messages`` on a server that requires keys: keys as Anthropic's clients send them
(``x-api-key``, or ``Authorization: Bearer``), refusals in Anthropic's shape, limits, usage
records, metrics and CORS counting the new endpoints as they count the others."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest

from tests.keyed import KEYED_ORIGIN, KeyedCalls, KeyedServer, KeyedWeb
from tests.test_anthropic_errors import anthropic_error
from tests.test_metrics import scrape, value
from tests.test_usage import wait_for_records

HELLO: list[Any] = [{"role": "user", "content": "hello"}]


def claude(server: KeyedCalls, secret: str | None = None, **kwargs: Any) -> anthropic.Anthropic:
    """The client as Claude Code makes it: the key in ``x-api-key`` (``api_key``), or in
    ``Authorization: Bearer`` (``auth_token``)."""
    if secret is not None and "auth_token" not in kwargs:
        kwargs["api_key"] = secret
    return anthropic.Anthropic(
        base_url=server.base_url,
        max_retries=0,
        timeout=60,
        http_client=server.http_client(),
        **kwargs,
    )


def ask(client: anthropic.Anthropic, model: str = "tiny") -> anthropic.types.Message:
    return client.messages.create(model=model, max_tokens=3, messages=HELLO)


def test_a_request_without_a_key_is_an_authentication_error(keyed_web: KeyedWeb) -> None:
    for path in ("/v1/messages", "/v1/messages/count_tokens", "/v1/messages/x"):
        reply = keyed_web.call("POST", path, None, json={"model": "tiny", "messages": HELLO})
        assert reply.status_code == 401
        assert "x-api-key" in anthropic_error(reply.json(), "authentication_error")
    with pytest.raises(anthropic.AuthenticationError) as raised:
        ask(claude(keyed_web, "herd-not-a-key-anybody-has"))
    assert anthropic_error(raised.value.body, "authentication_error") == "invalid API key"


def test_a_key_works_as_x_api_key_or_bearer_with_anthropic_headers(
    keyed_server: KeyedServer,
) -> None:
    secret = keyed_server.create_key("claude-plain")
    beta = {"anthropic-beta": "prompt-caching-2024-07-31,token-counting-2024-11-01"}
    by_x_api_key = claude(keyed_server, secret, default_headers=beta)
    assert by_x_api_key.api_key == secret and by_x_api_key.auth_token is None
    assert ask(by_x_api_key).type == "message"
    by_bearer = claude(keyed_server, auth_token=secret)
    assert ask(by_bearer).type == "message"
    assert by_bearer.messages.count_tokens(model="tiny", messages=HELLO).input_tokens > 0


def test_a_model_the_key_may_not_use_is_a_permission_error(keyed_server: KeyedServer) -> None:
    client = claude(keyed_server, keyed_server.create_key("claude-tiny-only", "--models", "tiny"))
    assert ask(client).type == "message"
    with pytest.raises(anthropic.PermissionDeniedError) as raised:
        ask(client, model="slow")
    assert "slow" in anthropic_error(raised.value.body, "permission_error")


def test_requests_past_the_limit_are_rate_limit_errors(keyed_server: KeyedServer) -> None:
    client = claude(keyed_server, keyed_server.create_key("claude-rpm2", "--rpm", "2"))
    keyed_server.hold_limit_clock()
    ask(client)
    client.messages.count_tokens(model="tiny", messages=HELLO)  # counted as a request too
    with pytest.raises(anthropic.RateLimitError) as raised:
        ask(client)
    anthropic_error(raised.value.body, "rate_limit_error")
    assert 1 <= int(raised.value.response.headers["retry-after"]) <= 60


def test_each_request_leaves_a_usage_record(keyed_server: KeyedServer) -> None:
    secret = keyed_server.create_key("claude-usage", "--team", "claude-team", "--user", "cleo")
    client = claude(keyed_server, secret)
    whole = ask(client)
    with client.messages.stream(model="tiny", max_tokens=3, messages=HELLO) as stream:
        streamed = stream.get_final_message()
    client.messages.count_tokens(model="tiny", messages=HELLO)
    with pytest.raises(anthropic.NotFoundError):
        ask(client, model="no-such-model")

    rows = wait_for_records(keyed_server, "claude-usage", 4)
    assert [(r["endpoint"], r["status"], r["model"]) for r in rows] == [
        ("/v1/messages", 200, "tiny:latest"),
        ("/v1/messages", 200, "tiny:latest"),
        ("/v1/messages/count_tokens", 200, "tiny:latest"),
        ("/v1/messages", 404, "no-such-model:latest"),
    ]
    for row, reply in zip(rows, (whole, streamed), strict=False):
        assert (row["prompt_tokens"], row["completion_tokens"]) == (
            reply.usage.input_tokens,
            reply.usage.output_tokens,
        )
        assert row["user__username"] == "cleo" and row["team__name"] == "claude-team"
    assert rows[1]["ttft_ms"] is not None  # the stream's first event was timed
    # Counting generates nothing, and counts against no token budget.
    assert rows[2]["prompt_tokens"] == rows[2]["completion_tokens"] == 0


def test_metrics_count_the_messages_endpoints(keyed_server: KeyedServer) -> None:
    client = claude(keyed_server, keyed_server.create_key("claude-metrics"))
    before = scrape(keyed_server)
    used_in = used_out = 0
    for _ in range(2):
        reply = ask(client)
        used_in += reply.usage.input_tokens
        used_out += reply.usage.output_tokens
    client.messages.count_tokens(model="tiny", messages=HELLO)
    after = scrape(keyed_server)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    tiny = {"model": "tiny:latest"}
    assert delta("herd_requests_total", **tiny, endpoint="/v1/messages", status="200") == 2
    counted = {**tiny, "endpoint": "/v1/messages/count_tokens"}
    assert delta("herd_requests_total", **counted, status="200") == 1
    assert delta("herd_tokens_total", **tiny, direction="in") == used_in
    assert delta("herd_tokens_total", **tiny, direction="out") == used_out
    assert delta("herd_request_duration_seconds_count", **tiny, endpoint="/v1/messages") == 2


def test_cors_lets_browsers_send_anthropics_headers(keyed_web: KeyedWeb) -> None:
    preflight = {
        "Origin": KEYED_ORIGIN,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-api-key, anthropic-version, anthropic-beta",
    }
    reply = keyed_web.options(f"{keyed_web.base_url}/v1/messages", headers=preflight, timeout=10)
    assert reply.status_code == 200
    assert reply.headers["Access-Control-Allow-Origin"] == KEYED_ORIGIN
    allowed = {h.strip() for h in reply.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"x-api-key", "anthropic-version", "anthropic-beta"} <= allowed
