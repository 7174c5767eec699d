"""``response`` objects built from worker events, whole and as typed SSE events.

A response's ``output`` is a list of items, each made by one output block: the assistant's
text (``MessageBlock``), each function call (``FunctionCallBlock``) and, before them, a
reasoning model's thinking (``ReasoningBlock``: a ``reasoning`` item whose content is
``reasoning_text``, as open-weight models' servers write it). A block knows the events that
open it, add to it and close it, and the item it ends as; the format only decides which block
an event belongs to.

A stream opens with ``response.created`` and ``response.in_progress``, then each block's
events (``response.output_item.added``, ``...content_part.added``,
``...output_text.delta``... or ``...function_call_arguments.delta``..., then their
``.done`` events), and ends with ``response.completed``, ``response.incomplete`` (cut by
``max_output_tokens``) or ``response.failed``. Every event carries its ``sequence_number``.
``result`` holds the finished response object, for the view to store.
"""

from __future__ import annotations

import json
import time
from typing import Any, Literal

from inference_app.replies import Answer
from inference_app.responses_api.bodies import (
    Echo,
    Event,
    FunctionCallItem,
    IncompleteDetails,
    Item,
    MessageItem,
    MessagePart,
    OutputTextPart,
    PartEvent,
    ReasoningItem,
    ReasoningTextPart,
    ResponseError,
    ResponseObject,
    ResponseUsage,
    TextDoneEvent,
)
from inference_app.responses_api.items import new_item_id, output_text_part
from project.errors import ApiError
from workers.broker.wire import Delta, Done, ToolCall, ToolDelta, Usage

# A worker's finish reason as the response's status.
STATUSES = {"length": "incomplete", "cancelled": "cancelled"}


class OutputBlock:
    """One item of a response's ``output``, as it is written."""

    def __init__(self, output_index: int, kind: str) -> None:
        self.output_index = output_index
        self.id = new_item_id(kind)

    def opened(self) -> list[Event]:
        return [self._item_event("response.output_item.added", "in_progress")]

    def added(self, piece: str) -> list[Event]:
        raise NotImplementedError

    def closed(self, status: str) -> list[Event]:
        return [self._item_event("response.output_item.done", status)]

    def item(self, status: str) -> Item:
        raise NotImplementedError

    def _item_event(
        self,
        kind: Literal["response.output_item.added", "response.output_item.done"],
        status: str,
    ) -> Event:
        return {"type": kind, "output_index": self.output_index, "item": self.item(status)}

    def _part_event(
        self,
        kind: Literal["response.content_part.added", "response.content_part.done"],
        part: OutputTextPart | ReasoningTextPart,
    ) -> PartEvent:
        return {
            "type": kind,
            "item_id": self.id,
            "output_index": self.output_index,
            "content_index": 0,
            "part": part,
        }

    def _text_done(self, kind: str, text: str) -> TextDoneEvent:
        return {
            "type": kind,
            "item_id": self.id,
            "output_index": self.output_index,
            "content_index": 0,
            "text": text,
        }


class MessageBlock(OutputBlock):
    """The assistant's text: one ``message`` item with one ``output_text`` part."""

    def __init__(self, output_index: int, text: str = "") -> None:
        super().__init__(output_index, "message")
        self.text = text

    def opened(self) -> list[Event]:
        part = self._part_event("response.content_part.added", output_text_part(""))
        return [*super().opened(), part]

    def added(self, piece: str) -> list[Event]:
        self.text += piece
        return [
            {
                "type": "response.output_text.delta",
                "item_id": self.id,
                "output_index": self.output_index,
                "content_index": 0,
                "delta": piece,
                "logprobs": [],
            }
        ]

    def closed(self, status: str) -> list[Event]:
        done = self._text_done("response.output_text.done", self.text)
        done["logprobs"] = []
        return [
            done,
            self._part_event("response.content_part.done", output_text_part(self.text)),
            *super().closed(status),
        ]

    def item(self, status: str) -> MessageItem:
        content: list[MessagePart] = (
            [] if status == "in_progress" else [output_text_part(self.text)]
        )
        return {
            "id": self.id,
            "type": "message",
            "status": status,
            "role": "assistant",
            "content": content,
        }


class ReasoningBlock(OutputBlock):
    """The model's thinking: one ``reasoning`` item with one ``reasoning_text`` part."""

    def __init__(self, output_index: int, text: str = "") -> None:
        super().__init__(output_index, "reasoning")
        self.text = text

    def opened(self) -> list[Event]:
        part = self._part_event("response.content_part.added", _reasoning_part(""))
        return [*super().opened(), part]

    def added(self, piece: str) -> list[Event]:
        self.text += piece
        return [
            {
                "type": "response.reasoning_text.delta",
                "item_id": self.id,
                "output_index": self.output_index,
                "content_index": 0,
                "delta": piece,
            }
        ]

    def closed(self, status: str) -> list[Event]:
        return [
            self._text_done("response.reasoning_text.done", self.text),
            self._part_event("response.content_part.done", _reasoning_part(self.text)),
            *super().closed(status),
        ]

    def item(self, status: str) -> ReasoningItem:
        content = [] if status == "in_progress" else [_reasoning_part(self.text)]
        return {
            "id": self.id,
            "type": "reasoning",
            "status": status,
            "summary": [],
            "content": content,
        }


def _reasoning_part(text: str) -> ReasoningTextPart:
    return {"type": "reasoning_text", "text": text}


class FunctionCallBlock(OutputBlock):
    """One call of a function tool: a ``function_call`` item whose arguments are written in
    pieces."""

    def __init__(
        self,
        output_index: int,
        call_id: str,
        name: str,
        arguments: str = "",
        namespace: str | None = None,
    ) -> None:
        super().__init__(output_index, "function_call")
        self.call_id = call_id
        self.name = name
        self.arguments = arguments
        self.namespace = namespace

    def added(self, piece: str) -> list[Event]:
        self.arguments += piece
        return [
            {
                "type": "response.function_call_arguments.delta",
                "item_id": self.id,
                "output_index": self.output_index,
                "delta": piece,
            }
        ]

    def closed(self, status: str) -> list[Event]:
        done: Event = {
            "type": "response.function_call_arguments.done",
            "item_id": self.id,
            "output_index": self.output_index,
            "name": self.name,
            "arguments": self.arguments,
        }
        return [done, *super().closed(status)]

    def item(self, status: str) -> FunctionCallItem:
        arguments = "" if status == "in_progress" else self.arguments
        item: FunctionCallItem = {
            "id": self.id,
            "type": "function_call",
            "status": status,
            "call_id": self.call_id,
            "name": self.name,
            "arguments": arguments,
        }
        if self.namespace is not None:
            item["namespace"] = self.namespace
        return item


def call_arguments(call: ToolCall) -> str:
    """A call's arguments as the JSON string the API carries; a call cut short by the token
    limit keeps the text written."""
    return call.arguments_text if call.arguments_text is not None else json.dumps(call.arguments)


def usage(counts: Usage, reasoning_tokens: int = 0) -> ResponseUsage:
    return {
        "input_tokens": counts.prompt_tokens,
        "input_tokens_details": {"cached_tokens": counts.cached_tokens, "cache_write_tokens": 0},
        "output_tokens": counts.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
        "total_tokens": counts.total_tokens,
    }


class ResponseObjectFormat:
    """A ``ResponseFormat`` (``inference_app.replies``) writing one ``response``.
    ``echo`` holds the request fields the object repeats (``ResponseSerializer.echo``);
    ``namespaces`` the namespace of each function a namespace tool brought, by its name, for
    the calls of it; ``store``, when given, what the object says of its storing in place of
    the request's (a batch's responses are not kept)."""

    content_type = "text/event-stream"

    def __init__(
        self,
        response_id: str,
        model: str,
        echo: Echo,
        namespaces: dict[str, str] | None = None,
        *,
        store: bool | None = None,
    ) -> None:
        self.id = response_id
        self.model = model
        self.echo = echo if store is None else {**echo, "store": store}
        self.namespaces = dict(namespaces or {})
        self.created_at = int(time.time())
        self.result: ResponseObject | None = None
        self._blocks: list[OutputBlock] = []
        self._open: OutputBlock | None = None
        self._calls: dict[int, FunctionCallBlock] = {}  # streamed calls, by their index
        self._sequence = 0
        self._reasoning_tokens = 0

    # The object.

    def response(
        self,
        status: str,
        *,
        counts: Usage | None = None,
        error: ResponseError | None = None,
        item_status: str = "completed",
    ) -> ResponseObject:
        """The response object as it stands; ``item_status`` is the last item's."""
        output = [
            block.item(item_status if block is self._blocks[-1] else "completed")
            for block in self._blocks
        ]
        incomplete: IncompleteDetails | None = (
            {"reason": "max_output_tokens"} if status == "incomplete" else None
        )
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "background": False,
            "completed_at": int(time.time()) if status == "completed" else None,
            "error": error,
            "incomplete_details": incomplete,
            "instructions": self.echo["instructions"],
            "max_output_tokens": self.echo["max_output_tokens"],
            "max_tool_calls": None,
            "model": self.model,
            "output": output if status != "in_progress" else [],
            "parallel_tool_calls": self.echo["parallel_tool_calls"],
            "previous_response_id": self.echo["previous_response_id"],
            "reasoning": self.echo.get("reasoning"),
            "service_tier": "default",
            "store": self.echo["store"],
            "temperature": self.echo["temperature"],
            "text": self.echo["text"],
            "tool_choice": self.echo["tool_choice"],
            "tools": self.echo["tools"],
            "top_logprobs": 0,
            "top_p": self.echo["top_p"],
            "truncation": "disabled",
            "usage": usage(counts, self._reasoning_tokens) if counts is not None else None,
            "user": self.echo["user"],
            "metadata": self.echo["metadata"],
        }

    def whole(self, answer: Answer) -> dict[str, Any]:
        done = answer.done
        self._reasoning_tokens = answer.reasoning_tokens
        if answer.thinking:
            self._blocks.append(ReasoningBlock(0, answer.thinking))
        if answer.text or not done.tool_calls:
            self._blocks.append(MessageBlock(len(self._blocks), answer.text))
        for call in done.tool_calls or []:
            block = self._call_block(call.id, call.name, call_arguments(call))
            self._blocks.append(block)
        return dict(self._finish(done))

    def _finish(self, done: Done) -> ResponseObject:
        status = STATUSES.get(done.finish_reason, "completed")
        item_status = "incomplete" if status == "incomplete" else "completed"
        self.result = self.response(status, counts=done.usage, item_status=item_status)
        return self.result

    def _call_block(self, call_id: str, name: str, arguments: str = "") -> FunctionCallBlock:
        namespace = self.namespaces.get(name)
        return FunctionCallBlock(len(self._blocks), call_id, name, arguments, namespace)

    # The stream.

    def stream_delta(self, delta: Delta, first: bool) -> bytes:
        events = self._opening(first)
        if delta.thinking:
            if not isinstance(self._open, ReasoningBlock):
                events += self._switch_to(ReasoningBlock(len(self._blocks)))
            assert self._open is not None
            events += self._open.added(delta.thinking)
            if not delta.text:
                self._reasoning_tokens += delta.tokens
        if delta.text or not delta.thinking:
            if not isinstance(self._open, MessageBlock):
                events += self._switch_to(MessageBlock(len(self._blocks)))
            assert self._open is not None
            events += self._open.added(delta.text)
        return self._sse(events)

    def stream_tool_delta(self, delta: ToolDelta, first: bool) -> bytes:
        events = self._opening(first)
        if delta.id is not None:
            block = self._call_block(delta.id, delta.name or "")
            self._calls[delta.index] = block
            events += self._switch_to(block)
        call = self._calls.get(delta.index)
        if call is not None and delta.arguments:
            events += call.added(delta.arguments)
        return self._sse(events)

    def stream_done(self, done: Done, first: bool) -> bytes:
        events = self._opening(first)
        status = STATUSES.get(done.finish_reason, "completed")
        item_status = "incomplete" if status == "incomplete" else "completed"
        unstreamed = [call for i, call in enumerate(done.tool_calls or []) if i not in self._calls]
        answered = any(isinstance(b, MessageBlock | FunctionCallBlock) for b in self._blocks)
        if not answered and not unstreamed:
            # An answer with no text at all (or cut while reasoning): an empty message.
            events += self._switch_to(MessageBlock(len(self._blocks)))
        for call in unstreamed:
            block = self._call_block(call.id, call.name)
            events += self._switch_to(block) + block.added(call_arguments(call))
        if self._open is not None:
            events += self._open.closed(item_status)
            self._open = None
        result = self._finish(done)
        kind = "response.incomplete" if status == "incomplete" else "response.completed"
        return self._sse([*events, {"type": kind, "response": result}])

    def stream_error(self, error: ApiError) -> bytes:
        """The worker failed (or was lost) mid-answer: the open item ends incomplete and the
        response ``failed``, with the error's message."""
        events: list[Event] = []
        if self._sequence == 0:
            events = self._opening(True)
        if self._open is not None:
            events += self._open.closed("incomplete")
            self._open = None
        failure: ResponseError = {"code": "server_error", "message": error.message}
        self.result = self.response("failed", error=failure, item_status="incomplete")
        return self._sse([*events, {"type": "response.failed", "response": self.result}])

    def _opening(self, first: bool) -> list[Event]:
        if not first:
            return []
        snapshot = self.response("in_progress")
        return [
            {"type": "response.created", "response": snapshot},
            {"type": "response.in_progress", "response": snapshot},
        ]

    def _switch_to(self, block: OutputBlock) -> list[Event]:
        """Close the open block and open ``block``."""
        events = self._open.closed("completed") if self._open is not None else []
        self._blocks.append(block)
        self._open = block
        return events + block.opened()

    def _sse(self, events: list[Event]) -> bytes:
        out = []
        for event in events:
            numbered = {**event, "sequence_number": self._sequence}
            self._sequence += 1
            data = json.dumps(numbered, separators=(",", ":"))
            out.append(f"event: {event['type']}\ndata: {data}\n\n")
        return "".join(out).encode()
