"""What the batching step does next, decided from the sequences' states alone, without a model
(``workers.engine.planner``)."""

from __future__ import annotations

import copy

from workers.engine.planner import (
    LOOKAHEAD,
    Admission,
    CacheBudget,
    Sequence,
    SequenceState,
    StepPlan,
    Streams,
    plan_step,
)

N_BATCH = 512
WAITING = SequenceState.WAITING
PROMPT = SequenceState.PROMPT
GENERATING = SequenceState.GENERATING
FINISHED = SequenceState.FINISHED


def sequence(
    state: SequenceState = WAITING,
    slot: int = -1,
    *,
    prompt: list[int] | None = None,
    admitted: int = 0,
    fed: int | None = None,
    sampled: int = 0,
    read: int = 0,
    max_tokens: int = 100,
    interactive: bool = True,
) -> Sequence:
    """A sequence as the stepper leaves it in ``state``."""
    s = Sequence(prompt if prompt is not None else [1, 2, 3, 4], max_tokens, interactive)
    s.state = state
    s.slot = slot
    s.admitted = admitted
    if fed is not None:
        s.fed = fed
    elif state in (GENERATING, FINISHED):
        s.fed = len(s.prompt)
    if state in (GENERATING, FINISHED) and not sampled:
        sampled = 1
    s.sampled = sampled
    s.read = read
    return s


def active(*sequences: Sequence) -> dict[int, Sequence]:
    return {s.slot: s for s in sequences}


def plan(
    holding: dict[int, Sequence],
    waiting: list[Sequence] | None = None,
    closed: set[Sequence] | None = None,
    streams: Streams | None = None,
    slots: int = 4,
    budget: CacheBudget | None = None,
) -> StepPlan[Sequence]:
    streams = streams or Streams.empty(slots)
    return plan_step(holding, waiting or [], closed or set(), streams, N_BATCH, budget)


def test_nothing_to_do_plans_no_step() -> None:
    step = plan({})
    assert step.kind is None
    assert (step.leave, step.admit, step.members, step.held) == ([], [], [], [])


def test_every_generating_sequence_goes_into_one_step_in_slot_order() -> None:
    # Admitted in another order than their slots, and listed in that order.
    third = sequence(GENERATING, 2, admitted=1)
    first = sequence(GENERATING, 0, admitted=3)
    second = sequence(GENERATING, 1, admitted=2)
    step = plan({2: third, 0: first, 1: second})
    assert step.kind == "generate"
    assert step.members == [first, second, third]


def test_a_prompt_goes_in_the_generating_sequences_step_after_their_tokens() -> None:
    generating = [sequence(GENERATING, slot, admitted=slot + 1) for slot in (2, 0, 1)]
    prompting = sequence(PROMPT, 3, admitted=4, fed=0)
    step = plan(active(*generating, prompting))
    assert step.kind == "generate"
    assert step.members == [*sorted(generating, key=lambda s: s.slot), prompting]


def test_prompts_go_in_one_step_the_earliest_admitted_first_whatever_its_slot() -> None:
    later = sequence(PROMPT, 0, admitted=7, fed=0)
    earlier = sequence(PROMPT, 3, admitted=5, fed=2)
    step = plan(active(later, earlier))
    assert (step.kind, step.members) == ("prompt", [earlier, later])


def test_a_prompt_step_holds_as_many_prompts_as_n_batch_tokens_hold() -> None:
    # 200 + 250 tokens left leave 62 of the step's 512 for the third; the fourth waits.
    prompts = [
        sequence(PROMPT, slot, admitted=slot + 1, prompt=list(range(300)), fed=fed)
        for slot, fed in enumerate([100, 50, 0, 0])
    ]
    step = plan(active(*prompts))
    assert step.members == prompts[:3]
    # A generating sequence's token takes one of the step's tokens first.
    generating = sequence(GENERATING, 4, admitted=9)
    beside = plan(active(*prompts, generating), slots=5)
    assert (beside.kind, beside.members) == ("generate", [generating, *prompts[:3]])


def test_a_step_full_of_generating_tokens_leaves_the_prompts_for_the_next() -> None:
    generating = [sequence(GENERATING, slot, admitted=slot + 1) for slot in range(4)]
    prompting = sequence(PROMPT, 4, admitted=5, fed=0)
    holding = active(*generating, prompting)
    # A step of four tokens: the generating ones fill it.
    step = plan_step(holding, [], set(), Streams.empty(5), 4)
    assert step.members == generating
    assert plan_step(holding, [], set(), Streams.empty(5), 5).members == [*generating, prompting]


def test_newcomers_prompts_join_the_step_of_those_already_in() -> None:
    prompting = sequence(PROMPT, 0, admitted=3, prompt=list(range(500)), fed=0)
    streams = Streams(cached=[[], [1, 2, 3], []], last_used=[3, 2, 1], admissions=3)
    kept = sequence(prompt=[1, 2, 3, 4, 5, 6])  # three of its tokens are in stream 1
    too_many = sequence(prompt=[9] * 20)
    step = plan(active(prompting), [kept, too_many], streams=streams, slots=3)
    assert [s for s, _ in step.admit] == [kept, too_many]
    # 500 + 3 tokens: the step has room for the start of the second newcomer's prompt only.
    assert step.members == [prompting, kept, too_many]


def test_with_nothing_generating_a_long_prompt_goes_on_step_after_step() -> None:
    finished = sequence(FINISHED, 0, admitted=1)
    prompting = sequence(PROMPT, 1, admitted=2, prompt=list(range(2000)), fed=3 * N_BATCH)
    step = plan(active(finished, prompting))
    assert step.kind == "prompt"
    assert step.members == [prompting]


def test_a_sequence_lookahead_tokens_ahead_of_its_reader_is_held_back() -> None:
    behind = sequence(GENERATING, 0, sampled=LOOKAHEAD + 5, read=5)
    almost = sequence(GENERATING, 1, sampled=LOOKAHEAD + 4, read=5)
    step = plan(active(behind, almost))
    assert step.kind == "generate"
    assert step.members == [almost]
    assert step.held == [behind]


def test_when_every_reader_is_behind_there_is_no_step_until_one_reads() -> None:
    held = [sequence(GENERATING, slot, sampled=LOOKAHEAD, read=0) for slot in range(2)]
    step = plan(active(*held))
    assert step.kind is None
    assert step.held == held
    held[1].read = 1  # its reader took a token
    step = plan(active(*held))
    assert (step.kind, step.members, step.held) == ("generate", [held[1]], [held[0]])


def test_a_prompt_is_never_held_back_by_its_reader() -> None:
    prompting = sequence(PROMPT, 0, fed=0)
    assert plan(active(prompting)).members == [prompting]


def test_finished_sequences_keep_their_streams_but_take_no_step() -> None:
    finished = sequence(FINISHED, 0, admitted=1)
    generating = sequence(GENERATING, 1, admitted=2)
    waiting = sequence(prompt=[9, 9])
    step = plan(active(finished, generating), [waiting], slots=2)
    assert step.kind == "generate"
    assert step.members == [generating]
    assert step.admit == [] and step.leave == []


def test_closed_sequences_leave_and_their_stream_goes_to_a_waiting_one() -> None:
    finished = sequence(FINISHED, 0, admitted=1)
    generating = sequence(GENERATING, 1, admitted=2)
    waiting = sequence(prompt=[9, 9])
    step = plan(active(finished, generating), [waiting], closed={finished}, slots=2)
    assert step.leave == [finished]
    assert step.admit == [(waiting, Admission(slot=0, keep=0))]
    # The newcomer's prompt goes in this step, after the generating sequence's token.
    assert (step.kind, step.members) == ("generate", [generating, waiting])


def test_a_closed_generating_sequence_leaves_before_its_next_token() -> None:
    leaving = sequence(GENERATING, 0)
    staying = sequence(GENERATING, 1)
    step = plan(active(leaving, staying), closed={leaving})
    assert step.leave == [leaving]
    assert step.members == [staying]


def test_a_sequence_closed_while_waiting_leaves_without_a_stream() -> None:
    gone = sequence(prompt=[5])
    next_one = sequence(prompt=[6])
    step = plan({}, [gone, next_one], closed={gone}, slots=1)
    assert step.leave == [gone]
    assert step.admit == [(next_one, Admission(slot=0, keep=0))]


def test_a_sequence_closed_after_it_left_is_ignored() -> None:
    # Closed with nothing to decode: it never took a stream, and it is nowhere to leave from.
    never_queued = sequence(FINISHED)
    step = plan({}, [], closed={never_queued})
    assert (step.leave, step.kind) == ([], None)


def test_waiting_sequences_take_the_free_streams_in_the_order_they_came() -> None:
    holding = sequence(GENERATING, 1)
    waiting = [sequence(prompt=[10 + i]) for i in range(4)]
    step = plan(active(holding), waiting, slots=3)
    assert [s for s, _ in step.admit] == waiting[:2]  # two streams free: the rest wait
    assert sorted(a.slot for _, a in step.admit) == [0, 2]


def test_a_waiting_sequence_takes_the_stream_holding_the_longest_start_of_its_prompt() -> None:
    streams = Streams(cached=[[1, 2], [1, 2, 3, 4, 5], [7, 8, 9], [1]], last_used=[4, 1, 2, 3])
    newcomer = sequence(prompt=[1, 2, 3, 4, 6, 7])
    step = plan({}, [newcomer], streams=streams)
    assert step.admit == [(newcomer, Admission(slot=1, keep=4))]


def test_at_least_the_prompts_last_token_is_decoded_again() -> None:
    streams = Streams(cached=[[1, 2, 3, 4, 5]], last_used=[1])
    again = sequence(prompt=[1, 2, 3])
    step = plan({}, [again], streams=streams, slots=1)
    assert step.admit == [(again, Admission(slot=0, keep=2))]


def test_among_streams_sharing_as_much_the_least_recently_used_is_taken() -> None:
    streams = Streams(cached=[[5], [1, 9], [1, 8], [6]], last_used=[1, 7, 3, 2])
    newcomer = sequence(prompt=[1, 2, 3])
    step = plan({}, [newcomer], streams=streams)
    assert step.admit == [(newcomer, Admission(slot=2, keep=1))]
    unrelated = sequence(prompt=[4, 4])
    step = plan({}, [unrelated], streams=streams)
    assert step.admit == [(unrelated, Admission(slot=0, keep=0))]


def test_two_newcomers_in_one_plan_never_get_the_same_stream() -> None:
    streams = Streams(cached=[[1, 2, 3], []], last_used=[1, 0])
    both = [sequence(prompt=[1, 2, 3, 4]), sequence(prompt=[1, 2, 3, 5])]
    step = plan({}, both, streams=streams, slots=2)
    assert step.admit == [(both[0], Admission(0, 3)), (both[1], Admission(1, 0))]
    assert step.members == both


def test_a_prompt_already_in_goes_before_a_newcomers() -> None:
    prompting = sequence(PROMPT, 0, admitted=3, fed=0)
    newcomer = sequence(prompt=[7])
    step = plan(active(prompting), [newcomer])
    assert [s for s, _ in step.admit] == [newcomer]
    assert step.members == [prompting, newcomer]


def test_planning_changes_nothing_it_reads() -> None:
    holding = active(
        sequence(GENERATING, 0, admitted=1, sampled=LOOKAHEAD),
        sequence(PROMPT, 2, admitted=2, fed=1),
        sequence(FINISHED, 3, admitted=3),
    )
    waiting = [sequence(prompt=[1, 2]), sequence(prompt=[3])]
    closed = {holding[3], waiting[1]}
    streams = Streams(cached=[[1], [1, 2, 3], [], [4]], last_used=[1, 0, 2, 3], admissions=3)
    before = copy.deepcopy((holding, waiting, streams))
    states = [(s.state, s.slot, s.fed, s.sampled, s.read) for s in [*holding.values(), *waiting]]

    first = plan(holding, waiting, closed, streams)
    second = plan(holding, waiting, closed, streams)

    assert first == second
    assert states == [
        (s.state, s.slot, s.fed, s.sampled, s.read) for s in [*holding.values(), *waiting]
    ]
    assert list(holding) == list(before[0]) and len(waiting) == len(before[1])
    assert streams == before[2]
    assert closed == {holding[3], waiting[1]}


# Admission by the KV cells a sequence needs (its prompt and max_tokens), in one shared cache.


def test_a_sequence_waits_for_cells_with_a_stream_free() -> None:
    long = sequence(GENERATING, 0, prompt=[1] * 10, max_tokens=80)  # 90 cells
    newcomer = sequence(prompt=[2] * 10, max_tokens=20)  # 30 cells
    step = plan(active(long), [newcomer], budget=CacheBudget(cells=100, batch_cells=100))
    assert step.admit == []
    step = plan(active(long), [newcomer], budget=CacheBudget(cells=120, batch_cells=120))
    assert [s for s, _ in step.admit] == [newcomer]


def test_many_short_sequences_fit_where_the_cells_would_hold_few_long_ones() -> None:
    # A cache of two 2048-token contexts: nine short answers run at once.
    budget = CacheBudget(cells=2 * 2048, batch_cells=2048)
    short = [sequence(prompt=[i] * 20, max_tokens=64) for i in range(9)]
    step = plan({}, short, slots=16, budget=budget)
    assert [s for s, _ in step.admit] == short


def test_the_first_that_does_not_fit_waits_and_every_one_after_it() -> None:
    budget = CacheBudget(cells=100, batch_cells=100)
    waiting = [
        sequence(prompt=[1] * 10, max_tokens=40),
        sequence(prompt=[2] * 10, max_tokens=60),  # 70 more: does not fit after the first
        sequence(prompt=[3], max_tokens=1),  # would fit, but came later
    ]
    step = plan({}, waiting, budget=budget)
    assert [s for s, _ in step.admit] == waiting[:1]


def test_idle_streams_give_up_their_cache_least_recently_used_first() -> None:
    streams = Streams(cached=[[5] * 40, [6] * 40, [7] * 40, []], last_used=[3, 1, 2, 0])
    newcomer = sequence(prompt=[8] * 10, max_tokens=50)  # 60 cells of 100; 120 kept
    step = plan({}, [newcomer], streams=streams, budget=CacheBudget(100, 100))
    assert step.admit == [(newcomer, Admission(slot=3, keep=0))]
    assert step.evict == [1, 2]  # 40 left kept: the most recently used stream's


def test_the_stream_a_sequence_takes_gives_its_cells_to_it() -> None:
    # Its cached start is part of what it needs: nothing else is evicted.
    streams = Streams(cached=[[1, 2, 3, 4] + [9] * 36, [6] * 40], last_used=[1, 2])
    again = sequence(prompt=[1, 2, 3, 4, 5], max_tokens=55)
    step = plan({}, [again], streams=streams, slots=2, budget=CacheBudget(100, 100))
    assert (step.admit, step.evict) == ([(again, Admission(slot=0, keep=4))], [])


def test_an_evicted_stream_is_empty_for_the_next_newcomer_in_the_same_plan() -> None:
    streams = Streams(cached=[[1, 2, 3] * 10, []], last_used=[1, 0])
    first = sequence(prompt=[7] * 10, max_tokens=70)  # takes stream 1; stream 0 must go
    second = sequence(prompt=[1, 2, 3, 4], max_tokens=1)
    step = plan({}, [first, second], streams=streams, slots=2, budget=CacheBudget(100, 100))
    assert step.evict == [0]
    assert step.admit == [(first, Admission(1, 0)), (second, Admission(0, 0))]


def test_batch_lines_leave_the_kept_cells_to_interactive_requests() -> None:
    budget = CacheBudget(cells=100, batch_cells=60)
    running = sequence(GENERATING, 0, prompt=[1] * 10, max_tokens=40, interactive=False)
    line = sequence(prompt=[2] * 10, max_tokens=20, interactive=False)  # 80 > 60
    chat = sequence(prompt=[3] * 10, max_tokens=20)  # 80 <= 100
    assert plan(active(running), [line], budget=budget).admit == []
    step = plan(active(running), [line, chat], budget=budget)
    assert [s for s, _ in step.admit] == [chat]


def test_interactive_sequences_are_admitted_before_batch_lines_that_came_first() -> None:
    lines = [sequence(prompt=[i], interactive=False) for i in range(3)]
    chat = sequence(prompt=[9])
    step = plan({}, [*lines, chat], slots=2)
    assert [s for s, _ in step.admit] == [chat, lines[0]]


def test_beside_an_interactive_sequence_a_step_carries_the_earliest_batch_lines_only() -> None:
    budget = CacheBudget(cells=1000, batch_cells=1000, batch_width=2)
    lines = [
        sequence(GENERATING, slot, admitted=admitted, interactive=False)
        for slot, admitted in enumerate([4, 1, 3, 2])
    ]
    # Batch lines alone: every one of them.
    assert plan(active(*lines), budget=budget).members == lines
    chat = sequence(GENERATING, 4, admitted=5)
    step = plan(active(*lines, chat), slots=5, budget=budget)
    assert step.members == [lines[1], lines[3], chat]  # admitted 1 and 2, in slot order
    assert set(step.held) == {lines[0], lines[2]}
    # A chat still reading its prompt counts as well; a joining batch line takes a place.
    joining_line = sequence(PROMPT, 5, admitted=6, fed=0, interactive=False)
    prompting_chat = sequence(PROMPT, 4, admitted=5, fed=0)
    step = plan(active(*lines, prompting_chat, joining_line), slots=6, budget=budget)
    assert step.members == [lines[1], prompting_chat, joining_line]
