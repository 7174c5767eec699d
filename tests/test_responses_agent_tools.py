"""``/v1/responses`` with the tools coding agents send: function tools grouped in a
``namespace`` reach the model one by one (and a call of one names its namespace), tools Herd
cannot run are left out of what the model sees (named once in the log), a ``tool_choice`` that
forces one of those is a 400 naming it, and the response repeats ``tools`` as sent."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.live import LiveServer

EXEC = {
    "type": "function",
    "name": "exec_command",
    "description": "Runs a command",
    "parameters": {
        "type": "object",
        "properties": {"cmd": {"type": "string"}},
        "required": ["cmd"],
        "additionalProperties": False,
    },
    "strict": False,
}
SPAWN = {
    "type": "function",
    "name": "spawn_agent",
    "description": "Starts a helper agent",
    "parameters": {
        "type": "object",
        "properties": {"task": {"type": "string", "enum": ["tests", "docs"]}},
        "required": ["task"],
        "additionalProperties": False,
    },
    "strict": True,
}
NAMESPACE = {
    "type": "namespace",
    "name": "multi_agent_v1",
    "description": "Helper agents",
    "tools": [SPAWN, {**SPAWN, "name": "wait_agent", "description": "Waits for one"}],
}
# Tools that run on OpenAI's side or need a call Herd cannot write: left out.
HOSTED: list[dict[str, Any]] = [
    {"type": "web_search", "external_web_access": False},
    {"type": "file_search", "vector_store_ids": ["vs_1"]},
    {"type": "code_interpreter", "container": {"type": "auto"}},
    {"type": "image_generation"},
    {"type": "mcp", "server_label": "deepwiki", "server_url": "https://example.invalid/mcp"},
    {"type": "local_shell"},
    {
        "type": "custom",
        "name": "apply_patch",
        "description": "Edits files",
        "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"},
    },
]
AGENT_TOOLS: list[dict[str, Any]] = [EXEC, NAMESPACE, *HOSTED]


def create(server: LiveServer, **fields: Any) -> httpx.Response:
    body = {"model": "tiny", "max_output_tokens": 64, "store": False, **fields}
    return httpx.post(f"{server.base_url}/v1/responses", json=body, timeout=60)


def function_calls(reply: dict[str, Any]) -> list[dict[str, Any]]:
    return [item for item in reply["output"] if item["type"] == "function_call"]


def test_an_agents_whole_tool_set_is_accepted_and_echoed_as_sent(server: LiveServer) -> None:
    reply = create(server, input="Say hello", tools=AGENT_TOOLS)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["status"] in ("completed", "incomplete")
    assert body["tools"] == AGENT_TOOLS


def test_a_namespaces_function_is_called_by_its_name_with_its_namespace(
    server: LiveServer,
) -> None:
    reply = create(
        server,
        input="Start a helper",
        tools=AGENT_TOOLS,
        tool_choice={"type": "function", "name": "spawn_agent"},
    )
    assert reply.status_code == 200, reply.text
    (call,) = function_calls(reply.json())
    assert (call["name"], call["namespace"]) == ("spawn_agent", "multi_agent_v1")
    assert json.loads(call["arguments"])["task"] in ("tests", "docs")

    # A top-level function's call names no namespace.
    reply = create(
        server,
        input="List files",
        tools=AGENT_TOOLS,
        tool_choice={"type": "function", "name": "exec_command"},
    )
    (call,) = function_calls(reply.json())
    assert call["name"] == "exec_command" and "namespace" not in call

    # The call goes back as the agent sends it (with its namespace), and its output after it.
    follow = create(
        server,
        input=[
            {"role": "user", "content": "Start a helper"},
            {
                "type": "function_call",
                "call_id": "call_1",
                "name": "spawn_agent",
                "namespace": "multi_agent_v1",
                "arguments": '{"task": "docs"}',
            },
            {"type": "function_call_output", "call_id": "call_1", "output": "started"},
        ],
        tools=AGENT_TOOLS,
        tool_choice="none",
    )
    assert follow.status_code == 200, follow.text
    assert follow.json()["output"][0]["type"] == "message"


def test_a_streamed_call_of_a_namespaces_function_names_its_namespace(
    server: LiveServer,
) -> None:
    body = {
        "model": "tiny",
        "input": "Start a helper",
        "tools": AGENT_TOOLS,
        "tool_choice": {"type": "function", "name": "wait_agent"},
        "store": False,
        "stream": True,
    }
    with httpx.stream("POST", f"{server.base_url}/v1/responses", json=body, timeout=60) as streamed:
        assert streamed.status_code == 200
        text = streamed.read().decode()
    events = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]
    items = [e["item"] for e in events if e["type"].startswith("response.output_item.")]
    assert items and all(item["namespace"] == "multi_agent_v1" for item in items)
    (final,) = [e["response"] for e in events if e["type"] == "response.completed"]
    (call,) = function_calls(final)
    assert (call["name"], call["namespace"]) == ("wait_agent", "multi_agent_v1")


@pytest.mark.parametrize(
    ("choice", "named"),
    [
        ({"type": "web_search"}, "web_search"),
        ({"type": "custom", "name": "apply_patch"}, "custom 'apply_patch'"),
        ({"type": "mcp", "server_label": "deepwiki"}, "mcp 'deepwiki'"),
        ({"type": "image_generation"}, "image_generation"),
    ],
)
def test_a_tool_choice_that_forces_a_left_out_tool_is_a_400_naming_it(
    server: LiveServer, choice: dict[str, Any], named: str
) -> None:
    reply = create(server, input="hi", tools=AGENT_TOOLS, tool_choice=choice)
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert error["param"] == "tool_choice"
    assert named in error["message"]


def test_each_left_out_tool_is_named_once_in_the_log(server: LiveServer) -> None:
    for _ in range(2):
        assert create(server, input="hi", tools=AGENT_TOOLS).status_code == 200
    log = server.log_path.read_text()
    for named in (
        "web_search",
        "file_search",
        "code_interpreter",
        "image_generation",
        "mcp 'deepwiki'",
        "local_shell",
        "custom 'apply_patch'",
    ):
        lines = [line for line in log.splitlines() if f"tool {named} left out" in line]
        assert len(lines) == 1, (named, lines)
        assert " INFO " in lines[0]


def test_errors_name_the_responses_fields(server: LiveServer) -> None:
    # A namespace's function with a schema that is no schema: named where the request has it.
    broken = {**SPAWN, "parameters": {"type": "object", "properties": {"task": {"type": 7}}}}
    reply = create(server, input="hi", tools=[EXEC, {**NAMESPACE, "tools": [broken]}])
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"]["param"].startswith("tools.1.tools.0.parameters")

    # A prompt longer than the context: the worker's refusal names ``input``.
    reply = create(server, input="hello " * 5000)
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert (error["code"], error["param"]) == ("context_length_exceeded", "input")
