"""``logprobs`` / ``top_logprobs``: read from the logits of the step that chose each token."""

from __future__ import annotations

import math
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI

from tests.live import LiveServer
from workers.engine.generation import SamplingOptions, _consume

HELLO: list[Any] = [{"role": "user", "content": "hello"}]


def test_greedy_tokens_are_the_most_likely_ones(client: OpenAI) -> None:
    reply = client.chat.completions.create(
        model="tiny", messages=HELLO, max_tokens=20, temperature=0, logprobs=True, top_logprobs=3
    )
    logprobs = reply.choices[0].logprobs
    assert logprobs is not None and logprobs.content is not None
    entries = logprobs.content
    assert len(entries) == 20
    for entry in entries:
        assert len(entry.top_logprobs) == 3
        best = entry.top_logprobs[0]
        assert entry.token == best.token
        assert math.isclose(entry.logprob, best.logprob, abs_tol=1e-9)
        ranked = [t.logprob for t in entry.top_logprobs]
        assert ranked == sorted(ranked, reverse=True)
        assert all(lp <= 0 for lp in ranked)
        assert sum(math.exp(lp) for lp in ranked) <= 1 + 1e-6
        assert entry.bytes is not None and bytes(entry.bytes).decode("utf-8", "replace")


def test_sampled_tokens_carry_their_own_logprob(client: OpenAI) -> None:
    reply = client.chat.completions.create(
        model="tiny",
        messages=HELLO,
        max_tokens=40,
        temperature=1.5,
        seed=11,
        logprobs=True,
        top_logprobs=1,
    )
    entries = reply.choices[0].logprobs.content  # type: ignore[union-attr]
    assert entries is not None
    # At a high temperature some sampled tokens are not the most likely one.
    assert any(e.logprob < e.top_logprobs[0].logprob - 1e-9 for e in entries)
    assert (
        "".join(bytes(e.bytes or []).decode("latin-1") for e in entries)
        .encode("latin-1")
        .decode("utf-8", "replace")
        == reply.choices[0].message.content
    )


def test_streamed_logprobs_match_the_whole_answer(client: OpenAI) -> None:
    kwargs: dict[str, Any] = {
        "model": "slow",
        "messages": HELLO,
        "max_tokens": 15,
        "temperature": 0,
        "logprobs": True,
        "top_logprobs": 2,
    }
    whole = client.chat.completions.create(**kwargs)
    chunks = list(client.chat.completions.create(**kwargs, stream=True))
    streamed = [
        entry
        for c in chunks
        if c.choices and c.choices[0].logprobs and c.choices[0].logprobs.content
        for entry in c.choices[0].logprobs.content
    ]
    assert whole.choices[0].logprobs is not None
    expected = whole.choices[0].logprobs.content
    assert expected is not None
    assert [e.token for e in streamed] == [e.token for e in expected]
    assert all(
        math.isclose(a.logprob, b.logprob, abs_tol=1e-4)
        for a, b in zip(streamed, expected, strict=True)
    )


def test_no_logprobs_unless_asked(client: OpenAI) -> None:
    reply = client.chat.completions.create(model="tiny", messages=HELLO, max_tokens=5)
    assert reply.choices[0].logprobs is None
    chunks = list(
        client.chat.completions.create(model="tiny", messages=HELLO, max_tokens=5, stream=True)
    )
    assert all(c.choices[0].logprobs is None for c in chunks if c.choices)


def test_logprobs_without_top_logprobs_gives_an_empty_top_list(client: OpenAI) -> None:
    reply = client.chat.completions.create(
        model="tiny", messages=HELLO, max_tokens=3, logprobs=True
    )
    entries = reply.choices[0].logprobs.content  # type: ignore[union-attr]
    # One entry per token: three, or fewer when the random model samples its end sooner.
    assert reply.usage is not None and reply.usage.completion_tokens >= 1
    assert entries is not None and len(entries) == reply.usage.completion_tokens
    assert all(e.top_logprobs == [] for e in entries)


@pytest.mark.parametrize("top", [-1, 21])
def test_top_logprobs_out_of_range_is_a_400(web_client: OpenAI, top: int) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        web_client.chat.completions.create(
            model="tiny", messages=HELLO, max_tokens=3, logprobs=True, top_logprobs=top
        )
    assert caught.value.body["param"] == "top_logprobs"  # type: ignore[index]


def test_top_logprobs_needs_logprobs(web_client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError):
        web_client.chat.completions.create(
            model="tiny", messages=HELLO, max_tokens=3, top_logprobs=2
        )


def test_the_ollama_api_gives_logprobs_too(server: LiveServer) -> None:
    body = {
        "model": "tiny",
        "messages": HELLO,
        "stream": False,
        "logprobs": True,
        "top_logprobs": 2,
        "options": {"temperature": 0, "num_predict": 6},
    }
    reply = httpx.post(f"{server.base_url}/api/chat", json=body, timeout=30).json()
    assert len(reply["logprobs"]) == 6
    for entry in reply["logprobs"]:
        assert entry["token"] == entry["top_logprobs"][0]["token"]
        assert len(entry["top_logprobs"]) == 2


def test_a_token_that_writes_nothing_still_sends_its_logprob() -> None:
    """A control token sampled last (its piece is empty) goes out with no text, so the answer
    has an entry for every token it counts."""

    class Pieces:
        def piece(self, token: int) -> bytes:
            return {1: b"\xb8", 2: b" his", 3: b""}[token]

        def is_eog(self, token: int) -> bool:
            return False

    sent: list[tuple[str, int, list[dict[str, Any]] | None]] = []

    def emit(text: str, tokens: int, logprobs: list[dict[str, Any]] | None) -> bool:
        sent.append((text, tokens, logprobs))
        return True

    tokens = iter([(1, {"t": 1}), (2, {"t": 2}), (3, {"t": 3})])
    options = SamplingOptions(max_tokens=3, logprobs=True)
    result = _consume(tokens, 10, 3, options, Pieces(), emit, 0)  # type: ignore[arg-type]
    assert result.completion_tokens == 3
    assert [entry for _, _, entries in sent for entry in entries or []] == [
        {"t": 1},
        {"t": 2},
        {"t": 3},
    ]
    assert sum(count for _, count, _ in sent) == 3
