"""A reasoning model's thinking, told apart from its answer as the text streams.

A model that reasons writes its reasoning between two tags (``<think>`` ... ``</think>``, or
the pair its record names) before it answers. Some templates open the block in the prompt
(the model starts inside it), others leave the model to open it. ``ReasoningSplitter`` reads
the generated text piece by piece and says which part is reasoning and which is answer; text
that could be the start of a tag waits until it is known, so a tag never reaches either side.
The whitespace around the tags (the newlines models write after ``<think>`` and after
``</think>``) goes to neither.

An opening tag counts only before the answer has begun: a model that mentions ``<think>`` in
its answer keeps it there.
"""

from __future__ import annotations

from collections.abc import Callable

from workers.engine.logprobs import LogprobEntry

# (is_reasoning, text)
Piece = tuple[bool, str]


class ReasoningSplitter:
    def __init__(
        self, opening: str, closing: str, *, inside: bool, after_tag: bool = False
    ) -> None:
        self._opening = opening
        self._closing = closing
        self._inside = inside
        self._pending = ""
        self._answered = False  # the answer has begun: an opening tag is text from now on
        self._after_tag = inside or after_tag  # whitespace right after a tag goes nowhere

    @classmethod
    def after_prompt(cls, prompt_tail: str, opening: str, closing: str) -> ReasoningSplitter:
        """The splitter for a generation after a prompt ending in ``prompt_tail``: inside the
        block when the template opened it, right after it when the template wrote it whole
        (an empty one, for a request not to reason)."""
        tail = prompt_tail.rstrip()
        return cls(
            opening, closing, inside=tail.endswith(opening), after_tag=tail.endswith(closing)
        )

    def feed(self, text: str) -> list[Piece]:
        self._pending += text
        out: list[Piece] = []
        while self._pending:
            if self._inside:
                if not self._read_reasoning(out):
                    break
            elif not self._read_answer(out):
                break
        return out

    def finish(self) -> list[Piece]:
        """What is still held when the generation ends: a tag never completed is text."""
        rest, self._pending = self._pending, ""
        if self._inside:
            rest = rest.strip() if self._after_tag else rest.rstrip()
        elif self._after_tag:
            rest = rest.lstrip()
        return [(self._inside, rest)] if rest else []

    def _read_reasoning(self, out: list[Piece]) -> bool:
        """Move what is known of the reasoning to ``out``; False when the rest must wait."""
        if self._after_tag:
            self._pending = self._pending.lstrip()
            if not self._pending:
                return False
            self._after_tag = False
        end = self._pending.find(self._closing)
        if end >= 0:
            thought = self._pending[:end].rstrip()
            if thought:
                out.append((True, thought))
            self._pending = self._pending[end + len(self._closing) :]
            self._inside, self._after_tag = False, True
            return True
        # Hold a possible start of the closing tag, and the whitespace before it.
        held = _partial_suffix(self._pending, self._closing)
        ready = self._pending[: len(self._pending) - held]
        kept = ready.rstrip()
        if kept:
            out.append((True, kept))
        self._pending = ready[len(kept) :] + self._pending[len(ready) :]
        return False

    def _read_answer(self, out: list[Piece]) -> bool:
        if self._answered:
            out.append((False, self._pending))
            self._pending = ""
            return False
        stripped = self._pending.lstrip()
        if stripped.startswith(self._opening):
            self._pending = stripped[len(self._opening) :]
            self._inside, self._after_tag = True, True
            return True
        if not stripped or self._opening.startswith(stripped):
            return False  # only whitespace yet, or what may still become the opening tag
        self._answered = True
        if self._after_tag:
            self._pending, self._after_tag = stripped, False
        return True


def _partial_suffix(text: str, tag: str) -> int:
    """The length of the longest end of ``text`` that is a start of ``tag``."""
    for n in range(min(len(tag) - 1, len(text)), 0, -1):
        if text.endswith(tag[:n]):
            return n
    return 0


# The generation's emit signature (workers.engine.generation.Emit).
TextEmit = Callable[[str, int, list[LogprobEntry] | None], bool]


class ReasoningStream:
    """An ``Emit`` that sends reasoning to ``think`` and the answer on to ``answer``. The
    tokens and logprobs of text held back go with the next piece that goes out."""

    def __init__(self, splitter: ReasoningSplitter, think: TextEmit, answer: TextEmit) -> None:
        self._splitter = splitter
        self._think = think
        self._answer = answer
        self._tokens = 0
        self._logprobs: list[LogprobEntry] | None = None

    def emit(self, text: str, tokens: int, logprobs: list[LogprobEntry] | None) -> bool:
        self._tokens += tokens
        if logprobs is not None:
            self._logprobs = [*(self._logprobs or []), *logprobs]
        return self._send(self._splitter.feed(text))

    def finish(self) -> bool:
        return self._send(self._splitter.finish())

    def _send(self, pieces: list[Piece]) -> bool:
        alive = True
        for is_reasoning, text in pieces:
            tokens, logprobs = self._tokens, self._logprobs
            self._tokens, self._logprobs = 0, None
            send = self._think if is_reasoning else self._answer
            alive = send(text, tokens, logprobs) and alive
        return alive
