"""Images through each API family's official client, on a live server: the tiny model made a
vision model with its tiny projector through ``/api/create`` (both files as blobs), then an
image in an OpenAI chat, a Responses input, an Anthropic message and an Ollama chat and
generate reaches the model (the prompt grows by the image's embeddings); a bad image is a 400
in each family's shape; a model without a projector refuses images."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import ollama
import openai
import pytest

from tests.live import LiveServer
from tests.tiny_mmproj import IMAGE_TOKENS, png_bytes

VISION = "tiny-vision"
PNG = png_bytes(seed=3)
DATA_URL = "data:image/png;base64," + base64.b64encode(PNG).decode()
NOT_AN_IMAGE = "data:image/png;base64," + base64.b64encode(b"hello, not an image").decode()


def untyped(value: Any) -> Any:
    """A message list as JSON: the clients' TypedDict unions cannot tell these parts apart."""
    return value


@pytest.fixture(scope="module")
def vision_model(server: LiveServer, tiny_gguf: Path, tiny_mmproj: Path) -> Iterator[str]:
    client = ollama.Client(host=server.base_url, timeout=60)
    files = {
        "tiny.gguf": client.create_blob(tiny_gguf),
        "mmproj-tiny.gguf": client.create_blob(tiny_mmproj),
    }
    client.create(model=VISION, files=files)
    yield VISION
    client.delete(VISION)


@pytest.fixture
def claude(server: LiveServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=server.base_url, api_key="unused", max_retries=0, timeout=60
    )


def openai_chat(client: openai.OpenAI, model: str, url: str | None, text: str = "what") -> Any:
    # The image first, as Ollama places images: the text after it then tokenizes as it does
    # without one (llama.cpp tokenizes the text on each side of an image apart).
    content: list[dict[str, Any]] = [{"type": "text", "text": text}]
    if url is not None:
        content.insert(0, {"type": "image_url", "image_url": {"url": url}})
    return client.chat.completions.create(
        model=model,
        messages=untyped([{"role": "user", "content": content}]),
        temperature=0,
        max_tokens=12,
    )


def test_a_model_with_a_projector_lists_vision(
    server: LiveServer, ollama_client: ollama.Client, vision_model: str
) -> None:
    shown = ollama_client.show(vision_model)
    assert "vision" in (shown.capabilities or [])
    assert "vision" not in (ollama_client.show("tiny").capabilities or [])
    # Ollama's projector_info, which the client does not model: the projector's header.
    raw = httpx.post(f"{server.base_url}/api/show", json={"model": vision_model}, timeout=10)
    assert raw.json()["projector_info"]["clip.vision.projection_dim"] == 64  # the model's width
    # Its Modelfile recreates it: the model, then the projector.
    froms = [line for line in (shown.modelfile or "").splitlines() if line.startswith("FROM ")]
    assert len(froms) == 2


def test_a_projector_alone_joins_a_model_named_by_from(
    ollama_client: ollama.Client, tiny_mmproj: Path, tiny_gguf: Path
) -> None:
    projector = ollama_client.create_blob(tiny_mmproj)
    ollama_client.create(model="tiny-seer", from_="tiny", files={"mmproj.gguf": projector})
    try:
        assert "vision" in (ollama_client.show("tiny-seer").capabilities or [])
    finally:
        ollama_client.delete("tiny-seer")
    with pytest.raises(ollama.ResponseError, match="a vision projector but no model"):
        ollama_client.create(model="eyes-only", files={"mmproj.gguf": projector})
    model = ollama_client.create_blob(tiny_gguf)
    with pytest.raises(ollama.ResponseError, match="one GGUF file"):
        ollama_client.create(model="two", files={"a.gguf": model, "b.gguf": model})


def test_an_openai_image_reaches_the_model(client: openai.OpenAI, vision_model: str) -> None:
    plain = openai_chat(client, vision_model, None)
    seen = openai_chat(client, vision_model, DATA_URL)
    again = openai_chat(client, vision_model, DATA_URL)
    assert seen.usage.prompt_tokens == plain.usage.prompt_tokens + IMAGE_TOKENS
    assert seen.choices[0].message.content == again.choices[0].message.content
    other = openai_chat(
        client,
        vision_model,
        "data:image/png;base64," + base64.b64encode(png_bytes(seed=4)).decode(),
    )
    assert other.choices[0].message.content != seen.choices[0].message.content


def test_a_responses_input_image_reaches_the_model(
    client: openai.OpenAI, vision_model: str
) -> None:
    def respond(parts: list[dict[str, Any]]) -> Any:
        return client.responses.create(
            model=vision_model,
            input=untyped([{"role": "user", "content": parts}]),
            temperature=0,
            max_output_tokens=16,
        )

    plain = respond([{"type": "input_text", "text": "what"}])
    seen = respond(
        [{"type": "input_image", "image_url": DATA_URL}, {"type": "input_text", "text": "what"}]
    )
    assert seen.usage is not None and plain.usage is not None
    assert seen.usage.input_tokens == plain.usage.input_tokens + IMAGE_TOKENS


def test_an_anthropic_image_block_reaches_the_model(
    claude: anthropic.Anthropic, vision_model: str
) -> None:
    image = {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": DATA_URL.split(",")[1]},
    }

    def message(content: list[dict[str, Any]]) -> Any:
        return claude.messages.create(
            model=vision_model,
            max_tokens=12,
            messages=untyped([{"role": "user", "content": content}]),
            extra_body={"temperature": 0},
        )

    plain = message([{"type": "text", "text": "what"}])
    seen = message([image, {"type": "text", "text": "what"}])
    again = message([image, {"type": "text", "text": "what"}])
    assert seen.usage.input_tokens == plain.usage.input_tokens + IMAGE_TOKENS
    assert seen.content == again.content


def test_ollama_images_reach_the_model_in_chat_and_generate(
    ollama_client: ollama.Client, vision_model: str
) -> None:
    options = {"temperature": 0, "num_predict": 12}
    plain = ollama_client.chat(
        model=vision_model, messages=[{"role": "user", "content": "what"}], options=options
    )
    seen = ollama_client.chat(
        model=vision_model,
        messages=[{"role": "user", "content": "what", "images": [PNG]}],
        options=options,
    )
    assert seen.prompt_eval_count == (plain.prompt_eval_count or 0) + IMAGE_TOKENS
    generated = ollama_client.generate(
        model=vision_model, prompt="what", images=[PNG], options=options
    )
    assert generated.prompt_eval_count == seen.prompt_eval_count
    assert generated.response == seen.message.content


def test_bad_images_are_400s_in_each_familys_shape(
    client: openai.OpenAI,
    claude: anthropic.Anthropic,
    ollama_client: ollama.Client,
    vision_model: str,
) -> None:
    with pytest.raises(openai.BadRequestError) as chat_error:
        openai_chat(client, vision_model, NOT_AN_IMAGE)
    assert chat_error.value.code == "invalid_image"
    assert "not an image" in chat_error.value.message

    with pytest.raises(openai.BadRequestError) as responses_error:
        client.responses.create(
            model=vision_model,
            input=untyped(
                [{"role": "user", "content": [{"type": "input_image", "image_url": NOT_AN_IMAGE}]}]
            ),
        )
    assert responses_error.value.code == "invalid_image"

    with pytest.raises(anthropic.BadRequestError) as claude_error:
        claude.messages.create(
            model=vision_model,
            max_tokens=4,
            messages=[
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "image",
                            "source": {"type": "base64", "media_type": "image/png", "data": "%%"},
                        }
                    ],
                }
            ],
        )
    body = claude_error.value.body
    assert isinstance(body, dict) and body["type"] == "error"
    assert body["error"]["type"] == "invalid_request_error"
    assert "base64" in body["error"]["message"]

    with pytest.raises(ollama.ResponseError) as ollama_error:
        ollama_client.chat(
            model=vision_model,
            messages=[{"role": "user", "content": "what", "images": [b"GIF89a"]}],
        )
    assert ollama_error.value.status_code == 400
    assert "not an image" in ollama_error.value.error


def test_too_many_images_and_image_urls_are_refused(
    client: openai.OpenAI, vision_model: str
) -> None:
    content: list[dict[str, Any]] = [
        {"type": "image_url", "image_url": {"url": DATA_URL}} for _ in range(9)
    ]
    with pytest.raises(openai.BadRequestError) as many:
        client.chat.completions.create(
            model=vision_model,
            messages=untyped([{"role": "user", "content": content}]),
        )
    assert "at most 8 images" in many.value.message
    with pytest.raises(openai.BadRequestError) as fetched:
        openai_chat(client, vision_model, "http://127.0.0.1:1/secret.png")
    assert "HERD_FETCH_IMAGES" in fetched.value.message


def test_a_model_without_a_projector_refuses_images_in_each_family(
    client: openai.OpenAI, claude: anthropic.Anthropic, ollama_client: ollama.Client
) -> None:
    with pytest.raises(openai.BadRequestError) as chat_error:
        openai_chat(client, "tiny", DATA_URL)
    assert "does not support images" in chat_error.value.message
    with pytest.raises(openai.BadRequestError) as responses_error:
        client.responses.create(
            model="tiny",
            input=untyped(
                [{"role": "user", "content": [{"type": "input_image", "image_url": DATA_URL}]}]
            ),
        )
    assert "does not support images" in responses_error.value.message
    with pytest.raises(anthropic.BadRequestError) as claude_error:
        claude.messages.create(
            model="tiny",
            max_tokens=4,
            messages=[
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "image",
                            "source": {
                                "type": "base64",
                                "media_type": "image/png",
                                "data": DATA_URL.split(",")[1],
                            },
                        }
                    ],
                }
            ],
        )
    assert "vision projector" in str(claude_error.value.body)
    with pytest.raises(ollama.ResponseError) as ollama_error:
        ollama_client.chat(
            model="tiny", messages=[{"role": "user", "content": "what", "images": [PNG]}]
        )
    assert ollama_error.value.status_code == 400
