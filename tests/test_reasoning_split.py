"""``workers.engine.reasoning``: reasoning told apart from the answer as the text streams, in
pieces of any size, with no tag ever reaching either side."""

from __future__ import annotations

from typing import Any

import pytest

from models_app.capabilities import derive_capabilities, reasoning_tags
from workers.broker.wire import Delta
from workers.engine.logprobs import LogprobEntry
from workers.engine.reasoning import ReasoningSplitter, ReasoningStream


def split(text: str, *, inside: bool = False, step: int = 1) -> tuple[str, str]:
    """(reasoning, answer) of ``text`` fed ``step`` characters at a time."""
    splitter = ReasoningSplitter("<think>", "</think>", inside=inside)
    pieces = []
    for start in range(0, len(text), step):
        pieces += splitter.feed(text[start : start + step])
    pieces += splitter.finish()
    reasoning = "".join(t for is_reasoning, t in pieces if is_reasoning)
    answer = "".join(t for is_reasoning, t in pieces if not is_reasoning)
    return reasoning, answer


@pytest.mark.parametrize("step", [1, 2, 3, 7, 1000])
@pytest.mark.parametrize(
    ("text", "inside", "expected"),
    [
        ("<think>\nLet me see.\n</think>\n\nIt is 4.", False, ("Let me see.", "It is 4.")),
        ("\n<think>a</think>b", False, ("a", "b")),
        ("Let me see.\n</think>\n\nIt is 4.", True, ("Let me see.", "It is 4.")),
        ("It is 4.", False, ("", "It is 4.")),
        ("  It is 4.", False, ("", "  It is 4.")),  # no block: the text as written
        # The answer has begun: an opening tag is the model's text.
        ("Tags like <think> are markup.", False, ("", "Tags like <think> are markup.")),
        ("<think></think>It is 4.", False, ("", "It is 4.")),
        # Cut off while reasoning: what was written of it, without a half tag.
        ("<think>still going", False, ("still going", "")),
        ("still going </thi", True, ("still going </thi", "")),
        ("<thi", False, ("", "<thi")),  # never became a tag
        ("a < b </think> c < d", True, ("a < b", "c < d")),
    ],
)
def test_reasoning_and_answer_come_apart(
    text: str, inside: bool, expected: tuple[str, str], step: int
) -> None:
    assert split(text, inside=inside, step=step) == expected


def test_reasoning_streams_before_its_block_closes() -> None:
    splitter = ReasoningSplitter("<think>", "</think>", inside=False)
    assert splitter.feed("<think>First") == [(True, "First")]
    assert splitter.feed(" step, then ") == [(True, " step, then")]  # trailing space held
    assert splitter.feed("done</") == [(True, " done")]
    assert splitter.feed("think>\n\nYes") == [(False, "Yes")]


@pytest.mark.parametrize(
    ("prompt_end", "generated", "expected"),
    [
        ("<|assistant|>\n<think>\n", "Hm.</think> Yes", ("Hm.", "Yes")),  # opened for it
        ("<|assistant|>\n<think></think>\n", " Yes", ("", "Yes")),  # written whole
        ("<|assistant|>\n", " Yes", ("", " Yes")),
    ],
)
def test_the_prompts_end_says_where_the_model_starts(
    prompt_end: str, generated: str, expected: tuple[str, str]
) -> None:
    splitter = ReasoningSplitter.after_prompt(prompt_end, "<think>", "</think>")
    pieces = splitter.feed(generated) + splitter.finish()
    reasoning = "".join(t for is_reasoning, t in pieces if is_reasoning)
    assert (reasoning, "".join(t for is_reasoning, t in pieces if not is_reasoning)) == expected


def test_held_tokens_and_logprobs_go_with_the_next_piece_out() -> None:
    sent: list[tuple[str, str, int, Any]] = []

    def to(side: str) -> Any:
        def emit(text: str, tokens: int, logprobs: Any) -> bool:
            sent.append((side, text, tokens, logprobs))
            return True

        return emit

    stream = ReasoningStream(
        ReasoningSplitter("<think>", "</think>", inside=False), to("think"), to("answer")
    )
    stream.emit("<think>", 1, [_entry("<think>")])  # all held: a tag
    stream.emit("Hm", 1, [_entry("Hm")])
    stream.emit("</think>", 1, [_entry("</think>")])
    stream.emit("Yes", 1, [_entry("Yes")])
    stream.finish()
    assert sent == [
        ("think", "Hm", 2, [_entry("<think>"), _entry("Hm")]),
        ("answer", "Yes", 2, [_entry("</think>"), _entry("Yes")]),
    ]


def _entry(token: str) -> LogprobEntry:
    return LogprobEntry(token=token, logprob=0.0, bytes=list(token.encode()), top_logprobs=[])


@pytest.mark.parametrize(
    ("template", "setting", "expected"),
    [
        ("{{ '<think>' }}...{{ '</think>' }}", "", ("<think>", "</think>")),
        ("<seed:think></seed:think>", "", ("<seed:think>", "</seed:think>")),
        ("{% if enable_thinking %}{% endif %}", "", ("<think>", "</think>")),
        ("<|assistant|>", "", None),
        ("<|assistant|>", "[THINK] [/THINK]", ("[THINK]", "[/THINK]")),  # set on the record
        ("<think></think>", "none", None),
    ],
)
def test_the_tags_come_from_the_record_or_the_template(
    template: str, setting: str, expected: tuple[str, str] | None
) -> None:
    assert reasoning_tags(template, setting) == expected
    thinks = "thinking" in derive_capabilities("llama", {}, template, setting)
    assert thinks == (expected is not None)


def test_a_reasoning_tags_setting_is_two_tags() -> None:
    from django.core.exceptions import ValidationError

    from models_app.capabilities import validate_reasoning_tags

    for bad in ("<think>", "<think> <think>", "a b c"):
        with pytest.raises(ValidationError):
            validate_reasoning_tags(bad)
    validate_reasoning_tags("<think> </think>")
    validate_reasoning_tags("none")
    validate_reasoning_tags("")


def test_reasoning_and_answer_deltas_never_merge() -> None:
    """Each delta counts the tokens of one side, which a usage's reasoning tokens sum."""
    thought, more, answer = Delta("", 2, thinking="Hm"), Delta("", 1, thinking="."), Delta("Y", 1)
    assert thought.merged(more) == Delta("", 3, thinking="Hm.")
    assert thought.merged(answer) is None
    assert answer.merged(thought) is None
    assert answer.merged(Delta("es", 1)) == Delta("Yes", 2)
