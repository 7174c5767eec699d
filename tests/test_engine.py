"""The engine's one door, in process on the tiny test model: an ``EngineRequest`` in, typed
events out (``workers.engine.requests``, ``workers.engine.events``). No Celery, Redis or
Django: what a request does inside the engine (sampling, grammars, tools, reasoning, stop
strings, logprobs, truncation, cancellation, batching) is tested here; the live tests keep
what needs the processes."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tests.tiny_gguf import CHAT_TEMPLATE
from workers.engine.batched import BatchedEngine
from workers.engine.events import (
    COUNTED,
    Embedded,
    EngineEvent,
    Finished,
    Rejected,
    TextPiece,
    ThinkingPiece,
    ToolCallPiece,
)
from workers.engine.factory import EngineConfig, load_engine
from workers.engine.jobs import Engine
from workers.engine.loading import repack_weights
from workers.engine.requests import (
    Cancellation,
    EmbeddingRequest,
    EngineRequest,
    ModelProfile,
    SamplingOptions,
)
from workers.engine.stepper import sequence_context

PROMPT = "hello world the"
PROMPTS = ["hello world the", "a model is", "yes no true false answer", "herd llama token of"]
GREEDY = SamplingOptions(temperature=0.0, max_tokens=40)
SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "boolean"}, "count": {"type": "integer"}},
    "required": ["answer", "count"],
}
TOOLS = (
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    },
)


def build(path: Path, parallel: int, n_ctx: int = 512) -> Engine:
    config = EngineConfig(
        name=f"tiny-{parallel}",
        path=str(path),
        n_ctx=n_ctx,
        threads=1,
        repack=repack_weights("auto"),
        parallel=parallel,
        cache_sequences=parallel,
    )
    return load_engine(config, ModelProfile(chat_template=CHAT_TEMPLATE))


@pytest.fixture(scope="module", params=[1, 4], ids=["serial", "batched"])
def engine(request: pytest.FixtureRequest, tiny_gguf: Path) -> Iterator[Engine]:
    """Each test runs on a serial engine and on a batched one: one request path for both."""
    built = build(tiny_gguf, request.param)
    yield built
    built.close()


def run(engine: Engine, request: EngineRequest) -> list[EngineEvent]:
    return list(engine.submit(request))


def text_of(events: list[EngineEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextPiece))


def final(events: list[EngineEvent]) -> EngineEvent:
    assert events, "no events"
    return events[-1]


def finished(events: list[EngineEvent]) -> Finished:
    last = final(events)
    assert isinstance(last, Finished), last
    return last


def test_a_greedy_answer_is_the_same_every_time(engine: Engine) -> None:
    first = run(engine, EngineRequest(prompt=PROMPT, sampling=GREEDY))
    second = run(engine, EngineRequest(prompt=PROMPT, sampling=GREEDY))
    assert text_of(first) and text_of(first) == text_of(second)
    assert finished(first).finish_reason in ("stop", "length")


def test_a_seed_repeats_a_sampled_answer_and_another_seed_does_not(engine: Engine) -> None:
    sampled = SamplingOptions(temperature=1.0, max_tokens=40, seed=7)
    first = text_of(run(engine, EngineRequest(prompt=PROMPT, sampling=sampled)))
    again = text_of(run(engine, EngineRequest(prompt=PROMPT, sampling=sampled)))
    other = text_of(run(engine, EngineRequest(prompt=PROMPT, sampling=replace(sampled, seed=8))))
    assert first == again
    assert other != first


def test_usage_counts_the_prompt_and_each_token_sent(engine: Engine) -> None:
    events = run(engine, EngineRequest(prompt=PROMPT, sampling=replace(GREEDY, max_tokens=8)))
    done = finished(events)
    sent = sum(e.tokens for e in events if isinstance(e, TextPiece))
    assert done.usage.completion_tokens == sent
    assert done.usage.prompt_tokens > 0
    assert done.finish_reason == "length" or done.usage.completion_tokens < 8


def test_max_tokens_ends_the_answer_with_length(engine: Engine) -> None:
    long = run(engine, EngineRequest(prompt=PROMPTS[1], sampling=replace(GREEDY, max_tokens=40)))
    if finished(long).usage.completion_tokens < 5:
        pytest.skip("the tiny model ended this answer before five tokens")
    done = finished(
        run(engine, EngineRequest(prompt=PROMPTS[1], sampling=replace(GREEDY, max_tokens=5)))
    )
    assert (done.finish_reason, done.usage.completion_tokens) == ("length", 5)


def test_a_stop_string_ends_the_answer_before_it(engine: Engine) -> None:
    plain = text_of(run(engine, EngineRequest(prompt=PROMPTS[0], sampling=GREEDY)))
    cut = next(i for i in range(5, 30) if plain.find(plain[i : i + 4]) == i)
    stop = plain[cut : cut + 4]
    events = run(engine, EngineRequest(prompt=PROMPTS[0], sampling=replace(GREEDY, stop=(stop,))))
    assert text_of(events) == plain[:cut]
    assert finished(events).finish_reason == "stop"
    assert finished(events).stop_sequence == stop


def test_a_json_schema_shapes_the_answer(engine: Engine) -> None:
    shaped = replace(
        GREEDY, max_tokens=200, response_format={"type": "json_schema", "schema": SCHEMA}
    )
    events = run(engine, EngineRequest(prompt=PROMPTS[2], sampling=shaped))
    answer = json.loads(text_of(events))
    assert isinstance(answer["answer"], bool) and isinstance(answer["count"], int)
    assert finished(events).finish_reason == "stop"


def test_json_object_format_gives_a_json_object(engine: Engine) -> None:
    shaped = replace(GREEDY, max_tokens=300, response_format={"type": "json_object"})
    events = run(engine, EngineRequest(prompt=PROMPTS[3], sampling=shaped))
    if finished(events).finish_reason == "stop":
        assert isinstance(json.loads(text_of(events)), dict)
    else:
        assert text_of(events).lstrip().startswith("{")


def test_a_schema_llama_cpp_cannot_convert_is_rejected(engine: Engine) -> None:
    refused = replace(
        GREEDY,
        response_format={"type": "json_schema", "schema": {"foo": {}}, "param": "format"},
    )
    (event,) = run(engine, EngineRequest(prompt=PROMPT, sampling=refused))
    assert isinstance(event, Rejected)
    assert (event.code, event.param) == ("invalid_schema", "format")


def test_logprobs_come_with_each_token(engine: Engine) -> None:
    scored = replace(GREEDY, max_tokens=6, logprobs=True, top_logprobs=2)
    events = run(engine, EngineRequest(prompt=PROMPTS[3], sampling=scored))
    entries = [e for piece in events if isinstance(piece, TextPiece) for e in piece.logprobs or []]
    assert len(entries) == finished(events).usage.completion_tokens
    assert all(len(e["top_logprobs"]) == 2 and e["logprob"] <= 0 for e in entries)


def test_no_logprobs_unless_asked(engine: Engine) -> None:
    events = run(engine, EngineRequest(prompt=PROMPTS[3], sampling=replace(GREEDY, max_tokens=4)))
    assert all(not e.logprobs for e in events if isinstance(e, TextPiece))


def test_a_chat_is_rendered_with_the_models_template(engine: Engine) -> None:
    messages = ({"role": "user", "content": "hello world"},)
    events = run(engine, EngineRequest(messages=messages, sampling=GREEDY))
    from_text = run(
        engine,
        EngineRequest(prompt="<s><|user|>\nhello world<|end|>\n<|assistant|>\n", sampling=GREEDY),
    )
    assert finished(events).usage.prompt_tokens == finished(from_text).usage.prompt_tokens
    assert text_of(events) == text_of(from_text)


def test_counting_tokens_reads_the_prompt_and_generates_nothing(engine: Engine) -> None:
    counted = EngineRequest(prompt=PROMPT, sampling=GREEDY, count_tokens_only=True)
    (event,) = run(engine, counted)
    assert isinstance(event, Finished) and event.finish_reason == COUNTED
    answered = finished(run(engine, EngineRequest(prompt=PROMPT, sampling=GREEDY)))
    assert event.usage.prompt_tokens == answered.usage.prompt_tokens


def test_echo_gives_the_prompt_back_first(engine: Engine) -> None:
    events = run(engine, EngineRequest(prompt=PROMPT, sampling=GREEDY, echo=True))
    first = events[0]
    assert isinstance(first, TextPiece) and first.text == PROMPT and first.tokens == 0


def test_an_empty_prompt_and_a_token_out_of_the_vocabulary_are_rejected(engine: Engine) -> None:
    (empty,) = run(engine, EngineRequest(prompt_tokens=(), sampling=GREEDY))
    assert isinstance(empty, Rejected) and empty.code == "empty_prompt"
    (bad,) = run(engine, EngineRequest(prompt_tokens=(1, 10**7), sampling=GREEDY))
    assert isinstance(bad, Rejected) and (bad.code, bad.param) == ("invalid_value", "prompt")


def test_a_suffix_needs_a_model_with_fill_in_the_middle_tokens(engine: Engine) -> None:
    (event,) = run(engine, EngineRequest(prompt=PROMPT, suffix=" end", sampling=GREEDY))
    assert isinstance(event, Rejected)
    assert (event.code, event.param) == ("unsupported_parameter", "suffix")


def test_template_variables_reach_the_template(engine: Engine) -> None:
    profile = engine.profile
    template = "{{ greeting }} " + CHAT_TEMPLATE
    engine.use_profile(replace(profile, chat_template=template))
    try:
        messages = ({"role": "user", "content": "hi"},)
        plain = EngineRequest(messages=messages, count_tokens_only=True)
        greeted = replace(plain, template_variables={"greeting": "hello world herd"})
        without = finished(run(engine, plain)).usage.prompt_tokens
        with_greeting = finished(run(engine, greeted)).usage.prompt_tokens
    finally:
        engine.use_profile(profile)
    assert with_greeting > without


def test_a_prompt_over_the_context_is_rejected_or_cut_to_fit(engine: Engine) -> None:
    long = " ".join(PROMPTS) * 60  # well over the 512 tokens of context
    n_ctx = sequence_context(engine.llama)
    (refused,) = run(engine, EngineRequest(prompt=long, sampling=GREEDY))
    assert isinstance(refused, Rejected) and refused.code == "context_length_exceeded"
    done = finished(run(engine, EngineRequest(prompt=long, sampling=GREEDY, truncate=True)))
    assert 0 < done.usage.prompt_tokens < n_ctx
    assert done.usage.prompt_tokens + done.usage.completion_tokens <= n_ctx


def test_a_chat_over_the_context_keeps_its_latest_turns(engine: Engine) -> None:
    old = [
        {"role": "user", "content": " ".join(PROMPTS) * 40},
        {"role": "assistant", "content": "ok"},
    ]
    messages = (*old, {"role": "user", "content": "hello"})
    (refused,) = run(engine, EngineRequest(messages=messages, sampling=GREEDY))
    assert isinstance(refused, Rejected) and refused.param == "messages"
    done = finished(run(engine, EngineRequest(messages=messages, sampling=GREEDY, truncate=True)))
    alone = finished(
        run(engine, EngineRequest(messages=messages[-1:], sampling=GREEDY, count_tokens_only=True))
    )
    assert alone.usage.prompt_tokens <= done.usage.prompt_tokens < sequence_context(engine.llama)


def test_offered_tools_leave_plain_text_as_text(engine: Engine) -> None:
    messages = ({"role": "user", "content": "hello world"},)
    events = run(engine, EngineRequest(messages=messages, sampling=GREEDY, tools=TOOLS))
    assert not any(isinstance(e, ToolCallPiece) for e in events)
    done = finished(events)
    assert done.tool_calls == () and done.finish_reason in ("stop", "length")
    assert text_of(events)


def test_a_forced_call_streams_as_tool_call_pieces(engine: Engine) -> None:
    messages = ({"role": "user", "content": "weather in paris"},)
    forced = EngineRequest(
        messages=messages,
        sampling=replace(GREEDY, max_tokens=300),
        tools=TOOLS,
        tool_choice="required",
    )
    events = run(engine, forced)
    pieces = [e for e in events if isinstance(e, ToolCallPiece)]
    assert not text_of(events)
    (call,) = finished(events).tool_calls
    assert pieces[0].name == call.name == "get_weather" and pieces[0].id == call.id
    written = "".join(p.arguments for p in pieces)
    if finished(events).finish_reason == "tool_calls":
        assert json.loads(written) == call.arguments and isinstance(call.arguments["city"], str)
    else:
        assert call.arguments_text == written


def test_a_tool_choice_naming_no_tool_is_rejected(engine: Engine) -> None:
    named = {"type": "function", "function": {"name": "nowhere"}}
    request = EngineRequest(prompt=PROMPT, sampling=GREEDY, tools=TOOLS, tool_choice=named)
    (event,) = run(engine, request)
    assert isinstance(event, Rejected) and event.param == "tool_choice"


def test_reasoning_goes_apart_up_to_the_closing_tag(engine: Engine) -> None:
    """The tiny model writes no tags of its own: the prompt opens the block, and a word of its
    greedy answer stands for the closing tag."""
    prompt = PROMPTS[0] + " <think>"
    reference = text_of(run(engine, EngineRequest(prompt=prompt, sampling=GREEDY)))
    words = reference.split()
    if len(words) < 4:
        pytest.skip("the tiny model's answer is too short to split")
    closing = next(w for w in words[2:] if reference.count(w) == 1 and len(w) > 2)
    profile = engine.profile
    engine.use_profile(replace(profile, reasoning_tags=("<think>", closing)))
    try:
        events = run(engine, EngineRequest(prompt=prompt, sampling=GREEDY, separate_reasoning=True))
    finally:
        engine.use_profile(profile)
    thinking = "".join(e.text for e in events if isinstance(e, ThinkingPiece))
    answer = text_of(events)
    assert thinking.strip() and closing not in thinking and closing not in answer
    at = reference.index(closing)
    assert reference[:at].strip() == thinking.strip()
    assert reference[at + len(closing) :].strip() == answer.strip()
    tokens = sum(e.tokens for e in events if isinstance(e, TextPiece | ThinkingPiece))
    assert tokens == finished(events).usage.completion_tokens


def test_reasoning_stays_in_the_text_unless_asked_apart(engine: Engine) -> None:
    profile = engine.profile
    engine.use_profile(replace(profile, reasoning_tags=("<think>", "</think>")))
    try:
        events = run(engine, EngineRequest(prompt=PROMPT + " <think>", sampling=GREEDY))
    finally:
        engine.use_profile(profile)
    assert not any(isinstance(e, ThinkingPiece) for e in events) and text_of(events)


def test_a_request_cancelled_before_it_starts_sends_nothing(engine: Engine) -> None:
    cancel = Cancellation()
    cancel.cancel()
    handle = engine.submit(EngineRequest(prompt=PROMPT, sampling=GREEDY, cancel=cancel))
    assert list(handle) == []
    assert handle.wait(10) is None


def test_an_outside_check_cancels_a_request_as_it_leaves_the_queue(engine: Engine) -> None:
    cancel = Cancellation(check_at_start=lambda: True)
    assert list(engine.submit(EngineRequest(prompt=PROMPT, sampling=GREEDY, cancel=cancel))) == []


def test_cancelling_mid_answer_ends_it_at_the_next_token(engine: Engine) -> None:
    long = SamplingOptions(temperature=1.0, seed=3, max_tokens=400)
    handle = engine.submit(EngineRequest(prompt=PROMPT, sampling=long))
    events = []
    for event in handle:
        events.append(event)
        if len(events) == 3:
            handle.cancel()
    done = finished(events)
    assert done.finish_reason == "cancelled"
    assert done.usage.completion_tokens < 400


def test_a_listener_hears_the_events_on_the_engines_thread(engine: Engine) -> None:
    heard: list[tuple[EngineEvent, str]] = []

    def listen(event: EngineEvent) -> None:
        heard.append((event, threading.current_thread().name))

    handle = engine.submit(EngineRequest(prompt=PROMPT, sampling=GREEDY), listen)
    done = handle.wait(30)
    assert list(handle) == []  # the listener took them
    assert isinstance(done, Finished) and heard[-1][0] is done
    assert all(name.startswith("engine:") for _, name in heard)


def test_embeddings_give_one_vector_per_input(engine: Engine) -> None:
    request = EmbeddingRequest(("hello world", (1, 2, 3)))
    (event,) = list(engine.submit(request))
    assert isinstance(event, Embedded)
    assert len(event.vectors) == 2 and len(event.vectors[0]) == len(event.vectors[1]) > 0
    assert event.prompt_tokens > 0


def test_an_embedding_input_over_the_context_is_refused_when_not_truncated(
    engine: Engine,
) -> None:
    long = "hello world " * 3000
    (event,) = list(engine.submit(EmbeddingRequest((long,), truncate=False)))
    assert isinstance(event, Rejected) and event.code == "context_length_exceeded"


# On the batched engine only: several sequences in shared steps.


@pytest.fixture(scope="module")
def batched(tiny_gguf: Path) -> Iterator[BatchedEngine]:
    built = build(tiny_gguf, 4, n_ctx=2048)
    assert isinstance(built, BatchedEngine)
    yield built
    built.close()


def test_requests_submitted_together_decode_in_shared_steps_as_each_alone(
    batched: BatchedEngine,
) -> None:
    long = replace(GREEDY, max_tokens=120)
    alone = [text_of(run(batched, EngineRequest(prompt=p, sampling=long))) for p in PROMPTS]
    before = batched.stats.shared_steps
    handles = [batched.submit(EngineRequest(prompt=p, sampling=long)) for p in PROMPTS]
    together = [text_of(list(h)) for h in handles]
    assert together == alone
    assert batched.stats.shared_steps > before


def test_a_cancelled_sequence_leaves_between_its_prompts_pieces(batched: BatchedEngine) -> None:
    """A prompt several batches long is cut off after its first piece: the rest is never
    decoded."""
    stats = batched.stats
    n_batch = batched.stepper._n_batch
    # A fresh prompt (nothing of it cached), about two and a half batches long.
    counted = EngineRequest(prompt="herd of llama " * 10, count_tokens_only=True)
    per_phrase = finished(run(batched, counted)).usage.prompt_tokens / 10
    long = "herd of llama " * int(2.5 * n_batch / per_phrase)
    tokens_before, steps_before = stats.tokens, stats.steps

    class AfterOneStep(Cancellation):
        def cancelled(self) -> bool:
            return stats.steps > steps_before or super().cancelled()

    cancel = AfterOneStep()
    request = EngineRequest(prompt=long, sampling=replace(GREEDY, max_tokens=4), cancel=cancel)
    done = finished(list(batched.submit(request)))
    assert done.usage.prompt_tokens > 2 * n_batch
    assert done.finish_reason == "cancelled" and done.usage.completion_tokens == 0
    assert stats.tokens - tokens_before <= n_batch
