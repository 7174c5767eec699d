from __future__ import annotations

import json

import jsonschema
from openai import OpenAI
from openai.types.chat import ChatCompletionMessageParam

HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello"}]


def test_it_answers_a_chat_in_one_body(client: OpenAI) -> None:
    reply = client.chat.completions.create(
        model="tiny", messages=HELLO, max_tokens=8, temperature=0
    )
    assert reply.object == "chat.completion"
    assert reply.choices[0].message.role == "assistant"
    assert reply.choices[0].message.content
    assert reply.choices[0].finish_reason in ("stop", "length")
    assert reply.usage is not None
    assert reply.usage.prompt_tokens > 0
    assert reply.usage.total_tokens == reply.usage.prompt_tokens + reply.usage.completion_tokens


def test_max_tokens_ends_with_finish_reason_length(client: OpenAI) -> None:
    reply = client.chat.completions.create(
        model="slow", messages=HELLO, max_tokens=5, temperature=0
    )
    assert reply.choices[0].finish_reason == "length"
    assert reply.usage is not None and reply.usage.completion_tokens == 5


def test_it_streams_chunks_that_add_up_to_the_whole_answer(client: OpenAI) -> None:
    whole = client.chat.completions.create(
        model="tiny", messages=HELLO, max_tokens=20, temperature=0
    )
    stream = client.chat.completions.create(
        model="tiny",
        messages=HELLO,
        max_tokens=20,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finishing = [
        c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason
    ]
    assert finishing == [whole.choices[0].finish_reason]
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens  # type: ignore[union-attr]


def test_a_stream_without_include_usage_has_no_usage_chunk(client: OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(model="tiny", messages=HELLO, max_tokens=4, stream=True)
    )
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason is not None


def test_the_same_seed_gives_the_same_answer(client: OpenAI) -> None:
    def sample(seed: int) -> str:
        reply = client.chat.completions.create(
            model="slow", messages=HELLO, max_tokens=24, temperature=1.0, top_p=0.95, seed=seed
        )
        return reply.choices[0].message.content or ""

    first = sample(7)
    assert sample(7) == first
    assert sample(8) != first


def test_a_stop_string_ends_the_answer_before_it(client: OpenAI) -> None:
    free = (
        client.chat.completions.create(model="slow", messages=HELLO, max_tokens=30, temperature=0)
        .choices[0]
        .message.content
        or ""
    )
    stop = free[10:13]
    assert len(stop) == 3
    for form in (stop, [stop, "\u2603never"]):
        reply = client.chat.completions.create(
            model="slow", messages=HELLO, max_tokens=30, temperature=0, stop=form
        )
        assert reply.choices[0].finish_reason == "stop"
        assert reply.choices[0].message.content == free[: free.index(stop)]


def test_penalties_change_the_answer(client: OpenAI) -> None:
    def answer(presence: float = 0.0, frequency: float = 0.0) -> str:
        return (
            client.chat.completions.create(
                model="slow",
                messages=HELLO,
                max_tokens=200,
                temperature=0,
                presence_penalty=presence,
                frequency_penalty=frequency,
            )
            .choices[0]
            .message.content
            or ""
        )

    plain = answer()  # long enough that greedy decoding repeats tokens
    assert answer(presence=2.0) != plain
    assert answer(frequency=2.0) != plain


def test_json_object_mode_returns_json(client: OpenAI) -> None:
    reply = client.chat.completions.create(
        model="tiny",
        messages=HELLO,
        max_tokens=300,
        temperature=1.0,
        seed=3,
        response_format={"type": "json_object"},
    )
    assert reply.choices[0].finish_reason == "stop"
    json.loads(reply.choices[0].message.content or "")


def test_json_schema_mode_returns_json_that_validates(client: OpenAI) -> None:
    schema = {
        "type": "object",
        "properties": {
            "answer": {"type": "string", "enum": ["yes", "no"]},
            "sure": {"type": "boolean"},
        },
        "required": ["answer", "sure"],
        "additionalProperties": False,
    }
    reply = client.chat.completions.create(
        model="tiny",
        messages=HELLO,
        max_tokens=200,
        temperature=0.7,
        seed=1,
        response_format={
            "type": "json_schema",
            "json_schema": {"name": "verdict", "schema": schema},
        },
    )
    jsonschema.validate(json.loads(reply.choices[0].message.content or ""), schema)


def test_usage_counts_the_prompt_found_in_the_cache(client: OpenAI) -> None:
    """The same long system prompt twice: the second time its tokens are found in the KV
    cache instead of decoded, and ``prompt_tokens_details.cached_tokens`` says how many."""
    system: ChatCompletionMessageParam = {
        "role": "system",
        "content": "You answer in one word. " * 20,
    }
    first = client.chat.completions.create(
        model="tiny", messages=[system, {"role": "user", "content": "one"}], max_tokens=2
    )
    second = client.chat.completions.create(
        model="tiny", messages=[system, {"role": "user", "content": "two"}], max_tokens=2
    )
    assert first.usage is not None and second.usage is not None
    details = second.usage.prompt_tokens_details
    assert details is not None and details.cached_tokens is not None
    assert first.usage.prompt_tokens // 2 < details.cached_tokens < second.usage.prompt_tokens
