"""OpenAI response objects built from worker events."""

from __future__ import annotations

import json
import time
from typing import Any

FINGERPRINT = "herd"


def usage(event: dict[str, Any]) -> dict[str, int]:
    counts = event["usage"]
    prompt, completion = counts["prompt_tokens"], counts["completion_tokens"]
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def openai_tool_calls(calls: list[dict[str, Any]], *, indexed: bool) -> list[dict[str, Any]]:
    """The worker's calls as OpenAI writes them: arguments as a JSON string; a stream's
    deltas number them with ``index``."""
    out = []
    for index, call in enumerate(calls):
        entry: dict[str, Any] = {
            "id": call["id"],
            "type": "function",
            "function": {"name": call["name"], "arguments": json.dumps(call["arguments"])},
        }
        out.append({"index": index, **entry} if indexed else entry)
    return out


def sse(obj: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


SSE_DONE = b"data: [DONE]\n\n"


class ChatFormat:
    """``chat.completion`` and ``chat.completion.chunk`` objects of one request."""

    def __init__(self, request_id: str, model: str, include_usage: bool = False) -> None:
        self.id = f"chatcmpl-{request_id}"
        self.model = model
        self.created = int(time.time())
        self.include_usage = include_usage

    def _chunk(self, choices: list[dict[str, Any]]) -> dict[str, Any]:
        chunk: dict[str, Any] = {
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

    def opening_chunk(self) -> bytes:
        return sse(
            self._chunk(
                [
                    {
                        "index": 0,
                        "delta": {"role": "assistant", "content": ""},
                        "logprobs": None,
                        "finish_reason": None,
                    }
                ]
            )
        )

    def delta_chunk(self, text: str, logprobs: list[dict[str, Any]] | None = None) -> bytes:
        return sse(
            self._chunk(
                [
                    {
                        "index": 0,
                        "delta": {"content": text},
                        "logprobs": {"content": logprobs} if logprobs is not None else None,
                        "finish_reason": None,
                    }
                ]
            )
        )

    def closing_chunks(self, done: dict[str, Any]) -> bytes:
        out = b""
        if done.get("tool_calls"):
            calls = openai_tool_calls(done["tool_calls"], indexed=True)
            out += sse(
                self._chunk(
                    [
                        {
                            "index": 0,
                            "delta": {"tool_calls": calls},
                            "logprobs": None,
                            "finish_reason": None,
                        }
                    ]
                )
            )
        out += sse(
            self._chunk(
                [
                    {
                        "index": 0,
                        "delta": {},
                        "logprobs": None,
                        "finish_reason": done["finish_reason"],
                    }
                ]
            )
        )
        if self.include_usage:
            out += sse({**self._chunk([]), "usage": usage(done)})
        return out + SSE_DONE

    def whole(
        self, text: str, done: dict[str, Any], logprobs: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if done.get("tool_calls"):
            message = {
                "role": "assistant",
                "content": text or None,
                "tool_calls": openai_tool_calls(done["tool_calls"], indexed=False),
            }
        return {
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": FINGERPRINT,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": {"content": logprobs} if logprobs is not None else None,
                    "finish_reason": done["finish_reason"],
                }
            ],
            "usage": usage(done),
        }


class CompletionFormat:
    """``text_completion`` objects of one request, whole and streamed."""

    def __init__(self, request_id: str, model: str, include_usage: bool = False) -> None:
        self.id = f"cmpl-{request_id}"
        self.model = model
        self.created = int(time.time())
        self.include_usage = include_usage

    def _object(self, text: str, finish_reason: str | None) -> dict[str, Any]:
        obj: dict[str, Any] = {
            "id": self.id,
            "object": "text_completion",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": FINGERPRINT,
            "choices": [
                {"index": 0, "text": text, "logprobs": None, "finish_reason": finish_reason}
            ],
        }
        if self.include_usage:
            obj["usage"] = None
        return obj

    def opening_chunk(self) -> bytes:
        return b""

    def delta_chunk(self, text: str, logprobs: list[dict[str, Any]] | None = None) -> bytes:
        return sse(self._object(text, None))

    def closing_chunks(self, done: dict[str, Any]) -> bytes:
        out = sse(self._object("", done["finish_reason"]))
        if self.include_usage:
            out += sse({**self._object("", None), "choices": [], "usage": usage(done)})
        return out + SSE_DONE

    def whole(
        self, text: str, done: dict[str, Any], logprobs: list[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        obj = self._object(text, done["finish_reason"])
        obj["usage"] = usage(done)
        return obj
