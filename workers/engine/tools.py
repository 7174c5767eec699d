"""Function calling on the worker: which calls a request allows, the grammar that forces one,
holding back text that opens like a call, and reading calls out of generated text.

A request's ``tools`` are OpenAI function tools (``{"type": "function", "function": {"name",
"description", "parameters"}}``); ``tool_choice`` is ``"auto"``, ``"none"``, ``"required"`` or
``{"type": "function", "function": {"name": ...}}``. Calls come back in the ``done`` event as
``tool_calls``: ``[{"id", "name", "arguments": {...}}]``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from workers.engine.logprobs import LogprobEntry
from workers.engine.tool_stream import ParsedCall, new_call_id, partial_call

TOOL_CALL_OPEN = "<tool_call>"
_BLOCK = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.S)
_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.S)


class ToolChoiceError(ValueError):
    """``tool_choice`` names a function that is not among ``tools``."""


@dataclass(frozen=True)
class ToolPlan:
    """``none``: tools are ignored. ``auto``: the model sees them and may call one. ``forced``:
    the output is grammar-constrained to one call (``schema``). ``functions`` are those the
    model is offered and may call."""

    mode: str
    functions: list[dict[str, Any]] = field(default_factory=list)
    schema: dict[str, Any] | None = None

    @property
    def names(self) -> set[str]:
        return {f["name"] for f in self.functions}


def plan_tools(tools: list[dict[str, Any]] | None, tool_choice: Any) -> ToolPlan:
    functions = [t["function"] for t in tools or [] if t.get("type", "function") == "function"]
    if not functions or tool_choice == "none":
        return ToolPlan("none")
    if tool_choice in (None, "auto"):
        return ToolPlan("auto", functions)
    if tool_choice == "required":
        return ToolPlan("forced", functions, call_schema(functions))
    wanted = tool_choice["function"]["name"]
    chosen = [f for f in functions if f["name"] == wanted]
    if not chosen:
        raise ToolChoiceError(f"tool_choice names '{wanted}', which is not among the tools")
    # The model is offered the one function it may call.
    return ToolPlan("forced", chosen, call_schema(chosen))


def call_schema(functions: list[dict[str, Any]]) -> dict[str, Any]:
    """A JSON schema that only a call of one of ``functions`` satisfies."""
    variants = [
        {
            "type": "object",
            "properties": {
                "name": {"const": f["name"]},
                "arguments": f.get("parameters") or {"type": "object"},
            },
            "required": ["name", "arguments"],
            "additionalProperties": False,
        }
        for f in functions
    ]
    return variants[0] if len(variants) == 1 else {"anyOf": variants}


def parse_tool_calls(text: str, names: set[str]) -> list[ParsedCall] | None:
    """The calls in ``text`` when all of it is calls: ``<tool_call>{...}</tool_call>`` blocks,
    or one JSON object (or a list of them) with ``name`` and ``arguments`` (or ``parameters``).
    None when it is anything else, or names a function that was not offered."""
    stripped = text.strip()
    if stripped.startswith(TOOL_CALL_OPEN):
        blocks = _BLOCK.findall(stripped)
    else:
        fenced = _FENCE.match(stripped)
        blocks = [fenced.group(1) if fenced else stripped]
    calls: list[ParsedCall] = []
    for block in blocks:
        try:
            parsed = json.loads(block)
        except ValueError:
            return None
        for item in parsed if isinstance(parsed, list) else [parsed]:
            call = _as_call(item, names)
            if call is None:
                return None
            calls.append(call)
    return calls or None


def _as_call(item: Any, names: set[str]) -> ParsedCall | None:
    if not isinstance(item, dict) or item.get("name") not in names:
        return None
    arguments = item.get("arguments", item.get("parameters", {}))
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments)
        except ValueError:
            return None
    if not isinstance(arguments, dict):
        return None
    return {"id": new_call_id(), "name": item["name"], "arguments": arguments}


Piece = tuple[str, int, list[LogprobEntry] | None]


class ToolCallHold:
    """Decides, from the first text of an answer, whether it is a call (held back until the
    end, then parsed) or prose (passed straight through). A forced call holds everything."""

    def __init__(self, plan: ToolPlan) -> None:
        self._plan = plan
        self._holding = plan.mode == "forced"
        self._decided = plan.mode != "auto"
        self._held: list[Piece] = []

    def feed(self, piece: Piece) -> list[Piece]:
        """The pieces to send now."""
        if self._decided and not self._holding:
            return [piece]
        self._held.append(piece)
        if self._decided:
            return []
        opening = "".join(p[0] for p in self._held).lstrip()
        if not opening:
            return []
        if opening.startswith(("{", "[", "```", TOOL_CALL_OPEN)):
            self._decided = self._holding = True
            return []
        if TOOL_CALL_OPEN.startswith(opening) or "```".startswith(opening):
            return []  # could still become a call
        self._decided = True
        released, self._held = self._held, []
        return released

    def finish(self, cut: bool = False) -> tuple[list[ParsedCall] | None, list[Piece]]:
        """(the calls, if the held text is calls; else the held pieces to send as text). An
        answer ``cut`` short by its token limit in the middle of a call gives that call, as
        far as it was written (``workers.engine.tool_stream.partial_call``)."""
        held, self._held = self._held, []
        if self._holding:
            text = "".join(p[0] for p in held)
            calls = parse_tool_calls(text, self._plan.names)
            if calls:
                return calls, []
            names = [f["name"] for f in self._plan.functions]
            partial = partial_call(text, names, forced=False) if cut else None
            if partial is not None:
                return [partial], []
        return None, held
