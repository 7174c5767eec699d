from __future__ import annotations

import math

import httpx
from openai import OpenAI

from tests.live import LiveServer


def test_it_embeds_one_string(client: OpenAI) -> None:
    result = client.embeddings.create(model="tiny", input="hello world")
    (item,) = result.data
    assert len(item.embedding) == 64
    assert math.isclose(math.sqrt(sum(x * x for x in item.embedding)), 1.0, rel_tol=1e-3)
    assert result.usage.prompt_tokens > 0


def test_it_embeds_a_list_in_order(client: OpenAI) -> None:
    result = client.embeddings.create(model="tiny", input=["hello", "world", "hello"])
    assert [d.index for d in result.data] == [0, 1, 2]
    assert result.data[0].embedding == result.data[2].embedding
    assert result.data[0].embedding != result.data[1].embedding


def test_float_and_base64_encodings_agree(server: LiveServer, client: OpenAI) -> None:
    # The openai client asks for base64 and decodes it; ask for floats directly to compare.
    decoded = client.embeddings.create(model="tiny", input="abc").data[0].embedding
    floats = httpx.post(
        f"{server.base_url}/v1/embeddings",
        json={"model": "tiny", "input": "abc", "encoding_format": "float"},
        timeout=30,
    ).json()["data"][0]["embedding"]
    assert all(
        math.isclose(a, b, rel_tol=1e-5, abs_tol=1e-6) for a, b in zip(decoded, floats, strict=True)
    )
