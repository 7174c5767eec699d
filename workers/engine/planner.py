"""What the next batching step does, decided apart from doing it: ``plan_step`` is a pure
function of the sequences' states; ``workers.engine.stepper`` runs the plan (the
``llama_decode`` call and the sampling) and moves each sequence on to its next state.

A sequence's life (``SequenceState``)::

    WAITING --a free stream of the cache--> PROMPT --its last prompt token decoded--+
                                                                                   |
                         +---------- its first token sampled <---------------------+
                         v
                    GENERATING --end of generation, max_tokens, a failed step--> FINISHED

Its reader may close it in any state: it then leaves before the next step (a stream it held
keeps its cache, for the next sequence that starts the same way). A FINISHED sequence keeps its
stream until it is closed.

What a plan decides, in this order:

1. closed sequences leave;
2. waiting sequences take the free streams in the order they came (the engine's lane and turn
   order), each the free stream that holds the longest start of its prompt, the least recently
   given out among equals (``Streams.best_for``);
3. a generating sequence ``LOOKAHEAD`` tokens ahead of its reader is held back: a slow reader
   skips steps instead of holding up the others;
4. the step: the prompt of the earliest admitted sequence in PROMPT by itself (as much of it as
   ``n_batch`` holds), unless ``n_batch`` prompt tokens went in a row since the last
   generation step and a sequence is generating; else the next token of every generating
   sequence not held back, in slot order.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

# Tokens a sequence may be sampled ahead of its reader. Past a stop string or a cancel they are
# wasted work; too few and a reader that loses the GIL for a moment misses steps.
LOOKAHEAD = 16

StepKind = Literal["prompt", "generate"]


class SequenceState(enum.Enum):
    WAITING = "waiting"  # queued for a free stream of the cache
    PROMPT = "prompt"  # holds a stream; prompt tokens left to decode
    GENERATING = "generating"  # its next token sampled, to decode in the next generation step
    FINISHED = "finished"  # nothing more to sample: end of generation, max_tokens or a failure


class Sequence:
    """What the planner reads of one sequence. The stepper's thread writes all of it but
    ``read``, which the reader's thread counts."""

    def __init__(self, prompt: list[int], max_tokens: int) -> None:
        self.prompt = prompt
        self.max_tokens = max_tokens
        self.state = SequenceState.WAITING
        self.slot = -1  # its stream of the cache (its sequence id), from its admission on
        self.admitted = 0  # its admission's number: the lower, the earlier it came in
        self.fed = 0  # prompt tokens in its stream: found in the cache or decoded
        self.cached = 0  # of those, found in the cache: a shared start kept at its admission
        self.sampled = 0
        self.read = 0  # tokens its reader has taken

    def __repr__(self) -> str:
        return f"<Sequence {self.state.name} slot={self.slot} fed={self.fed}>"


@dataclass
class Streams:
    """The streams of the KV cache: the tokens each holds, and when each was last given out
    (the number of the admission that took it)."""

    cached: list[list[int]]
    last_used: list[int]
    admissions: int = 0

    @classmethod
    def empty(cls, count: int) -> Streams:
        return cls([[] for _ in range(count)], [0] * count)

    def shared(self, slot: int, prompt: list[int]) -> int:
        """How many tokens stream ``slot`` holds of the start of ``prompt``."""
        n = 0
        for a, b in zip(self.cached[slot], prompt, strict=False):
            if a != b:
                break
            n += 1
        return n

    def best_for(self, prompt: list[int], free: list[int]) -> Admission:
        """The free stream that holds the longest start of ``prompt`` (the least recently
        given out among equals) and how much of its cache to keep: at least the prompt's last
        token is decoded again, since its logits start the answer."""
        slot = max(free, key=lambda s: (self.shared(s, prompt), -self.last_used[s]))
        return Admission(slot, min(self.shared(slot, prompt), len(prompt) - 1))


@dataclass(frozen=True)
class Admission:
    slot: int
    keep: int  # cached tokens of the prompt's start kept instead of decoded; 0: start afresh


S = TypeVar("S", bound=Sequence)


@dataclass(frozen=True)
class StepPlan(Generic[S]):
    """What to do before and in the next step (see the module docstring)."""

    leave: list[S] = field(default_factory=list)  # closed: out before the step
    admit: list[tuple[S, Admission]] = field(default_factory=list)  # in arrival order
    kind: StepKind | None = None  # None: nothing to decode until something changes
    members: list[S] = field(default_factory=list)  # one prompt, or in slot order
    held: list[S] = field(default_factory=list)  # LOOKAHEAD tokens ahead of their readers


def plan_step(
    active: Mapping[int, S],
    waiting: list[S],
    closed: Collection[S],
    streams: Streams,
    prompt_tokens_in_a_row: int,
    n_batch: int,
) -> StepPlan[S]:
    """The plan for the next step, given the sequences holding a stream (``active``: slot to
    sequence), those waiting for one in arrival order, those their readers closed, the
    streams' caches, and the prompt tokens decoded since the last generation step.

    Prompts go first, up to ``n_batch`` prompt tokens between two generation steps, so a
    stream of long prompts still leaves the others a step every ``n_batch`` tokens.
    Generation steps without a prompt in them are not cut into uneven micro-batches: with
    eight clients on two cores, about 8% more tokens/s than a prompt folded into each step,
    the 95th-percentile first token lower and the median a little higher. A prompt decoded by
    itself is decoded exactly as it would be alone; several prompts in one step (or a prompt
    ahead of another sequence's tokens) come out with different logits on quantized models,
    and made first tokens later when measured.

    bench/RESULTS.md has the other schedules measured against this one.

    The slot order of a generation step matters: llama.cpp cuts a batch over split streams
    into micro-batches of consecutive sequence ids, so eight sequences out of order cost up
    to eight decodes (measured on the demo model: 110 ms a step of eight, against 52 ms in
    order)."""
    leave: list[S] = []
    if closed:
        leave = [s for s in active.values() if s in closed] + [s for s in waiting if s in closed]
    staying = [s for s in active.values() if s not in leave] if leave else list(active.values())

    admit: list[tuple[S, Admission]] = []
    if waiting:
        taken = {s.slot for s in staying}
        free = [slot for slot in range(len(streams.cached)) if slot not in taken]
        for sequence in waiting:
            if not free:
                break
            if leave and sequence in leave:
                continue
            admission = streams.best_for(sequence.prompt, free)
            free.remove(admission.slot)
            admit.append((sequence, admission))

    prompting: list[S] = []
    generating: list[S] = []
    held: list[S] = []
    for sequence in staying:
        if sequence.state is SequenceState.PROMPT:
            prompting.append(sequence)
        elif sequence.state is SequenceState.GENERATING:
            if sequence.sampled - sequence.read < LOOKAHEAD:
                generating.append(sequence)
            else:
                held.append(sequence)

    if (prompting or admit) and (not generating or prompt_tokens_in_a_row < n_batch):
        # The prompt that came first: sequences are admitted in lane and turn order, and one
        # admitted now came after every one already in.
        first = min(prompting, key=lambda s: s.admitted) if prompting else admit[0][0]
        return StepPlan(leave, admit, "prompt", [first], held)
    if generating:
        generating.sort(key=lambda sequence: sequence.slot)
        return StepPlan(leave, admit, "generate", generating, held)
    return StepPlan(leave, admit, None, [], held)
