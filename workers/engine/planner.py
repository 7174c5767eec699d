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
2. waiting sequences take the free streams, interactive ones first, then in the order they came
   (the engine's lane and turn order), each the free stream that holds the longest start of its
   prompt, the least recently given out among equals (``Streams.best_for``), as long as the KV
   cells its prompt and ``max_tokens`` need are free (``CacheBudget``): the cache of streams
   nobody holds goes first, least recently given out first; the first sequence that does not
   fit waits, and every one after it;
3. a generating sequence ``LOOKAHEAD`` tokens ahead of its reader is held back: a slow reader
   skips steps instead of holding up the others; while an interactive sequence is in the step,
   so are the batch lines past the budget's ``batch_width`` (the latest admitted first);
4. the step: the next token of every generating sequence not held back, in slot order, then
   the prompts of the sequences in PROMPT, the earliest admitted first, in the room the step
   has left of ``n_batch`` tokens (the last prompt cut off there, to go on in the next step).
"""

from __future__ import annotations

import enum
import functools
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

    def __init__(self, prompt: list[int], max_tokens: int, interactive: bool = True) -> None:
        self.prompt = prompt
        self.max_tokens = max_tokens
        self.interactive = interactive  # a batch line's is False: it may not take every cell
        self.state = SequenceState.WAITING
        self.slot = -1  # its stream of the cache (its sequence id), from its admission on
        self.admitted = 0  # its admission's number: the lower, the earlier it came in
        self.fed = 0  # prompt tokens in its stream: found in the cache or decoded
        self.cached = 0  # of those, found in the cache: a shared start kept at its admission
        self.sampled = 0
        self.read = 0  # tokens its reader has taken

    @property
    def cells(self) -> int:
        """The KV cells it may come to hold: its prompt and every token it may sample."""
        return len(self.prompt) + self.max_tokens

    def __repr__(self) -> str:
        return f"<Sequence {self.state.name} slot={self.slot} fed={self.fed}>"


@dataclass(frozen=True)
class CacheBudget:
    """The KV cells of a model's cache (every sequence's together, one unified cache) and how
    many of them batch lines may be admitted to: the rest stays free for interactive requests,
    so that one starts at the next step however long the backlog."""

    cells: int
    batch_cells: int
    # The most batch lines a step carries while an interactive sequence is in it (0: no
    # limit): on the CPU a step's time grows with its width, and a chat's every token waits
    # for a whole step.
    batch_width: int = 0

    def limit(self, sequence: Sequence) -> int:
        return self.cells if sequence.interactive else self.batch_cells


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

    def shared(self, slot: int, prompt: list[int], emptied: Collection[int] = ()) -> int:
        """How many tokens stream ``slot`` holds of the start of ``prompt`` (none if its cache
        is ``emptied`` by the plan)."""
        if slot in emptied:
            return 0
        n = 0
        for a, b in zip(self.cached[slot], prompt, strict=False):
            if a != b:
                break
            n += 1
        return n

    def best_for(
        self, prompt: list[int], free: list[int], emptied: Collection[int] = ()
    ) -> Admission:
        """The free stream that holds the longest start of ``prompt`` (the least recently
        given out among equals) and how much of its cache to keep: at least the prompt's last
        token is decoded again, since its logits start the answer."""
        slot = max(free, key=lambda s: (self.shared(s, prompt, emptied), -self.last_used[s]))
        return Admission(slot, min(self.shared(slot, prompt, emptied), len(prompt) - 1))


@dataclass(frozen=True)
class Admission:
    slot: int
    keep: int  # cached tokens of the prompt's start kept instead of decoded; 0: start afresh


S = TypeVar("S", bound=Sequence)


@dataclass(frozen=True)
class StepPlan(Generic[S]):
    """What to do before and in the next step (see the module docstring)."""

    leave: list[S] = field(default_factory=list)  # closed: out before the step
    admit: list[tuple[S, Admission]] = field(default_factory=list)  # in admission order
    evict: list[int] = field(default_factory=list)  # idle streams whose cache makes room
    kind: StepKind | None = None  # None: nothing to decode until something changes
    # Generating sequences in slot order, then prompts in admission order: the batch's order.
    members: list[S] = field(default_factory=list)
    held: list[S] = field(default_factory=list)  # LOOKAHEAD tokens ahead of their readers


def plan_step(
    active: Mapping[int, S],
    waiting: list[S],
    closed: Collection[S],
    streams: Streams,
    n_batch: int,
    budget: CacheBudget | None = None,
) -> StepPlan[S]:
    """The plan for the next step, given the sequences holding a stream (``active``: slot to
    sequence), those waiting for one in arrival order, those their readers closed, the
    streams' caches, and the cache's ``budget`` of cells (None: a stream for each sequence is
    all it takes).

    A step carries every generating sequence's next token and as many prompt tokens as
    ``n_batch`` leaves room for, as llama-server's steps do. Each step has a cost of its own
    (the weights read once more, llama.cpp's threads started and joined), which a prompt
    decoded by itself would add to the generating sequences' wait, and which prompts decoded
    one a step would charge 32 requests arriving at once 32 times: measured against one prompt
    a step, 32 clients asking for one token each got 26 to 31 requests/s instead of 19. A long
    prompt goes in ``n_batch``-sized pieces, and every piece's step still carries the others'
    next tokens. Over one unified cache the sequences' order in a step costs nothing (over
    split streams llama.cpp cuts a step into micro-batches of consecutive sequence ids);
    generating sequences go in slot order all the same.

    bench/RESULTS.md has the other schedules measured against this one."""
    leave: list[S] = []
    if closed:
        leave = [s for s in active.values() if s in closed] + [s for s in waiting if s in closed]
    staying = [s for s in active.values() if s not in leave] if leave else list(active.values())

    admit: list[tuple[S, Admission]] = []
    evict: list[int] = []
    if waiting:
        candidates = [s for s in waiting if s not in leave] if leave else waiting
        admit, evict = _admissions(candidates, staying, streams, budget)

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

    if budget is not None and budget.batch_width:
        generating, aside = _beside_interactive(generating, prompting, admit, budget.batch_width)
        held += aside
    plan = functools.partial(StepPlan[S], leave=leave, admit=admit, evict=evict, held=held)
    generating.sort(key=lambda sequence: sequence.slot)
    # The earliest admitted first: sequences are admitted in lane and turn order, and one
    # admitted now came after every one already in.
    prompts = [(s, len(s.prompt) - s.fed) for s in sorted(prompting, key=lambda s: s.admitted)]
    prompts += [(s, len(s.prompt) - admission.keep) for s, admission in admit]
    fed = _packed(prompts, n_batch - len(generating))
    if generating:
        return plan(kind="generate", members=generating + fed)
    if fed:
        return plan(kind="prompt", members=fed)
    return plan()


def _beside_interactive(
    generating: list[S], prompting: list[S], admit: list[tuple[S, Admission]], width: int
) -> tuple[list[S], list[S]]:
    """The generating sequences a step carries when interactive ones are in it (every
    interactive one, and the ``width`` batch lines admitted first), and those it holds back."""
    joining = prompting + [s for s, _ in admit]
    if not any(s.interactive for s in generating + joining):
        return generating, []
    lines = sorted((s for s in generating if not s.interactive), key=lambda s: s.admitted)
    aside = set(lines[max(0, width - sum(1 for s in joining if not s.interactive)) :])
    return [s for s in generating if s not in aside], [s for s in generating if s in aside]


def _packed(prompts: list[tuple[S, int]], n_batch: int) -> list[S]:
    """The sequences whose prompt tokens (each with the count it has left) go in one step of
    ``n_batch`` tokens, in the order given: the last may have more than the step holds."""
    members: list[S] = []
    room = n_batch
    for sequence, left in prompts:
        if room <= 0:
            break
        members.append(sequence)
        room -= left
    return members


def _admissions(
    waiting: list[S], staying: list[S], streams: Streams, budget: CacheBudget | None
) -> tuple[list[tuple[S, Admission]], list[int]]:
    """Which waiting sequences take a free stream now (interactive ones first, then in the
    order they came, until one does not fit), and which idle streams lose their cache to make
    room for them."""
    taken = {s.slot for s in staying}
    free = [slot for slot in range(len(streams.cached)) if slot not in taken]
    # Cells spoken for: the whole of what each sequence holding a stream may come to hold,
    # and what each idle stream keeps for a sequence that starts the same way.
    committed = sum(s.cells for s in staying)
    kept = {slot: len(streams.cached[slot]) for slot in free}
    admit: list[tuple[S, Admission]] = []
    evict: list[int] = []
    for sequence in sorted(waiting, key=lambda s: not s.interactive):
        if not free:
            break
        admission = streams.best_for(sequence.prompt, free, evict)
        if budget is not None:
            room = _make_room(sequence, admission.slot, committed, kept, streams, budget)
            if room is None:
                break
            for slot in room:
                kept[slot] = 0
            evict.extend(room)
        free.remove(admission.slot)
        del kept[admission.slot]
        committed += sequence.cells
        admit.append((sequence, admission))
    return admit, evict


def _make_room(
    sequence: Sequence,
    slot: int,
    committed: int,
    kept: dict[int, int],
    streams: Streams,
    budget: CacheBudget,
) -> list[int] | None:
    """The idle streams (least recently given out first) whose cache must go for ``sequence``
    to fit in ``slot``; None when it does not fit even then."""
    # The stream it takes gives up what it kept: the part of it the sequence keeps is in its
    # own count.
    total = committed + sum(kept.values()) - kept[slot] + sequence.cells
    limit = budget.limit(sequence)
    others = sorted(
        (s for s, n in kept.items() if n and s != slot), key=streams.last_used.__getitem__
    )
    room: list[int] = []
    while total > limit and others:
        victim = others.pop(0)
        total -= kept[victim]
        room.append(victim)
    return room if total <= limit else None
