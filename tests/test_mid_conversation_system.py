"""A system message in the middle of a conversation, as Claude Code sends one in
``/v1/messages``: kept at its place when the model's chat template renders it there, else
merged into the nearest user turn, never dropped. First the rendering itself (no model), then
through ``/v1/messages`` on a template that takes system messages and one that does not."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import ollama
import pytest

from tests.live import LiveServer
from tests.tiny_gguf import CHAT_TEMPLATE
from workers.engine.prompts import fold_later_system_messages, render_chat_prompt

# A template for models trained on user and assistant turns only: it leaves any other out.
USER_AND_ASSISTANT_ONLY = (
    "{{ bos_token }}{% for m in messages %}"
    "{% if m['role'] == 'user' %}[INST] {{ m['content'] }} [/INST]"
    "{% elif m['role'] == 'assistant' %}{{ m['content'] }}{{ eos_token }}{% endif %}"
    "{% endfor %}"
)
# One that refuses any role but those two after the first message, as many templates do.
ALTERNATING = (
    "{{ bos_token }}{% for m in messages %}"
    "{% if loop.index0 > 0 and m['role'] not in ('user', 'assistant') %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant') }}{% endif %}"
    "<{{ m['role'] }}>{{ m['content'] }}</{{ m['role'] }}>"
    "{% endfor %}"
)
SYSTEM_NOTE = "Reminder: the user's files changed."


def render(template: str, messages: list[dict[str, Any]]) -> str:
    return render_chat_prompt(template, messages, bos_token="<s>", eos_token="</s>")


def test_a_template_that_takes_system_messages_keeps_it_at_its_place() -> None:
    prompt = render(
        CHAT_TEMPLATE,
        [
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "answer"},
            {"role": "system", "content": SYSTEM_NOTE},
            {"role": "user", "content": "second"},
        ],
    )
    assert f"<|assistant|>\nanswer<|end|>\n<|system|>\n{SYSTEM_NOTE}<|end|>\n<|user|>" in prompt


@pytest.mark.parametrize("template", [USER_AND_ASSISTANT_ONLY, ALTERNATING])
def test_a_template_without_them_gets_it_in_the_next_user_turn(template: str) -> None:
    prompt = render(
        template,
        [
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "answer"},
            {"role": "system", "content": SYSTEM_NOTE},
            {"role": "user", "content": "second"},
        ],
    )
    assert SYSTEM_NOTE in prompt
    assert prompt.index("answer") < prompt.index(SYSTEM_NOTE) < prompt.index("second")


def test_a_system_message_last_joins_the_user_turn_before_it() -> None:
    messages = [
        {"role": "user", "content": "first"},
        {"role": "system", "content": SYSTEM_NOTE},
    ]
    assert fold_later_system_messages(messages) == [
        {"role": "user", "content": f"first\n\n{SYSTEM_NOTE}"}
    ]
    assert render(USER_AND_ASSISTANT_ONLY, messages) == f"<s>[INST] first\n\n{SYSTEM_NOTE} [/INST]"


def test_a_leading_system_message_stays_first() -> None:
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "hi"},
        {"role": "system", "content": SYSTEM_NOTE},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "again"},
    ]
    assert fold_later_system_messages(messages) == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": f"{SYSTEM_NOTE}\n\nagain"},
    ]


# Through /v1/messages.

CLAUDE_CODE_FIELDS: dict[str, Any] = {
    # Fields Claude Code sends that Herd does not act on.
    "thinking": {"type": "adaptive"},
    "output_config": {"effort": "medium"},
    "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
    "metadata": {"user_id": "user_abc_account_def_session_ghi"},
}


@pytest.fixture(scope="module")
def no_system_model(server: LiveServer) -> Iterator[str]:
    """The tiny model under another name, with a template that leaves system turns out."""
    models = ollama.Client(host=server.base_url)
    models.copy("tiny", "tiny-no-system")
    listed = httpx.get(f"{server.base_url}/api/models/", params={"name": "tiny-no-system:latest"})
    (record,) = listed.json()
    patched = httpx.patch(
        f"{server.base_url}/api/models/{record['id']}/",
        json={"chat_template": USER_AND_ASSISTANT_ONLY},
    )
    assert patched.status_code == 200, patched.text
    yield "tiny-no-system"
    models.delete("tiny-no-system")


def conversation(system: Any) -> list[dict[str, Any]]:
    middle = [{"role": "system", "content": system}] if system is not None else []
    return [
        {"role": "user", "content": "What is in this folder?"},
        {"role": "assistant", "content": "Some files."},
        *middle,
        {"role": "user", "content": "And now?"},
    ]


def counted(server: LiveServer, model: str, messages: list[dict[str, Any]]) -> int:
    reply = httpx.post(
        f"{server.base_url}/v1/messages/count_tokens?beta=true",
        json={"model": model, "messages": messages},
        timeout=60,
    )
    assert reply.status_code == 200, reply.text
    tokens: int = reply.json()["input_tokens"]
    return tokens


@pytest.mark.parametrize("system", [SYSTEM_NOTE, [{"type": "text", "text": SYSTEM_NOTE}]])
def test_messages_takes_a_system_message_mid_conversation(
    server: LiveServer, no_system_model: str, system: Any
) -> None:
    for model in ("tiny", no_system_model):
        reply = httpx.post(
            f"{server.base_url}/v1/messages?beta=true",
            headers={"anthropic-beta": "mid-conversation-system-2026-04-07"},
            json={
                "model": model,
                "max_tokens": 8,
                "system": [{"type": "text", "text": "You are a coding agent."}],
                "messages": conversation(system),
                **CLAUDE_CODE_FIELDS,
            },
            timeout=60,
        )
        assert reply.status_code == 200, reply.text
        assert reply.json()["type"] == "message"
        # Never dropped: the prompt is longer by the note, with either template.
        assert counted(server, model, conversation(system)) > counted(
            server, model, conversation(None)
        )


def test_a_system_message_holds_text_only(server: LiveServer) -> None:
    messages = conversation([{"type": "tool_result", "tool_use_id": "toolu_1", "content": "x"}])
    reply = httpx.post(
        f"{server.base_url}/v1/messages",
        json={"model": "tiny", "max_tokens": 8, "messages": messages},
        timeout=60,
    )
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith("messages.2.content.0")
