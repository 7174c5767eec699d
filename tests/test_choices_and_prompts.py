"""Requests OpenAI's and Ollama's documents allow that clients send: several choices (``n``),
a list of prompts, token-id prompts and inputs, ``echo``, ``suffix`` and ``dimensions``. Each
works as the document says, or gets a 400 that names the parameter and says why."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import ollama
import openai
import pytest
from openai import OpenAI
from openai.types.chat import ChatCompletionMessageParam

from tests.inprocess import InProcessServer
from tests.live import LiveServer
from tests.tiny_gguf import write_tiny_gguf

HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
# Token ids of the tiny model's vocabulary (tests.tiny_gguf): letters and words.
TOKENS = [300, 301, 302]


@pytest.mark.live
def test_n_gives_that_many_chat_choices(client: OpenAI) -> None:
    reply = client.chat.completions.create(
        model="tiny",
        messages=HELLO,
        max_tokens=5,
        n=3,
        seed=7,
    )
    assert [c.index for c in reply.choices] == [0, 1, 2]
    assert all(c.message.role == "assistant" and c.finish_reason for c in reply.choices)
    one = client.chat.completions.create(
        model="tiny",
        messages=HELLO,
        max_tokens=5,
        seed=7,
    )
    assert reply.usage is not None and one.usage is not None
    # The prompt is read once for all the choices; every choice's tokens count.
    assert reply.usage.prompt_tokens == one.usage.prompt_tokens
    assert reply.usage.completion_tokens >= 3  # at least a token for each choice


@pytest.mark.live
def test_n_with_a_seed_answers_the_same_twice_and_its_first_choice_is_the_plain_one(
    client: OpenAI,
) -> None:
    def ask(n: int) -> list[str]:
        reply = client.chat.completions.create(
            model="slow",
            messages=HELLO,
            max_tokens=8,
            n=n,
            seed=11,
            temperature=1.0,
        )
        return [c.message.content or "" for c in reply.choices]

    first = ask(2)
    assert ask(2) == first
    assert ask(1) == first[:1]


@pytest.mark.live
def test_streamed_choices_each_arrive_with_their_index_and_end(client: OpenAI) -> None:
    stream = client.chat.completions.create(
        model="tiny",
        messages=HELLO,
        max_tokens=6,
        n=2,
        stream=True,
        stream_options={"include_usage": True},
    )
    texts: dict[int, str] = {0: "", 1: ""}
    finished: dict[int, str] = {}
    usage = None
    for chunk in stream:
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            texts[choice.index] += choice.delta.content or ""
            if choice.finish_reason:
                finished[choice.index] = choice.finish_reason
    assert set(finished) == {0, 1}
    assert usage is not None and usage.completion_tokens >= 2


@pytest.mark.live
def test_a_list_of_prompts_gives_n_choices_for_each_in_order(client: OpenAI) -> None:
    prompts = ["once upon", "the answer"]
    reply = client.completions.create(
        model="tiny", prompt=prompts, max_tokens=4, n=2, temperature=0
    )
    assert [c.index for c in reply.choices] == [0, 1, 2, 3]
    for i, prompt in enumerate(prompts):
        alone = client.completions.create(model="tiny", prompt=prompt, max_tokens=4, temperature=0)
        assert reply.choices[2 * i].text == alone.choices[0].text
        assert reply.choices[2 * i + 1].text == alone.choices[0].text  # greedy: the same


@pytest.mark.live
def test_a_token_array_prompt_completes_like_its_text(client: OpenAI) -> None:
    echoed = client.completions.create(
        model="tiny", prompt=TOKENS, max_tokens=4, temperature=0, echo=True
    )
    text = echoed.choices[0].text
    assert text
    by_tokens = client.completions.create(model="tiny", prompt=TOKENS, max_tokens=4, temperature=0)
    assert text.endswith(by_tokens.choices[0].text)
    lists = client.completions.create(
        model="tiny", prompt=[TOKENS, TOKENS], max_tokens=4, temperature=0
    )
    assert [c.text for c in lists.choices] == [by_tokens.choices[0].text] * 2


@pytest.mark.live
def test_echo_puts_the_prompt_ahead_of_the_answer(client: OpenAI) -> None:
    plain = client.completions.create(model="tiny", prompt="once upon", max_tokens=5, temperature=0)
    echoed = client.completions.create(
        model="tiny", prompt="once upon", max_tokens=5, temperature=0, echo=True
    )
    assert echoed.choices[0].text == "once upon" + plain.choices[0].text
    assert echoed.usage is not None and plain.usage is not None
    assert echoed.usage.completion_tokens == plain.usage.completion_tokens
    chunks = client.completions.create(
        model="tiny", prompt="once upon", max_tokens=5, temperature=0, echo=True, stream=True
    )
    assert "".join(c.choices[0].text for c in chunks if c.choices) == echoed.choices[0].text


@pytest.fixture(scope="module")
def fim_model(server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A tiny model with fill-in-the-middle tokens, on the shared server while these run."""
    path = write_tiny_gguf(tmp_path_factory.mktemp("fim") / "fim.gguf", n_ctx=1024, fim=True)
    server.herd("import", "tiny-fim", str(path))
    yield "tiny-fim"
    server.herd("rm", "tiny-fim")


@pytest.mark.live
def test_suffix_fills_in_the_middle_with_the_models_fim_tokens(
    client: OpenAI, fim_model: str
) -> None:
    def prompt_tokens(prompt: str, **fields: Any) -> int:
        reply = client.completions.create(
            model=fim_model, prompt=prompt, max_tokens=3, temperature=0, **fields
        )
        assert reply.usage is not None
        return reply.usage.prompt_tokens

    # BOS, PRE, the prefix, SUF, the suffix, MID: the two texts' tokens and three more.
    filled = prompt_tokens("def f(", suffix="): pass")
    assert filled == prompt_tokens("def f(") + prompt_tokens("): pass") + 2


@pytest.mark.live
def test_suffix_on_a_model_without_fim_tokens_is_a_400_naming_suffix(client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.completions.create(model="tiny", prompt="def f(", suffix="):", max_tokens=4)
    error = caught.value.body
    assert isinstance(error, dict) and error["param"] == "suffix"
    assert "fill-in-the-middle" in error["message"]


def test_ollama_suffix_on_a_model_whose_template_has_none_is_a_400_naming_suffix(
    web_ollama_client: ollama.Client,
) -> None:
    with pytest.raises(ollama.ResponseError) as caught:
        web_ollama_client.generate(model="tiny", prompt="def f(", suffix="):")
    assert caught.value.status_code == 400
    assert caught.value.error.startswith("suffix: ")


@pytest.mark.live
def test_token_array_embedding_inputs_embed_like_their_text(client: OpenAI) -> None:
    by_tokens = client.embeddings.create(model="tiny", input=[TOKENS, TOKENS])
    assert len(by_tokens.data) == 2
    # One batch of two sequences: the same vector, up to float rounding.
    assert by_tokens.data[0].embedding == pytest.approx(by_tokens.data[1].embedding, abs=1e-5)
    assert len(by_tokens.data[0].embedding) > 0


@pytest.mark.live
def test_embedding_dimensions_the_model_cannot_give_are_a_400(client: OpenAI) -> None:
    length = len(client.embeddings.create(model="tiny", input="hi").data[0].embedding)
    same = client.embeddings.create(model="tiny", input="hi", dimensions=length)
    assert len(same.data[0].embedding) == length
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model="tiny", input="hi", dimensions=length // 2)
    assert isinstance(caught.value.body, dict) and caught.value.body["param"] == "dimensions"


def test_ollama_embed_dimensions_the_model_cannot_give_are_a_400(web: InProcessServer) -> None:
    reply = web.post(
        f"{web.base_url}/api/embed",
        json={"model": "tiny", "input": "hi", "dimensions": 3},
        timeout=60,
    )
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"].startswith("dimensions: ")


@pytest.mark.live
def test_a_batch_line_with_several_choices_fails_the_batch_at_creation(client: OpenAI) -> None:
    line = (
        '{"custom_id": "a", "method": "POST", "url": "/v1/chat/completions", "body": '
        '{"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "n": 2}}\n'
    )
    uploaded = client.files.create(file=("in.jsonl", line.encode()), purpose="batch")
    batch = client.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert batch.status == "failed"
    assert batch.errors is not None and batch.errors.data
    (error,) = batch.errors.data
    assert error.param == "body.n" and "one choice" in (error.message or "")
