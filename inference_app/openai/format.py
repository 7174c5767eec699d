"""OpenAI response objects built from worker events, whole and streamed as SSE.

A request may ask for several choices (``n``, or a list of prompts): each choice is one
generation, and each chunk and choice object carries its ``index``
(``inference_app.openai.choices`` runs them). Chat logprobs carry ``refusal`` beside
``content``, and a chat message its ``refusal``: null always, since Herd's models refuse in
their text when they do.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any, Generic, TypeVar

from inference_app.openai.bodies import (
    ChatChoice,
    ChatChunkChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatDelta,
    ChatLogprobs,
    ChatMessageBody,
    CompletionChoice,
    TextCompletion,
    ToolCallBody,
    ToolCallFragment,
    UsageBody,
)
from inference_app.replies import Answer
from project.edge.families import OPENAI, error_body
from project.errors import ApiError
from workers.broker.wire import Delta, Done, ToolCall, ToolDelta, Usage

FINGERPRINT = "herd"


def usage(counts: Usage) -> UsageBody:
    """OpenAI's usage object; ``cached_tokens``: the prompt's start found in the KV cache."""
    return {
        "prompt_tokens": counts.prompt_tokens,
        "completion_tokens": counts.completion_tokens,
        "total_tokens": counts.total_tokens,
        "prompt_tokens_details": {"cached_tokens": counts.cached_tokens},
    }


def openai_tool_calls(calls: list[ToolCall], *, indexed: bool) -> list[ToolCallBody]:
    """The worker's calls as OpenAI writes them: arguments as a JSON string; a stream's
    deltas number them with ``index``."""
    out: list[ToolCallBody] = []
    for index, call in enumerate(calls):
        # A call cut short by max_tokens keeps the text written, as OpenAI gives it.
        arguments = call.arguments_text
        if arguments is None:
            arguments = json.dumps(call.arguments)
        entry: ToolCallBody = {
            "id": call.id,
            "type": "function",
            "function": {"name": call.name, "arguments": arguments},
        }
        out.append({"index": index, **entry} if indexed else entry)
    return out


def chat_logprobs(entries: list[dict[str, Any]] | None) -> ChatLogprobs | None:
    return {"content": entries, "refusal": None} if entries is not None else None


def sse(obj: Mapping[str, object]) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


SSE_DONE = b"data: [DONE]\n\n"


Choice = TypeVar("Choice", ChatChoice, CompletionChoice)
WholeObject = TypeVar("WholeObject", ChatCompletion, TextCompletion)


class _ServerSentEvents(Generic[Choice, WholeObject]):
    """A ``ResponseFormat`` (``inference_app.replies``) over the chunks a subclass
    writes: its opening chunk goes out with the first event. ``Choice`` and ``WholeObject``:
    the bodies of one choice and of the whole answer."""

    content_type = "text/event-stream"

    include_usage: bool

    def opening_chunk(self, index: int = 0) -> bytes:
        raise NotImplementedError

    def delta_chunk(self, delta: Delta, index: int = 0) -> bytes:
        raise NotImplementedError

    def finish_chunks(self, done: Done, index: int = 0, *, opening: bool = False) -> bytes:
        """The end of one choice (``opening``: in the answer's first chunk)."""
        raise NotImplementedError

    def usage_chunk(self, counts: Usage) -> bytes:
        raise NotImplementedError

    def closing_chunks(self, done: Done, *, opening: bool = False) -> bytes:
        out = self.finish_chunks(done, opening=opening)
        if self.include_usage:
            out += self.usage_chunk(done.usage)
        return out + SSE_DONE

    def whole_choice(self, answer: Answer, index: int) -> Choice:
        raise NotImplementedError

    def whole_object(self, choices: list[Choice], counts: Usage) -> WholeObject:
        raise NotImplementedError

    def whole(self, answer: Answer) -> dict[str, Any]:
        return dict(self.whole_object([self.whole_choice(answer, 0)], answer.done.usage))

    def whole_of_choices(self, answers: list[Answer], counts: Usage) -> WholeObject:
        """One object for several answers (``n``, or a list of prompts), one choice each."""
        choices = [self.whole_choice(answer, index) for index, answer in enumerate(answers)]
        return self.whole_object(choices, counts)

    def stream_delta(self, delta: Delta, first: bool) -> bytes:
        opening = self.opening_chunk() if first else b""
        return opening + self.delta_chunk(delta)

    def stream_tool_delta(self, delta: ToolDelta, first: bool) -> bytes:
        return b""  # only chat answers have tool calls

    def stream_done(self, done: Done, first: bool) -> bytes:
        return (self.opening_chunk() if first else b"") + self.closing_chunks(done)

    def stream_error(self, error: ApiError) -> bytes:
        return sse(error_body(OPENAI, error))


class ChatFormat(_ServerSentEvents[ChatChoice, ChatCompletion]):
    """``chat.completion`` and ``chat.completion.chunk`` objects of one request."""

    def __init__(self, request_id: str, model: str, include_usage: bool = False) -> None:
        self.id = f"chatcmpl-{request_id}"
        self.model = model
        self.created = int(time.time())
        self.include_usage = include_usage
        # Calls already streamed in ToolDelta events (a forced call, as it is written).
        self._streamed_calls: set[int] = set()

    def _chunk(self, choices: list[ChatChunkChoice]) -> ChatCompletionChunk:
        chunk: ChatCompletionChunk = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": FINGERPRINT,
            "choices": choices,
        }
        if self.include_usage:
            chunk["usage"] = None
        return chunk

    def opening_chunk(self, index: int = 0) -> bytes:
        return sse(
            self._chunk(
                [
                    {
                        "index": index,
                        "delta": {"role": "assistant", "content": ""},
                        "logprobs": None,
                        "finish_reason": None,
                    }
                ]
            )
        )

    def delta_chunk(self, delta: Delta, index: int = 0) -> bytes:
        # Reasoning goes in ``reasoning_content``, as vLLM and llama-server write it.
        said: ChatDelta = {"reasoning_content": delta.thinking} if delta.thinking else {}
        if delta.text or not delta.thinking:
            said["content"] = delta.text
        return sse(
            self._chunk(
                [
                    {
                        "index": index,
                        "delta": said,
                        "logprobs": chat_logprobs(delta.logprobs),
                        "finish_reason": None,
                    }
                ]
            )
        )

    def stream_tool_delta(self, delta: ToolDelta, first: bool) -> bytes:
        """A piece of a call being written: the first names it, the rest add arguments. The
        first chunk of an answer that starts with a call says the role, with no content, as
        OpenAI's does."""
        self._streamed_calls.add(delta.index)
        call: ToolCallFragment
        if delta.id is not None:
            call = {
                "index": delta.index,
                "id": delta.id,
                "type": "function",
                "function": {"name": delta.name, "arguments": delta.arguments},
            }
        else:
            call = {"index": delta.index, "function": {"arguments": delta.arguments}}
        said: ChatDelta = {"role": "assistant", "content": None} if first else {}
        said["tool_calls"] = [call]
        choice: ChatChunkChoice = {
            "index": 0,
            "delta": said,
            "logprobs": None,
            "finish_reason": None,
        }
        return sse(self._chunk([choice]))

    def stream_done(self, done: Done, first: bool) -> bytes:
        if first and done.tool_calls:
            return self.closing_chunks(done, opening=True)  # the calls chunk says the role
        return super().stream_done(done, first)

    def finish_chunks(self, done: Done, index: int = 0, *, opening: bool = False) -> bytes:
        """The end of one choice; the calls that were not streamed go first (``opening``: in
        the answer's first chunk)."""
        out = b""
        calls = [
            c
            for c in openai_tool_calls(done.tool_calls or [], indexed=True)
            if c.get("index") not in self._streamed_calls
        ]
        if calls:
            said: ChatDelta = {"role": "assistant", "content": None} if opening else {}
            said["tool_calls"] = calls
            out += sse(
                self._chunk(
                    [
                        {
                            "index": index,
                            "delta": said,
                            "logprobs": None,
                            "finish_reason": None,
                        }
                    ]
                )
            )
        return out + sse(
            self._chunk(
                [
                    {
                        "index": index,
                        "delta": {},
                        "logprobs": None,
                        "finish_reason": done.finish_reason,
                    }
                ]
            )
        )

    def usage_chunk(self, counts: Usage) -> bytes:
        return sse({**self._chunk([]), "usage": usage(counts)})

    def whole_choice(self, answer: Answer, index: int) -> ChatChoice:
        done = answer.done
        message: ChatMessageBody = {"role": "assistant", "content": answer.text, "refusal": None}
        if answer.thinking:
            message["reasoning_content"] = answer.thinking
        if done.tool_calls:
            message["content"] = answer.text or None
            message["tool_calls"] = openai_tool_calls(done.tool_calls, indexed=False)
        return {
            "index": index,
            "message": message,
            "logprobs": chat_logprobs(answer.logprobs),
            "finish_reason": done.finish_reason,
        }

    def whole_object(self, choices: list[ChatChoice], counts: Usage) -> ChatCompletion:
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": FINGERPRINT,
            "choices": choices,
            "usage": usage(counts),
        }


class CompletionFormat(_ServerSentEvents[CompletionChoice, TextCompletion]):
    """``text_completion`` objects of one request, whole and streamed."""

    def __init__(self, request_id: str, model: str, include_usage: bool = False) -> None:
        self.id = f"cmpl-{request_id}"
        self.model = model
        self.created = int(time.time())
        self.include_usage = include_usage

    def _object(self, text: str, finish_reason: str | None, index: int = 0) -> TextCompletion:
        obj: TextCompletion = {
            "id": self.id,
            "object": "text_completion",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": FINGERPRINT,
            "choices": [self._choice(text, finish_reason, index)],
        }
        if self.include_usage:
            obj["usage"] = None
        return obj

    @staticmethod
    def _choice(text: str, finish_reason: str | None, index: int) -> CompletionChoice:
        return {"index": index, "text": text, "logprobs": None, "finish_reason": finish_reason}

    def opening_chunk(self, index: int = 0) -> bytes:
        return b""

    def delta_chunk(self, delta: Delta, index: int = 0) -> bytes:
        return sse(self._object(delta.text, None, index))

    def finish_chunks(self, done: Done, index: int = 0, *, opening: bool = False) -> bytes:
        return sse(self._object("", done.finish_reason, index))

    def usage_chunk(self, counts: Usage) -> bytes:
        return sse({**self._object("", None), "choices": [], "usage": usage(counts)})

    def whole_choice(self, answer: Answer, index: int) -> CompletionChoice:
        return self._choice(answer.text, answer.done.finish_reason, index)

    def whole_object(self, choices: list[CompletionChoice], counts: Usage) -> TextCompletion:
        obj = self._object("", None)
        obj["choices"] = choices
        obj["usage"] = usage(counts)
        return obj
