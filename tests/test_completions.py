from __future__ import annotations

from openai import OpenAI


def test_it_completes_a_prompt(client: OpenAI) -> None:
    reply = client.completions.create(model="tiny", prompt="once upon", max_tokens=6, temperature=0)
    assert reply.object == "text_completion"
    assert reply.choices[0].text
    assert reply.usage is not None and reply.usage.completion_tokens <= 6


def test_it_streams_a_completion_that_matches_the_whole_one(client: OpenAI) -> None:
    whole = client.completions.create(
        model="tiny", prompt="once upon", max_tokens=12, temperature=0
    )
    chunks = list(
        client.completions.create(
            model="tiny",
            prompt="once upon",
            max_tokens=12,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text == whole.choices[0].text
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == whole.usage.completion_tokens  # type: ignore[union-attr]


def test_the_same_seed_gives_the_same_completion(client: OpenAI) -> None:
    def sample(seed: int) -> str:
        return (
            client.completions.create(
                model="slow", prompt="the", max_tokens=20, temperature=1.0, seed=seed
            )
            .choices[0]
            .text
        )

    assert sample(42) == sample(42)
