"""Stored responses through the official openai client: retrieve, input items, delete,
``store: false``, ``previous_response_id`` (also through a second web process), whose they
are; and what every /v1 request gets: cancellation when the client leaves, usage records
and metrics."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from tests.keyed import KeyedServer
from tests.live import LiveServer
from tests.test_metrics import scrape, value
from tests.test_streaming_relay import wait_for_final_event
from tests.test_usage import wait_for_records

# A function to force a call of: the model's answer then ends with the call. Its arguments
# admit one value, so that the call's length is bounded: an open object lets the test model
# write arguments until the answer is cut by length (``response.incomplete``).
CALL: list[Any] = [
    {
        "type": "function",
        "name": "f",
        "parameters": {
            "type": "object",
            "properties": {"city": {"enum": ["Paris"]}},
            "required": ["city"],
            "additionalProperties": False,
        },
    }
]


def texts(page: Any) -> list[str]:
    return [item.content[0].text for item in page.data]


def keyed_client(server: KeyedServer, secret: str, base_url: str | None = None) -> OpenAI:
    return OpenAI(
        base_url=f"{base_url or server.base_url}/v1", api_key=secret, max_retries=0, timeout=60
    )


def test_a_stored_response_is_retrieved_its_input_items_listed_and_deleted(
    client: OpenAI,
) -> None:
    made = client.responses.create(
        model="tiny",
        input=[
            {"role": "user", "content": "one"},
            {"role": "assistant", "content": "two"},
            {"role": "user", "content": [{"type": "input_text", "text": "three"}]},
        ],
        max_output_tokens=16,
        metadata={"n": "1"},
    )
    got = client.responses.retrieve(made.id)
    assert got.model_dump() == made.model_dump()

    items: Any = client.responses.input_items.list(made.id)
    assert [i.type for i in items.data] == ["message"] * 3
    assert texts(items) == ["three", "two", "one"]  # newest first, as OpenAI lists them
    assert items.first_id == items.data[0].id and items.last_id == items.data[-1].id
    assert not items.has_more
    assert items.data[1].role == "assistant"
    assert items.data[1].content[0].type == "output_text"

    first: Any = client.responses.input_items.list(made.id, order="asc", limit=2)
    assert texts(first) == ["one", "two"]
    assert first.has_more
    rest = client.responses.input_items.list(made.id, order="asc", limit=2, after=first.last_id)
    assert texts(rest) == ["three"]
    assert not rest.has_more

    client.responses.delete(made.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(made.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.delete(made.id)


def test_the_delete_answer_and_bad_page_arguments(server: LiveServer, client: OpenAI) -> None:
    made = client.responses.create(model="tiny", input="hi", max_output_tokens=16)
    base = f"{server.base_url}/v1/responses/{made.id}"
    for query, param in (("limit=0", "limit"), ("order=up", "order"), ("after=msg_x", "after")):
        reply = httpx.get(f"{base}/input_items?{query}", timeout=30)
        assert reply.status_code == 400 and reply.json()["error"]["param"] == param
    deleted = httpx.delete(base, timeout=30)
    assert deleted.json() == {"id": made.id, "object": "response", "deleted": True}


def test_store_false_keeps_nothing(client: OpenAI) -> None:
    made = client.responses.create(model="tiny", input="hi", max_output_tokens=16, store=False)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(made.id)
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model="tiny", input="again", previous_response_id=made.id)
    body: Any = caught.value.body
    assert body["param"] == "previous_response_id"


def test_a_streamed_response_is_stored_before_its_last_event(client: OpenAI) -> None:
    with client.responses.stream(
        model="tiny",
        input="Weather?",
        tools=CALL,
        tool_choice="required",
    ) as stream:
        for event in stream:
            if event.type == "response.completed":
                # Continued from at once, before the stream has even ended.
                stored = client.responses.retrieve(event.response.id)
                assert stored.output[0].type == "function_call"


def test_previous_response_id_continues_without_its_instructions(client: OpenAI) -> None:
    instructions = "Always answer in the style of a long and very formal letter. " * 4
    first = client.responses.create(
        model="tiny", input="hi", instructions=instructions, max_output_tokens=16
    )
    again = client.responses.create(
        model="tiny", previous_response_id=first.id, input="more", max_output_tokens=16
    )
    repeated = client.responses.create(
        model="tiny",
        previous_response_id=first.id,
        input="more",
        instructions=instructions,
        max_output_tokens=16,
    )
    assert first.usage and again.usage and repeated.usage
    assert again.instructions is None and again.previous_response_id == first.id
    # The conversation carried over: the first input and output, then "more".
    assert again.usage.input_tokens > first.usage.output_tokens
    # The instructions did not: only those asked again count.
    assert repeated.usage.input_tokens > again.usage.input_tokens + 20
    assert repeated.usage.input_tokens >= first.usage.input_tokens + first.usage.output_tokens


def test_a_response_is_its_users_alone_and_continues_through_another_web_process(
    keyed_server: KeyedServer,
) -> None:
    alice = keyed_client(keyed_server, keyed_server.create_key("resp-alice", "--user", "alice"))
    alice_too = keyed_client(
        keyed_server, keyed_server.create_key("resp-alice-2", "--user", "alice")
    )
    bob = keyed_client(keyed_server, keyed_server.create_key("resp-bob", "--user", "bob"))
    made = alice.responses.create(model="tiny", input="secret plans", max_output_tokens=16)
    assert alice_too.responses.retrieve(made.id).id == made.id  # another key of hers
    with pytest.raises(openai.NotFoundError):
        bob.responses.retrieve(made.id)
    with pytest.raises(openai.NotFoundError):
        bob.responses.input_items.list(made.id)
    with pytest.raises(openai.NotFoundError):
        bob.responses.delete(made.id)
    with pytest.raises(openai.NotFoundError):
        bob.responses.create(model="tiny", input="and?", previous_response_id=made.id)

    with keyed_server.second_web() as second:
        there = keyed_client(keyed_server, alice.api_key, base_url=second)
        follow = there.responses.create(
            model="tiny", input="go on", previous_response_id=made.id, max_output_tokens=16
        )
        assert follow.previous_response_id == made.id
        assert follow.usage and made.usage
        assert follow.usage.input_tokens > made.usage.input_tokens + made.usage.output_tokens
        assert there.responses.retrieve(made.id).id == made.id
    assert alice.responses.retrieve(follow.id).previous_response_id == made.id


def test_a_client_that_leaves_a_stream_cancels_its_generation(server: LiveServer) -> None:
    body = {
        "model": "slow",
        "input": "go",
        "max_output_tokens": 3000,
        "temperature": 0,
        "stream": True,
    }
    with httpx.stream("POST", f"{server.base_url}/v1/responses", json=body, timeout=30) as reply:
        request_id = reply.headers["x-request-id"]
        lines = reply.iter_lines()
        for _ in range(12):
            next(lines)
    done = wait_for_final_event(server, request_id, timeout=30)
    assert done["type"] == "done" and done["finish_reason"] == "cancelled"
    # The count, not the clock, says the engine stopped: a loaded machine may be slow to say so.
    assert done["usage"]["completion_tokens"] < 500, "the engine kept generating"


def test_responses_are_counted_in_usage_and_metrics(keyed_server: KeyedServer) -> None:
    secret = keyed_server.create_key("resp-usage", "--user", "carol")
    api = keyed_client(keyed_server, secret)
    before = scrape(keyed_server)
    whole = api.responses.create(model="tiny", input="count", max_output_tokens=16)
    with api.responses.stream(
        model="tiny",
        input="count",
        tools=CALL,
        tool_choice="required",
    ) as stream:
        streamed = stream.get_final_response()
    api.responses.retrieve(whole.id)
    rows = wait_for_records(keyed_server, "resp-usage", 3)
    assert [(r["endpoint"], r["method"], r["status"]) for r in rows] == [
        ("/v1/responses", "POST", 200),
        ("/v1/responses", "POST", 200),
        ("/v1/responses/<str:response_id>", "GET", 200),
    ]
    for row, reply in zip(rows, (whole, streamed), strict=False):
        assert reply.usage is not None
        assert (row["prompt_tokens"], row["completion_tokens"]) == (
            reply.usage.input_tokens,
            reply.usage.output_tokens,
        )
        assert row["model"] == "tiny:latest" and row["user__username"] == "carol"
    after = scrape(keyed_server)
    labels = {"model": "tiny:latest", "endpoint": "/v1/responses", "status": "200"}
    requests = value(after, "herd_requests_total", **labels)
    assert requests - value(before, "herd_requests_total", **labels) == 2

    limited = keyed_server.create_key("resp-limited", "--user", "carol", "--rpm", "1")
    capped = keyed_client(keyed_server, limited)
    keyed_server.hold_limit_clock()
    capped.responses.create(model="tiny", input="one", max_output_tokens=16)
    with pytest.raises(openai.RateLimitError):
        capped.responses.create(model="tiny", input="two", max_output_tokens=16)


def test_a_continued_response_finds_its_conversation_in_the_cache(client: OpenAI) -> None:
    """The worker that answered still holds the conversation's start in a stream of its KV
    cache: the next turn decodes only what is new, and its usage says how much it found."""
    first = client.responses.create(
        model="tiny",
        input="A long enough opening turn, so that what is shared is plain. " * 4,
        max_output_tokens=16,
    )
    assert first.usage is not None
    more = client.responses.create(
        model="tiny", previous_response_id=first.id, input="And then?", max_output_tokens=16
    )
    assert more.usage is not None
    cached = more.usage.input_tokens_details.cached_tokens
    assert first.usage.input_tokens // 2 < cached < more.usage.input_tokens
