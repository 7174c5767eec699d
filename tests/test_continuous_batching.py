"""A batched engine decodes several sequences of one model in the same steps, and each of them
comes out exactly as it would alone (``workers.engine.batched``, ``workers.engine.stepper``)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import llama_cpp
import pytest

from tests.waiting import wait_until
from workers.broker.wire import ModelSpec
from workers.engine import jobs
from workers.engine.batched import BatchedEngine
from workers.engine.generation import (
    GenerationResult,
    SamplingOptions,
    run_generation,
    tokenize_prompt,
)
from workers.engine.jobs import BATCH, INTERACTIVE, Engine, EngineJob, JobQueue, SerialEngine
from workers.engine.logprobs import LogprobEntry
from workers.engine.slots import Slot
from workers.worker.residency import (
    DEFAULT_CACHE_SEQUENCES,
    DEFAULT_PARALLEL,
    Residency,
    kv_cache_bytes,
)

# Real engines on the test models, several seconds each: not for the quick loop.
pytestmark = pytest.mark.live

PROMPTS = ["hello world the", "a model is", "yes no true false answer", "herd llama token of"]
SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "boolean"}, "count": {"type": "integer"}},
    "required": ["answer", "count"],
}


def make_llama(path: Path, n_ctx: int = 512) -> llama_cpp.Llama:
    # Flash attention, as a batched engine's context has it on the CPU: the serial reference
    # then computes attention the same way.
    return llama_cpp.Llama(str(path), n_ctx=n_ctx, n_threads=1, flash_attn=True, verbose=False)


@pytest.fixture
def batched(tiny_gguf: Path) -> Iterator[BatchedEngine]:
    engine = BatchedEngine("tiny", make_llama(tiny_gguf), parallel=4)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def serial(tiny_gguf: Path) -> Iterator[SerialEngine]:
    """llama-cpp-python's own generate loop, one request at a time: the reference."""
    engine = SerialEngine("tiny-serial", make_llama(tiny_gguf))
    yield engine
    engine.close()


@dataclass
class Outcome:
    result: GenerationResult
    pieces: list[str] = field(default_factory=list)
    logprobs: list[LogprobEntry] = field(default_factory=list)
    slot: int | None = None

    @property
    def text(self) -> str:
        return "".join(self.pieces)


def generation(
    prompt: str,
    *,
    before: Callable[[], object] | None = None,
    on_piece: Callable[[int], bool] | None = None,
    **options: Any,
) -> tuple[Callable[[Slot], Outcome], Outcome]:
    """A job as the engine's ``serve_generation`` runs one: tokenize, then run_generation.
    ``on_piece`` gets the number of pieces so far and returns False to cancel."""
    outcome = Outcome(GenerationResult("", 0, 0))

    def emit(text: str, _tokens: int, logprobs: list[LogprobEntry] | None) -> bool:
        outcome.pieces.append(text)
        outcome.logprobs.extend(logprobs or [])
        return on_piece(len(outcome.pieces)) if on_piece is not None else True

    def run(slot: Slot) -> Outcome:
        outcome.slot = slot.index
        if before is not None:
            before()
        tokens = tokenize_prompt(slot.llama, prompt)
        outcome.result = run_generation(slot, tokens, SamplingOptions(**options), emit)
        return outcome

    return run, outcome


def alone(engine: Engine, prompt: str, **options: Any) -> Outcome:
    run, _ = generation(prompt, **options)
    outcome: Outcome = engine.run_on_slot(run).wait()
    return outcome


def together(engine: BatchedEngine, requests: list[tuple[str, dict[str, Any]]]) -> list[Outcome]:
    """Run the requests at once: each waits for all the others to have a slot first."""
    barrier = threading.Barrier(len(requests))
    jobs = []
    for prompt, options in requests:
        run, _ = generation(prompt, before=lambda: barrier.wait(10), **options)
        jobs.append(engine.run_on_slot(run))
    return [job.wait() for job in jobs]


GREEDY: dict[str, Any] = {"temperature": 0.0, "max_tokens": 60}


def test_greedy_sequences_in_shared_steps_equal_each_one_alone(slow_gguf: Path) -> None:
    """On the larger test model: a step takes long enough that the four surely overlap."""
    serial = SerialEngine("slow-serial", make_llama(slow_gguf))
    batched = BatchedEngine("slow", make_llama(slow_gguf), parallel=4)
    try:
        references = [alone(serial, p, **GREEDY) for p in PROMPTS]
        by_themselves = [alone(batched, p, **GREEDY) for p in PROMPTS]
        assert batched.stats.max_sequences == 1
        shared = together(batched, [(p, GREEDY) for p in PROMPTS])
    finally:
        serial.close()
        batched.close()

    for reference, single, joint in zip(references, by_themselves, shared, strict=True):
        assert reference.result.completion_tokens >= 20  # long enough to mean something
        assert single.text == reference.text
        assert joint.text == reference.text
        assert joint.result.finish_reason == reference.result.finish_reason
        assert joint.result.completion_tokens == reference.result.completion_tokens
    assert batched.stats.max_sequences == len(PROMPTS)
    assert batched.stats.shared_steps >= 20


def test_a_sequence_joining_mid_generation_equals_itself_alone(
    batched: BatchedEngine, serial: SerialEngine
) -> None:
    """The newcomer's prompt is decoded between the others' steps, which then carry its
    tokens too."""
    long: dict[str, Any] = {"temperature": 0.0, "max_tokens": 200}
    references = [alone(serial, p, **long) for p in PROMPTS[:3]]
    started = threading.Event()

    def note_tenth(n: int) -> bool:
        if n >= 10:
            started.set()
        return True

    first, _ = generation(PROMPTS[0], on_piece=note_tenth, **long)
    second, _ = generation(PROMPTS[1], **long)
    jobs = [batched.run_on_slot(first), batched.run_on_slot(second)]
    assert started.wait(10)
    late, _ = generation(PROMPTS[2], **long)
    jobs.append(batched.run_on_slot(late))
    outcomes = [job.wait() for job in jobs]

    for reference, outcome in zip(references, outcomes, strict=True):
        assert outcome.text == reference.text
    assert batched.stats.max_sequences >= 2


def test_each_sequence_keeps_its_own_stop_limit_and_grammar(
    batched: BatchedEngine, serial: SerialEngine
) -> None:
    plain = alone(serial, PROMPTS[0], **GREEDY)
    # A stop string from the middle of the answer, found nowhere before that.
    cut = next(i for i in range(10, 40) if plain.text.find(plain.text[i : i + 4]) == i)
    stop = plain.text[cut : cut + 4]
    json_format = {"type": "json_schema", "schema": SCHEMA}
    structured = alone(serial, PROMPTS[2], temperature=0.0, response_format=json_format)

    stopped, limited, shaped, free = together(
        batched,
        [
            (PROMPTS[0], {**GREEDY, "stop": (stop,)}),
            (PROMPTS[1], {**GREEDY, "max_tokens": 5}),
            (PROMPTS[2], {"temperature": 0.0, "response_format": json_format}),
            (PROMPTS[0], GREEDY),
        ],
    )

    assert (stopped.text, stopped.result.finish_reason) == (plain.text[:cut], "stop")
    limited_alone = alone(serial, PROMPTS[1], **{**GREEDY, "max_tokens": 5})
    assert (limited.result.completion_tokens, limited.result.finish_reason) == (5, "length")
    assert limited.text == limited_alone.text
    answer = json.loads(shaped.text)
    assert isinstance(answer["answer"], bool) and isinstance(answer["count"], int)
    assert shaped.text == structured.text
    assert shaped.result.finish_reason == "stop"
    # The grammar constrained its own sequence only.
    assert free.text == plain.text


def test_seeded_sampling_and_logprobs_are_per_sequence(
    batched: BatchedEngine, serial: SerialEngine
) -> None:
    sampled: dict[str, Any] = {"temperature": 0.9, "max_tokens": 40, "seed": 7}
    with_logprobs = {**GREEDY, "max_tokens": 12, "logprobs": True, "top_logprobs": 3}
    seeded_alone = alone(serial, PROMPTS[1], **sampled)
    logprobs_alone = alone(serial, PROMPTS[3], **with_logprobs)

    first, second, other, scored = together(
        batched,
        [
            (PROMPTS[1], sampled),
            (PROMPTS[1], sampled),
            (PROMPTS[1], {**sampled, "seed": 8}),
            (PROMPTS[3], with_logprobs),
        ],
    )

    assert first.text == second.text == seeded_alone.text
    assert other.text != first.text
    assert len(scored.logprobs) == scored.result.completion_tokens == 12
    # Same tokens and top lists; the values only to float precision: llama.cpp multiplies a
    # one-token batch with a different F32 kernel than a batch of several (llamafile's sgemm
    # takes batches of two or more), and flash attention sums in half precision, which moves
    # a logprob in its sixth digit.
    assert _tokens(scored.logprobs) == _tokens(logprobs_alone.logprobs)
    assert _values(scored.logprobs) == pytest.approx(_values(logprobs_alone.logprobs), abs=1e-4)


def _tokens(entries: list[LogprobEntry]) -> list[list[str]]:
    return [[e["token"], *(t["token"] for t in e["top_logprobs"])] for e in entries]


def _values(entries: list[LogprobEntry]) -> list[float]:
    return [v for e in entries for v in (e["logprob"], *(t["logprob"] for t in e["top_logprobs"]))]


def test_a_cancelled_sequence_frees_its_slot_at_once(tiny_gguf: Path) -> None:
    engine = BatchedEngine("tiny", make_llama(tiny_gguf, n_ctx=1024), parallel=3)
    release = threading.Event()
    long: dict[str, Any] = {"temperature": 0.0, "max_tokens": 300}
    try:
        references = [alone(engine, p, **long) for p in PROMPTS[:2]]
        # Two sequences whose readers stall until released: they cannot finish meanwhile.
        held = [generation(p, on_piece=lambda _n: release.wait(30), **long) for p in PROMPTS[:2]]
        held_jobs = [engine.run_on_slot(run) for run, _ in held]
        cancelled_run, cancelled = generation(PROMPTS[2], on_piece=lambda n: n < 3, **long)
        cancelled_job = engine.run_on_slot(cancelled_run)
        # Every slot is taken: this one waits for the cancelled sequence's slot.
        waiting_run, waiting = generation(PROMPTS[3], **{**GREEDY, "max_tokens": 8})
        waiting_job = engine.run_on_slot(waiting_run, lane=INTERACTIVE)

        cancelled_job.wait()
        assert cancelled.result.finish_reason == "cancelled"
        assert 3 <= cancelled.result.completion_tokens < 10
        waiting_job.wait()  # ran while the held sequences still hold their slots
        assert not any(job.done.is_set() for job in held_jobs)
        assert waiting.slot == cancelled.slot
        assert waiting.result.completion_tokens == 8
        # The waiting sequence's stream is free again as soon as it is done; the held two
        # keep theirs.
        wait_until(lambda: engine.stepper.active() == 2, 5, "only the held two hold a stream")
    finally:
        release.set()
    try:
        for (_run, outcome), reference in zip(held, references, strict=True):
            held_jobs.pop(0).wait()
            assert outcome.text == reference.text
    finally:
        engine.close()


def test_a_ninth_short_request_starts_before_eight_long_ones_end(tiny_gguf: Path) -> None:
    """Admission by KV cells, not by a count of fixed slots: a cache of two whole contexts
    (512 cells) holds eight long answers and a short one beside them, but not a ninth long
    one, which waits for a long one to end."""
    llama = make_llama(tiny_gguf, n_ctx=256)
    engine = BatchedEngine("tiny", llama, parallel=16, cache_sequences=2)
    release = threading.Event()
    long_prompt, short_prompt = PROMPTS[0], PROMPTS[1]
    # A long answer's prompt and max_tokens take 60 cells.
    long: dict[str, Any] = {
        "temperature": 0.0,
        "max_tokens": 60 - len(tokenize_prompt(llama, long_prompt)),
    }
    try:
        short_cells = len(tokenize_prompt(llama, short_prompt)) + 4
        # Eight fit, and the short one beside them; a ninth long one does not.
        assert 8 * 60 + short_cells <= engine.budget.cells < 9 * 60
        started = [threading.Event() for _ in range(8)]

        def held_until_released(i: int) -> Callable[[int], bool]:
            def on_piece(_n: int) -> bool:
                started[i].set()
                return release.wait(30)

            return on_piece

        held = [generation(long_prompt, on_piece=held_until_released(i), **long) for i in range(8)]
        held_jobs = [engine.run_on_slot(run) for run, _ in held]
        for event in started:
            assert event.wait(30), "a long answer never started"

        short = alone(engine, short_prompt, **{**GREEDY, "max_tokens": 4})
        assert short.result.completion_tokens == 4
        assert not any(job.done.is_set() for job in held_jobs)

        ninth_run, ninth = generation(long_prompt, **long)
        ninth_job = engine.run_on_slot(ninth_run)
        wait_until(lambda: engine.stepper.waiting() == 1, 10, "the ninth long one waiting")
        assert engine.stepper.active() == 8 and not ninth_job.done.is_set()
    finally:
        release.set()
    try:
        ninth_job.wait()
        assert ninth.result.completion_tokens > 0
        for job in held_jobs:
            job.wait()
    finally:
        engine.close()


def _holding(started: threading.Event, release: threading.Event) -> Callable[[Any], None]:
    def run(_llama: Any) -> None:
        started.set()
        release.wait(10)

    return run


def test_a_free_slot_goes_to_interactive_jobs_before_batch_lines(tiny_gguf: Path) -> None:
    engine = BatchedEngine("tiny", make_llama(tiny_gguf), parallel=3)
    hold, gate = threading.Event(), threading.Event()
    order: list[str] = []

    def note(name: str) -> Callable[[Slot], None]:
        return lambda _slot: order.append(name)

    try:
        # Every slot busy: two batch lines (one stays busy throughout, one frees once
        # everything is queued) and, in the slot kept for them, an interactive job.
        started = [threading.Event() for _ in range(3)]
        held = engine.run_on_slot(_holding(started[0], hold), lane=BATCH)
        assert started[0].wait(5)
        blocker = engine.run_on_slot(_holding(started[1], gate), lane=BATCH)
        assert started[1].wait(5)
        chat = engine.run_on_slot(_holding(started[2], hold), lane=INTERACTIVE)
        assert started[2].wait(5)
        jobs = [
            engine.run_on_slot(note("batch 1"), lane=BATCH),
            engine.run_on_slot(note("interactive 1"), lane=INTERACTIVE),
            engine.run_on_slot(note("batch 2"), lane=BATCH),
            engine.run_on_slot(note("interactive 2"), lane=INTERACTIVE),
        ]
        gate.set()
        for job in [blocker, *jobs]:
            job.wait()
        assert not held.done.is_set() and not chat.done.is_set()
    finally:
        hold.set()
        engine.close()
    assert order == ["interactive 1", "interactive 2", "batch 1", "batch 2"]


class WatchedCondition(threading.Condition):
    """A condition that calls ``on_wait`` (under its lock) whenever a thread waits on it."""

    def __init__(self, lock: Any, on_wait: Callable[[], None]) -> None:
        super().__init__(lock)
        self._on_wait = on_wait

    def wait(self, timeout: float | None = None) -> bool:
        self._on_wait()
        return super().wait(timeout)


class WatchedJobQueue(JobQueue):
    """A job queue that notes, whenever a taker waits (it found no job it may take), which
    thread it is and the jobs it left in the queue."""

    def __init__(self) -> None:
        super().__init__()
        self.passed_over: list[tuple[str, list[EngineJob]]] = []
        self.not_empty = WatchedCondition(self.mutex, self._note)

    def _note(self) -> None:
        self.passed_over.append((threading.current_thread().name, list(self.queue)))


def test_one_slot_is_kept_for_interactive_jobs_under_a_batch_backlog(
    tiny_gguf: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(jobs, "JobQueue", WatchedJobQueue)
    engine = BatchedEngine("tiny", make_llama(tiny_gguf), parallel=2)
    watched = engine._jobs
    assert isinstance(watched, WatchedJobQueue)
    hold = threading.Event()
    try:
        started = threading.Event()
        line = engine.run_on_slot(_holding(started, hold), lane=BATCH)
        assert started.wait(5)
        # The second line waits, though a slot is free: that slot is for interactive jobs.
        # Its taker (slot 0's thread) looks at the line and goes back to waiting.
        next_line_started = threading.Event()
        next_line = engine.run_on_slot(lambda _slot: next_line_started.set(), lane=BATCH)
        wait_until(
            lambda: any(
                thread == "engine:tiny:0" and any(job is next_line for job in left)
                for thread, left in list(watched.passed_over)
            ),
            timeout=5,
            what="the free slot passing the line over",
        )
        assert not next_line_started.is_set()
        chat = alone(engine, PROMPTS[0], **{**GREEDY, "max_tokens": 4})
        assert chat.result.completion_tokens == 4
        assert chat.slot == 0
        assert not line.done.is_set() and not next_line_started.is_set()
        hold.set()
        next_line.wait()
        assert next_line_started.is_set()
    finally:
        hold.set()
        engine.close()


def test_herd_parallel_picks_the_engine(tiny_gguf: Path, settings: Any) -> None:
    spec = ModelSpec(id=1, name="tiny", path=str(tiny_gguf), num_ctx=256)
    residency = Residency()
    settings.HERD_PARALLEL = 3
    resident = residency.get(spec)
    try:
        assert isinstance(resident.engine, BatchedEngine)
        assert resident.engine.parallel == 3
        # Each sequence gets the whole context asked for.
        assert resident.context_length == 256
    finally:
        residency.release(resident, 0)
    assert not residency.resident()

    settings.HERD_PARALLEL = 1
    resident = residency.get(spec)
    try:
        assert isinstance(resident.engine, SerialEngine)
        assert resident.context_length == 256
    finally:
        residency.release(resident, 0)


def test_by_default_a_model_runs_many_sequences_in_a_cache_of_a_few_contexts(
    tiny_gguf: Path, settings: Any
) -> None:
    spec = ModelSpec(id=1, name="tiny", path=str(tiny_gguf), num_ctx=256)
    settings.HERD_PARALLEL = 0
    residency = Residency()
    resident = residency.get(spec)
    try:
        engine = resident.engine
        assert isinstance(engine, BatchedEngine)
        assert engine.parallel == DEFAULT_PARALLEL["cpu"]
        # One sequence may still fill the whole context asked for.
        assert resident.context_length == 256
        assert engine.budget.cells == 256 * DEFAULT_CACHE_SEQUENCES["cpu"]
        # Batch lines leave one whole context to interactive requests.
        assert engine.budget.batch_cells == engine.budget.cells - 256
        assert resident.kv_bytes == kv_cache_bytes(
            str(tiny_gguf), engine.budget.cells, engine.parallel
        )
    finally:
        residency.release(resident, 0)


def test_a_prompt_that_starts_like_a_cached_one_decodes_only_the_rest(tiny_gguf: Path) -> None:
    engine = BatchedEngine("tiny", make_llama(tiny_gguf), parallel=2)
    fresh = BatchedEngine("tiny-fresh", make_llama(tiny_gguf), parallel=2)
    try:
        first = alone(engine, PROMPTS[0], **GREEDY)
        assert engine.stats.reused_tokens == 0
        # The same prompt again: everything but its last token is in a stream already.
        again = alone(engine, PROMPTS[0], **GREEDY)
        assert again.text == first.text
        prompt_tokens = first.result.prompt_tokens
        assert engine.stats.reused_tokens == prompt_tokens - 1
        # A follow-up that carries the first exchange: its start comes from the cache, and the
        # answer is the one a cold cache gives.
        follow_up = PROMPTS[0] + first.text + " and then"
        reused_before = engine.stats.reused_tokens
        warm = alone(engine, follow_up, **GREEDY)
        assert engine.stats.reused_tokens - reused_before >= prompt_tokens
        cold = alone(fresh, follow_up, **GREEDY)
        assert fresh.stats.reused_tokens == 0
        assert warm.text == cold.text
    finally:
        engine.close()
        fresh.close()


def test_a_long_prompt_goes_in_n_batch_pieces_beside_the_generating_sequences(
    tiny_gguf: Path,
) -> None:
    """A prompt two and a half batches long is decoded in steps of n_batch tokens that carry
    the two generating sequences' next tokens too: they never wait for the prompt."""
    engine = BatchedEngine("tiny", make_llama(tiny_gguf, n_ctx=2048), parallel=3)
    n_batch = int(llama_cpp.llama_n_batch(engine.llama._ctx.ctx))
    per_phrase = len(tokenize_prompt(engine.llama, "hello world " * 10)) / 10
    long_prompt = "hello world " * int(2.5 * n_batch / per_phrase)  # two and a half batches
    started = threading.Barrier(3)
    done = threading.Event()

    def on_piece(n: int) -> bool:
        if n == 3:
            started.wait(10)
        return not done.is_set()  # then cancelled: the steps after the late one stay few

    # Sampled (a greedy answer of the tiny model ends early) with a seed of its own: without
    # one llama.cpp picks a random seed, and an answer that drew its end before its third
    # piece left the barrier waiting.
    sampled: dict[str, Any] = {"temperature": -1.0, "seed": 7, "max_tokens": 1500}
    try:
        generating = [
            engine.run_on_slot(generation(p, on_piece=on_piece, **sampled)[0]) for p in PROMPTS[:2]
        ]
        started.wait(10)  # both are generating
        steps_before = engine.stats.steps
        late = engine.run_on_slot(generation(long_prompt, temperature=0.0, max_tokens=1)[0]).wait()
        done.set()
        for job in generating:
            job.wait()
    finally:
        engine.close()

    prompt_tokens = late.result.prompt_tokens
    assert prompt_tokens > 2 * n_batch
    steps = list(engine.stats.recent)[-(engine.stats.steps - steps_before) :]
    # Every step carried the others' tokens; those with more carried the prompt.
    assert {kind for kind, _ in steps} == {"generate"}
    with_prompt = [n for _, n in steps if n > 2]
    assert len(with_prompt) == -(-prompt_tokens // (n_batch - 2))
    assert all(n == n_batch for n in with_prompt[:-1])
    assert sum(with_prompt) == prompt_tokens + 2 * len(with_prompt)
