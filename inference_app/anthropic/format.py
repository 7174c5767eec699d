"""Anthropic ``message`` objects built from worker events, whole and streamed as SSE.

A message's ``content`` is a list of blocks: the answer's text, then its calls as ``tool_use``
blocks. Streamed, each block opens (``content_block_start``), grows (``content_block_delta``:
``text_delta``, or ``input_json_delta`` for a call's input as the worker writes it) and closes
(``content_block_stop``) in turn, between ``message_start`` and ``message_delta`` /
``message_stop``. Each kind of block has its own method here, so that another kind (a
``thinking`` block ahead of the text, with ``thinking_delta``) is one more method and one more
line where the blocks are made.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from inference_app.anthropic.bodies import (
    BlockDelta,
    ContentOut,
    MessageOut,
    TextOut,
    ThinkingOut,
    ToolUseOut,
    UsageOut,
)
from inference_app.replies import Answer
from project.edge.families import ANTHROPIC, error_body
from project.errors import ApiError
from workers.broker.wire import Delta, Done, ToolCall, ToolDelta, Usage

# Done's finish reasons in Anthropic's words (``stop`` is ``end_turn`` or ``stop_sequence``,
# as the Done says which).
STOP_REASONS = {"length": "max_tokens", "tool_calls": "tool_use"}


def stop_reason(done: Done) -> str:
    if done.finish_reason in STOP_REASONS:
        return STOP_REASONS[done.finish_reason]
    return "stop_sequence" if done.stop_sequence is not None else "end_turn"


def tool_use_id(call_id: str) -> str:
    """A worker's call id as Anthropic spells its ids; the same id every time, so that a
    streamed call and its ``tool_result`` agree."""
    return "toolu_" + call_id.removeprefix("call_")


def usage(counts: Usage) -> UsageOut:
    return {"input_tokens": counts.prompt_tokens, "output_tokens": counts.completion_tokens}


def text_block(text: str) -> TextOut:
    return {"type": "text", "text": text}


def tool_use_block(call: ToolCall) -> ToolUseOut:
    """A call whole. A call cut short by ``max_tokens`` has what of its input could be read."""
    arguments = call.arguments if isinstance(call.arguments, dict) else {}
    return {"type": "tool_use", "id": tool_use_id(call.id), "name": call.name, "input": arguments}


def thinking_block(thinking: str) -> ThinkingOut:
    """A reasoning model's thinking. Herd signs nothing: the ``signature`` is empty, and a
    thinking block sent back is left out of the prompt, as Anthropic leaves it."""
    return {"type": "thinking", "thinking": thinking, "signature": ""}


def content_blocks(answer: Answer) -> list[ContentOut]:
    blocks: list[ContentOut] = [thinking_block(answer.thinking)] if answer.thinking else []
    blocks += [text_block(answer.text)] if answer.text else []
    return blocks + [tool_use_block(call) for call in answer.done.tool_calls or []]


def sse_event(data: Mapping[str, object]) -> bytes:
    """One server-sent event, named by its ``type`` as Anthropic names each."""
    body = json.dumps(data, separators=(",", ":"))
    return f"event: {data['type']}\ndata: {body}\n\n".encode()


class _StreamedBlocks:
    """The content blocks of one streamed message: numbered in order, one open at a time."""

    def __init__(self) -> None:
        self._count = 0
        self._open: str | None = None

    def enter(self, kind: str, block: ContentOut) -> bytes:
        """Open ``block`` unless a block of its ``kind`` is the one open."""
        return b"" if self._open == kind else self.open(kind, block)

    def open(self, kind: str, block: ContentOut) -> bytes:
        out = self.close()
        self._open = kind
        self._count += 1
        return out + sse_event(
            {"type": "content_block_start", "index": self._count - 1, "content_block": block}
        )

    def delta(self, delta: BlockDelta) -> bytes:
        return sse_event({"type": "content_block_delta", "index": self._count - 1, "delta": delta})

    def close(self) -> bytes:
        if self._open is None:
            return b""
        self._open = None
        return sse_event({"type": "content_block_stop", "index": self._count - 1})


class MessageFormat:
    """A ``ResponseFormat`` (``inference_app.replies``): one request's message."""

    content_type = "text/event-stream"

    def __init__(self, request_id: str, model: str) -> None:
        self.id = f"msg_{request_id}"
        self.model = model
        self._blocks = _StreamedBlocks()
        # Calls already streamed from ToolDelta events (a forced call, as it is written).
        self._streamed_calls: set[int] = set()

    def _message(
        self,
        content: list[ContentOut],
        reason: str | None,
        stop_sequence: str | None,
        counts: UsageOut,
    ) -> MessageOut:
        return {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": reason,
            "stop_sequence": stop_sequence,
            "usage": counts,
        }

    def whole(self, answer: Answer) -> dict[str, Any]:
        done = answer.done
        message = self._message(
            content_blocks(answer), stop_reason(done), done.stop_sequence, usage(done.usage)
        )
        return dict(message)

    def _opening(self, first: bool) -> bytes:
        """``message_start`` with the first event. The prompt's tokens are counted in the
        worker's last event, so its ``input_tokens`` come in ``message_delta``."""
        if not first:
            return b""
        message = self._message([], None, None, usage(Usage()))
        return sse_event({"type": "message_start", "message": message}) + sse_event(
            {"type": "ping"}
        )

    def _thinking(self, thinking: str) -> bytes:
        if not thinking:
            return b""
        return self._blocks.enter("thinking", thinking_block("")) + self._blocks.delta(
            {"type": "thinking_delta", "thinking": thinking}
        )

    def _text(self, text: str) -> bytes:
        if not text:
            return b""
        return self._blocks.enter("text", text_block("")) + self._blocks.delta(
            {"type": "text_delta", "text": text}
        )

    def _tool_use(self, index: int, call_id: str, name: str | None) -> bytes:
        self._streamed_calls.add(index)
        block: ToolUseOut = {
            "type": "tool_use",
            "id": tool_use_id(call_id),
            "name": name,
            "input": {},
        }
        return self._blocks.open(f"tool_use:{index}", block)

    def _input_json(self, fragment: str) -> bytes:
        if not fragment:
            return b""
        return self._blocks.delta({"type": "input_json_delta", "partial_json": fragment})

    def stream_delta(self, delta: Delta, first: bool) -> bytes:
        return self._opening(first) + self._thinking(delta.thinking) + self._text(delta.text)

    def stream_tool_delta(self, delta: ToolDelta, first: bool) -> bytes:
        out = self._opening(first)
        if delta.id is not None:
            out += self._tool_use(delta.index, delta.id, delta.name)
        return out + self._input_json(delta.arguments)

    def stream_done(self, done: Done, first: bool) -> bytes:
        out = self._opening(first)
        # Calls read out of the text at its end (tool_choice auto) go out whole here.
        for index, call in enumerate(done.tool_calls or []):
            if index not in self._streamed_calls:
                out += self._tool_use(index, call.id, call.name)
                out += self._input_json(json.dumps(tool_use_block(call)["input"]))
        out += self._blocks.close()
        out += sse_event(
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason(done), "stop_sequence": done.stop_sequence},
                "usage": usage(done.usage),
            }
        )
        return out + sse_event({"type": "message_stop"})

    def stream_error(self, error: ApiError) -> bytes:
        return sse_event(error_body(ANTHROPIC, error))
