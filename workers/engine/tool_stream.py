"""A forced tool call read as it is generated, and a call cut short read for what it has.

A forced call (``tool_choice`` ``required`` or a named function) is grammar-bound to
``{"name": "<function>", "arguments": {...}}``, its name first
(``workers.engine.tools.call_schema``).
``ForcedCallStream`` turns its text into the tool-call deltas OpenAI streams: one with the
call's ``id`` and ``name`` as soon as the name is written, then the arguments' text as it
comes, without the wrapper around it. A call that ``max_tokens`` cut short still comes back as
a call, its arguments what had been written (``partial_call``), as OpenAI returns it.
"""

from __future__ import annotations

import itertools
import json
import re
import uuid
from typing import Any, NotRequired, TypedDict


class ParsedCall(TypedDict):
    """A call read from the model's text: its function, its arguments (a JSON object) and,
    for a call cut short, the text of its arguments as written (``partial``)."""

    id: str
    name: str
    arguments: dict[str, object]
    arguments_text: NotRequired[str]
    partial: NotRequired[bool]


# The wrapper up to the arguments' value, as llama.cpp's JSON grammar lets it be spaced.
_HEAD = re.compile(r'\s*\{\s*"name"\s*:\s*"((?:[^"\\]|\\.)*)"\s*,\s*"arguments"\s*:\s*')
_NAME = re.compile(r'"name"\s*:\s*"((?:[^"\\]|\\.)*)("?)')
_ARGUMENTS = re.compile(r'"arguments"\s*:\s*', re.S)


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


class JsonValueEnd:
    """Follows one JSON value through its text, piece by piece, to find where it ends."""

    def __init__(self) -> None:
        self.depth = 0
        self.in_string = False
        self.escaped = False
        self.started = False
        self.done = False

    def feed(self, text: str) -> int:
        """How much of ``text`` belongs to the value (all of it while the value is open)."""
        for index, char in enumerate(text):
            if self.done:
                return index
            if not self.started:
                if char.isspace():
                    continue
                self.started = True
            if self.in_string:
                if self.escaped:
                    self.escaped = False
                elif char == "\\":
                    self.escaped = True
                elif char == '"':
                    self.in_string = False
                    if self.depth == 0:
                        self.done = True
                        return index + 1
            elif char == '"':
                self.in_string = True
            elif char in "{[":
                self.depth += 1
            elif char in "}]":
                if self.depth == 0:
                    self.done = True  # a bare value, closed by its container
                    return index
                self.depth -= 1
                if self.depth == 0:
                    self.done = True
                    return index + 1
            elif char == "," and self.depth == 0:
                self.done = True
                return index
        return len(text)


class ForcedCallStream:
    """The one call of a forced answer, as deltas while it is written and whole at the end."""

    def __init__(self, names: list[str]) -> None:
        self._names = names
        self._head = ""
        self._arguments = ""
        self._value = JsonValueEnd()
        self.id = new_call_id()
        self.name: str | None = None

    def feed(self, text: str) -> list[dict[str, Any]]:
        """The deltas ``text`` adds: ``{"index", "id", "name", "arguments": ""}`` once the name
        is known, then ``{"index", "arguments": <fragment>}``."""
        if self.name is not None:
            return self._more_arguments(text)
        self._head += text
        head = _HEAD.match(self._head)
        if head is None:
            return []
        self.name = json.loads(f'"{head.group(1)}"')
        opening = {"index": 0, "id": self.id, "name": self.name, "arguments": ""}
        return [opening, *self._more_arguments(self._head[head.end() :])]

    def _more_arguments(self, text: str) -> list[dict[str, Any]]:
        if self._value.done:
            return []
        if not self._value.started:
            text = text.lstrip()
        piece = text[: self._value.feed(text)]
        self._arguments += piece
        return [{"index": 0, "arguments": piece}] if piece else []

    @property
    def text(self) -> str:
        return self._head if self.name is None else self._arguments

    def finish(self) -> ParsedCall | None:
        """The call: whole when its arguments closed, else what was written of it (marked
        ``partial``); None when not even the name was written."""
        if self.name is None:
            return partial_call(self._head, self._names, forced=True)
        if self._value.done:
            try:
                arguments = json.loads(self._arguments)
            except ValueError:
                arguments = None
            if isinstance(arguments, dict):
                return {"id": self.id, "name": self.name, "arguments": arguments}
        return {
            "id": self.id,
            "name": self.name,
            "arguments": close_partial_object(self._arguments),
            "arguments_text": self._arguments,
            "partial": True,
        }


def partial_call(text: str, names: list[str], *, forced: bool) -> ParsedCall | None:
    """The call that ``text`` (a wrapper ``{"name": ..., "arguments": ...}``, maybe inside
    ``<tool_call>``, cut short) had begun: its function, and the arguments written so far.
    A forced call always has one (the function whose name was begun, else the first); an
    offered one only when it names an offered function."""
    found = _NAME.search(text)
    name: str | None = None
    if found is not None:
        written = found.group(1)
        if found.group(2) and written in names:
            name = written
        elif not found.group(2):
            name = next((n for n in names if n.startswith(written)), None)
    if name is None:
        if not forced or not names:
            return None
        name = names[0]
    arguments_text = ""
    opened = _ARGUMENTS.search(text)
    if opened is not None:
        rest = text[opened.end() :]
        value = JsonValueEnd()
        arguments_text = rest[: value.feed(rest)]
    return {
        "id": new_call_id(),
        "name": name,
        "arguments": close_partial_object(arguments_text),
        "arguments_text": arguments_text,
        "partial": True,
    }


def close_partial_object(text: str) -> dict[str, Any]:
    """The object that the cut-short JSON ``text`` had begun, with what was written whole:
    open strings, arrays and objects closed, a key without its value dropped. ``{}`` when
    nothing of it can be read."""
    earlier = (
        i for i in range(len(text) - 1, 0, -1) if text[i] in ",{[" and _outside_string(text, i)
    )
    for cut in itertools.islice(itertools.chain([len(text)], earlier), 64):
        candidate = text[:cut].rstrip().rstrip(",")
        try:
            value = json.loads(candidate + _closers(candidate))
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return {}


def _outside_string(text: str, position: int) -> bool:
    in_string = escaped = False
    for char in text[:position]:
        if escaped:
            escaped = False
        elif char == "\\" and in_string:
            escaped = True
        elif char == '"':
            in_string = not in_string
    return not in_string


def _closers(text: str) -> str:
    """What closes every string, array and object ``text`` leaves open."""
    stack: list[str] = []
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "{[":
            stack.append("}" if char == "{" else "]")
        elif char in "}]" and stack:
            stack.pop()
    return ('"' if in_string else "") + "".join(reversed(stack))
