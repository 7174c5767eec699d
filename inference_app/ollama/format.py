"""Ollama response objects built from worker events, and NDJSON lines.

A stream is one JSON object per line: a chunk per delta (``done: false``), then a final
object with ``done: true``, ``done_reason`` and the timings in nanoseconds. ``stream: false``
gets the final object alone, holding the whole answer.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any

from inference_app.ollama.bodies import GenerationObject, LogprobOut, MessageOut, ToolCallOut
from inference_app.replies import Answer
from project.edge.families import OLLAMA, error_body
from project.errors import ApiError
from workers.broker.wire import Delta, Done, ToolCall, ToolDelta

# Finish reasons Ollama names differently: a tool call ends the turn like EOS does.
_DONE_REASONS = {"tool_calls": "stop"}


def ndjson(obj: Mapping[str, object]) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode() + b"\n"


async def ndjson_stream(events: AsyncIterator[Mapping[str, object]]) -> AsyncIterator[bytes]:
    """``events`` as NDJSON lines (a pull's or a create's progress)."""
    async for event in events:
        yield ndjson(event)


def created_at() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def ollama_tool_calls(calls: list[ToolCall]) -> list[ToolCallOut]:
    return [
        {"id": c.id, "function": {"index": i, "name": c.name, "arguments": c.arguments}}
        for i, c in enumerate(calls)
    ]


def ollama_logprobs(entries: list[dict[str, Any]]) -> list[LogprobOut]:
    """The worker's logprob entries (``workers.broker.wire.Delta.logprobs``) as Ollama
    writes them."""
    return [
        {
            "token": e["token"],
            "logprob": e["logprob"],
            "bytes": e["bytes"],
            "top_logprobs": [
                {"token": t["token"], "logprob": t["logprob"], "bytes": t["bytes"]}
                for t in e["top_logprobs"]
            ],
        }
        for e in entries
    ]


class OllamaFormat:
    """The objects of one ``/api/chat`` (``chat=True``) or ``/api/generate`` request; a
    ``ResponseFormat`` (``inference_app.replies``)."""

    content_type = "application/x-ndjson"

    def __init__(self, model: str, *, chat: bool, started_ns: int) -> None:
        self.model = model
        self.chat = chat
        self.started_ns = started_ns

    def _object(
        self, text: str, tool_calls: list[ToolCall] | None = None, thinking: str = ""
    ) -> GenerationObject:
        """The object's head and its answer."""
        obj: GenerationObject = {"model": self.model, "created_at": created_at()}
        if not self.chat:
            obj["response"] = text
            if thinking:
                obj["thinking"] = thinking
            return obj
        message: MessageOut = {"role": "assistant", "content": text}
        if thinking:
            message["thinking"] = thinking
        if tool_calls:
            message["tool_calls"] = ollama_tool_calls(tool_calls)
        obj["message"] = message
        return obj

    def chunk(
        self,
        text: str,
        logprobs: list[dict[str, Any]] | None = None,
        tool_calls: list[ToolCall] | None = None,
        thinking: str = "",
    ) -> GenerationObject:
        obj = self._object(text, tool_calls, thinking)
        if logprobs is not None:
            obj["logprobs"] = ollama_logprobs(logprobs)
        obj["done"] = False
        return obj

    def final(
        self,
        done: Done,
        now_ns: int,
        text: str = "",
        logprobs: list[dict[str, Any]] | None = None,
        *,
        with_tool_calls: bool = False,
        thinking: str = "",
    ) -> GenerationObject:
        """The last object; ``text``, ``logprobs`` and the tool calls (``with_tool_calls``)
        hold the whole answer when not streamed.
        ``total_duration`` runs from the request's arrival to ``now_ns``, so it covers the
        queue as well as the worker's load, prompt and generation times."""
        timings, usage = done.timings, done.usage
        tool_calls = done.tool_calls if with_tool_calls else None
        obj = self._object(text, tool_calls, thinking)
        if logprobs is not None:
            obj["logprobs"] = ollama_logprobs(logprobs)
        reason = done.finish_reason
        obj["done"] = True
        obj["done_reason"] = _DONE_REASONS.get(reason, reason)
        obj["total_duration"] = max(now_ns - self.started_ns, timings.total_ns)
        obj["load_duration"] = timings.load_ns
        obj["prompt_eval_count"] = usage.prompt_tokens
        obj["prompt_eval_duration"] = timings.prompt_eval_ns
        obj["eval_count"] = usage.completion_tokens
        obj["eval_duration"] = timings.eval_ns
        return obj

    def stream_delta(self, delta: Delta, first: bool) -> bytes:
        return ndjson(self.chunk(delta.text, delta.logprobs, thinking=delta.thinking))

    def stream_tool_delta(self, delta: ToolDelta, first: bool) -> bytes:
        # Ollama's calls come whole (the Done event's): /api/chat never forces a call, so
        # none is streamed in pieces.
        return b""

    def stream_done(self, done: Done, first: bool) -> bytes:
        calls = ndjson(self.chunk("", tool_calls=done.tool_calls)) if done.tool_calls else b""
        return calls + ndjson(self.final(done, time.perf_counter_ns()))

    def stream_error(self, error: ApiError) -> bytes:
        return ndjson(error_body(OLLAMA, error))

    def whole(self, answer: Answer) -> dict[str, Any]:
        return dict(
            self.final(
                answer.done,
                time.perf_counter_ns(),
                answer.text,
                answer.logprobs,
                with_tool_calls=True,
                thinking=answer.thinking,
            )
        )
