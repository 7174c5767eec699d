"""``/api/show``'s ``capabilities``, derived from the template and the header as Ollama
derives them, and what the endpoints accept following them, through the ollama client."""

from __future__ import annotations

from pathlib import Path

import ollama
import pytest

from models_app.capabilities import derive_capabilities
from models_app.chat_templates import GEMMA
from tests.live import LiveServer
from tests.tiny_gguf import CHAT_TEMPLATE

# A fill-in-the-middle template (as code models write theirs) and one that thinks.
FIM_TEMPLATE = (
    "{% if suffix %}<PRE> {{ messages[-1]['content'] }} <SUF>{{ suffix }} <MID>"
    "{% else %}" + CHAT_TEMPLATE + "{% endif %}"
)
THINKING_TEMPLATE = CHAT_TEMPLATE.replace(
    "<|assistant|>\n", "<|assistant|>\n{% if not enable_thinking %}<think></think>{% endif %}"
)


@pytest.mark.parametrize(
    ("template", "info", "expected"),
    [
        (CHAT_TEMPLATE, {}, ["completion", "tools", "embedding"]),
        (GEMMA, {}, ["completion", "tools", "embedding"]),  # no `tools` variable: Herd's own
        ("", {}, ["completion", "embedding"]),
        (FIM_TEMPLATE, {}, ["completion", "tools", "insert", "embedding"]),
        (THINKING_TEMPLATE, {}, ["completion", "tools", "embedding", "thinking"]),
        (CHAT_TEMPLATE, {"llama.pooling_type": 1}, ["embedding"]),
    ],
)
def test_capabilities_follow_the_template_and_the_header(
    template: str, info: dict[str, int], expected: list[str]
) -> None:
    assert derive_capabilities("llama", info, template) == expected


@pytest.fixture(scope="module")
def templated(
    server: LiveServer, tiny_gguf: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = tmp_path_factory.mktemp("templates")
    for name, template in (("fim", FIM_TEMPLATE), ("thinker", THINKING_TEMPLATE)):
        (folder / name).write_text(template)
        server.herd("import", name, str(tiny_gguf), "--template", str(folder / name))


def test_show_lists_tools_for_a_chat_model(web_ollama_client: ollama.Client) -> None:
    assert web_ollama_client.show("tiny").capabilities == ["completion", "tools", "embedding"]


def test_a_model_that_lists_insert_takes_a_suffix(
    ollama_client: ollama.Client, templated: None
) -> None:
    assert "insert" in (ollama_client.show("fim").capabilities or [])
    options = {"num_predict": 2, "temperature": 0}
    plain = ollama_client.generate(model="fim", prompt="def f(", options=options)
    filled = ollama_client.generate(
        model="fim", prompt="def f(", suffix="    return x", options=options
    )
    assert filled.done and plain.done
    assert filled.prompt_eval_count != plain.prompt_eval_count  # the template wrote the suffix


def test_a_model_without_insert_refuses_a_suffix(web_ollama_client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as caught:
        web_ollama_client.generate(model="tiny", prompt="def f(", suffix="return 1")
    assert caught.value.status_code == 400
    assert "does not support insert" in caught.value.error


def test_think_follows_the_thinking_capability(
    ollama_client: ollama.Client, templated: None
) -> None:
    assert "thinking" in (ollama_client.show("thinker").capabilities or [])
    ask = [{"role": "user", "content": "hi"}]
    options = {"num_predict": 2}
    thinking = ollama_client.chat(model="thinker", messages=ask, think=True, options=options)
    quick = ollama_client.chat(model="thinker", messages=ask, think=False, options=options)
    # The template was told: without thinking it writes an empty block itself.
    assert (quick.prompt_eval_count or 0) > (thinking.prompt_eval_count or 0)
    with pytest.raises(ollama.ResponseError) as caught:
        ollama_client.chat(model="tiny", messages=ask, think=True, options=options)
    assert caught.value.status_code == 400
    assert "does not support thinking" in caught.value.error


def test_a_projector_adds_vision_to_a_chat_model_only() -> None:
    template = "{{ messages }}"
    assert derive_capabilities("llama", {}, template, has_projector=True) == [
        "completion",
        "tools",
        "vision",
        "embedding",
    ]
    pooled = {"llama.pooling_type": 1}
    assert derive_capabilities("llama", pooled, template, has_projector=True) == ["embedding"]
