"""Herd's answers, whole and streamed, validated against the schemas of OpenAI's document
(tests/specs/openai-herd.yaml), for the requests the fuzzer rarely draws: several choices,
logprobs, streams with usage, base64 embeddings.

Where the document contradicts its own examples, Herd follows the examples (the clients do
too); each such place is excused in ``EXCUSED`` below, by schema and field path, with the
reason (and the batch fields the examples show as null, in the extracted document itself:
``EXAMPLE_NULLS`` in tests/specs/extract_openai.py). Nothing else is.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from jsonschema import Draft202012Validator

from tests.inprocess import InProcessServer
from tests.live import LiveServer

SPEC = Path(__file__).with_name("specs") / "openai-herd.yaml"
HELLO = [{"role": "user", "content": "hi"}]

# (schema, field path with ``*`` for list indices) -> what Herd sends there, as the
# document's own examples show it.
EXCUSED: dict[tuple[str, str], str] = {
    # The streamed-completion example has `"finish_reason": null` on every chunk before the
    # last (as the API sends), but the streamed chunks reuse the whole response's schema,
    # whose finish_reason is a non-null enum.
    ("CreateCompletionResponse", "choices.*.finish_reason"): "null before the last chunk",
    # Likewise `"usage": null` on the chunks before the last, with `include_usage`; the whole
    # response's usage is an object.
    ("CreateCompletionResponse", "usage"): "null before the last chunk",
    # The base64 embedding example is a string, as `encoding_format: base64` asks; the
    # schema says an array of numbers only.
    ("CreateEmbeddingResponse", "data.*.embedding"): "a base64 string",
}


@cache
def components() -> dict[str, Any]:
    return yaml.safe_load(SPEC.read_text())["components"]


def violations(schema: str, obj: Any) -> list[str]:
    """The paths of ``obj``'s fields that break the document's ``schema``, less the excused."""
    validator = Draft202012Validator(
        {"$ref": f"#/components/schemas/{schema}", "components": components()}
    )
    found = []
    for error in validator.iter_errors(obj):
        path = ".".join(str(p) for p in error.absolute_path)
        pattern = ".".join("*" if isinstance(p, int) else str(p) for p in error.absolute_path)
        if (schema, pattern) not in EXCUSED:
            found.append(f"{path}: {error.message[:200]}")
    return found


def post(server: LiveServer, path: str, body: dict[str, Any]) -> httpx.Response:
    response = httpx.post(f"{server.base_url}/v1{path}", json=body, timeout=60)
    assert response.status_code == 200, response.text
    return response


def chunks(response: httpx.Response) -> list[dict[str, Any]]:
    lines = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    return [json.loads(line) for line in lines[:-1]]


CHAT_BODIES = [
    {"model": "tiny", "messages": HELLO, "max_tokens": 4},
    {"model": "tiny", "messages": HELLO, "max_tokens": 4, "n": 2, "logprobs": True},
    {"model": "tiny", "messages": HELLO, "max_tokens": 4, "logprobs": True, "top_logprobs": 2},
    {
        "model": "tiny",
        "messages": HELLO,
        "max_tokens": 30,
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
        "tool_choice": "required",
    },
]


@pytest.mark.live
@pytest.mark.parametrize("body", CHAT_BODIES, ids=["plain", "n-logprobs", "top", "tool"])
def test_chat_completions_match_the_document(server: LiveServer, body: dict[str, Any]) -> None:
    whole = post(server, "/chat/completions", body).json()
    assert violations("CreateChatCompletionResponse", whole) == []
    streamed = post(
        server,
        "/chat/completions",
        {**body, "stream": True, "stream_options": {"include_usage": True}},
    )
    for chunk in chunks(streamed):
        assert violations("CreateChatCompletionStreamResponse", chunk) == [], chunk


@pytest.mark.live
@pytest.mark.parametrize(
    "body",
    [
        {"model": "tiny", "prompt": "once", "max_tokens": 4},
        {"model": "tiny", "prompt": ["a", "b"], "max_tokens": 4, "n": 2, "echo": True},
    ],
    ids=["plain", "prompts-n-echo"],
)
def test_completions_match_the_document(server: LiveServer, body: dict[str, Any]) -> None:
    whole = post(server, "/completions", body).json()
    assert violations("CreateCompletionResponse", whole) == []
    streamed = post(
        server, "/completions", {**body, "stream": True, "stream_options": {"include_usage": True}}
    )
    for chunk in chunks(streamed):
        assert violations("CreateCompletionResponse", chunk) == [], chunk


@pytest.mark.live
@pytest.mark.parametrize("encoding", ["float", "base64"])
def test_embeddings_match_the_document(server: LiveServer, encoding: str) -> None:
    body = {"model": "tiny", "input": ["a", [300, 301]], "encoding_format": encoding}
    reply = post(server, "/embeddings", body).json()
    assert violations("CreateEmbeddingResponse", reply) == []


def test_lists_and_files_match_the_document(web: InProcessServer) -> None:
    base = web.base_url
    uploaded = web.post(
        f"{base}/v1/files",
        files={"file": ("a.jsonl", b"{}\n")},
        data={"purpose": "batch"},
        timeout=30,
    ).json()
    assert violations("OpenAIFile", uploaded) == []
    listed = web.get(f"{base}/v1/files", timeout=30).json()
    assert violations("ListFilesResponse", listed) == []
    batches = web.get(f"{base}/v1/batches", timeout=30).json()
    assert violations("ListBatchesResponse", batches) == []
    models = web.get(f"{base}/v1/models", timeout=30).json()
    assert violations("ListModelsResponse", models) == []
    web.delete(f"{base}/v1/files/{uploaded['id']}", timeout=30)
