"""Reading tool calls out of generated text (``workers.engine.tools``), the ways models write
them."""

from __future__ import annotations

from typing import Any

from workers.engine.tools import ToolCallHold, ToolPlan, call_schema, parse_tool_calls, plan_tools

NAMES = {"get_weather", "get_time"}


def test_it_reads_a_tagged_call() -> None:
    text = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}}\n</tool_call>'
    (call,) = parse_tool_calls(text, NAMES) or []
    assert call["name"] == "get_weather" and call["arguments"] == {"city": "Oslo"}
    assert call["id"].startswith("call_")


def test_it_reads_several_tagged_calls_and_string_arguments() -> None:
    text = (
        '<tool_call>{"name": "get_time", "arguments": "{\\"zone\\": \\"UTC\\"}"}</tool_call>'
        '<tool_call>{"name": "get_weather", "parameters": {"city": "Lima"}}</tool_call>'
    )
    calls = parse_tool_calls(text, NAMES) or []
    assert [(c["name"], c["arguments"]) for c in calls] == [
        ("get_time", {"zone": "UTC"}),
        ("get_weather", {"city": "Lima"}),
    ]


def test_it_reads_bare_and_fenced_json_calls() -> None:
    assert parse_tool_calls('{"name": "get_time", "arguments": {}}', NAMES)
    assert parse_tool_calls('```json\n[{"name": "get_time", "arguments": {}}]\n```', NAMES)


def test_text_that_is_not_a_call_of_an_offered_tool_is_not_a_call() -> None:
    assert parse_tool_calls("the weather is fine", NAMES) is None
    assert parse_tool_calls('{"name": "delete_everything", "arguments": {}}', NAMES) is None
    assert parse_tool_calls('{"answer": "yes"}', NAMES) is None
    assert parse_tool_calls('<tool_call>{"name": "get_time", "argu', NAMES) is None
    assert parse_tool_calls('{"name": "get_time", "arguments": 3}', NAMES) is None


def test_the_hold_passes_prose_through_at_once() -> None:
    hold = ToolCallHold(ToolPlan("auto", [{"name": "get_time"}]))
    assert hold.feed((" ", 1, None)) == []
    assert hold.feed(("Hi", 1, None)) == [(" ", 1, None), ("Hi", 1, None)]
    assert hold.feed((" there", 1, None)) == [(" there", 1, None)]
    assert hold.finish() == (None, [])


def test_the_hold_keeps_a_call_back_and_returns_it_at_the_end() -> None:
    hold = ToolCallHold(ToolPlan("auto", [{"name": "get_time"}]))
    for piece in ["<tool", "_call>", '{"name": "get_time", ', '"arguments": {}}</tool_call>']:
        assert hold.feed((piece, 1, None)) == []
    calls, rest = hold.finish()
    assert calls and calls[0]["name"] == "get_time" and rest == []


def test_held_text_that_is_no_call_after_all_comes_back_as_text() -> None:
    hold = ToolCallHold(ToolPlan("auto", [{"name": "get_time"}]))
    assert hold.feed(("{not json", 2, None)) == []
    assert hold.finish() == (None, [("{not json", 2, None)])


def test_required_and_named_choices_force_a_call_schema() -> None:
    tools: list[dict[str, Any]] = [
        {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}},
        {"type": "function", "function": {"name": "get_weather"}},
    ]
    assert plan_tools(tools, "none").mode == "none"
    assert plan_tools(tools, None).mode == "auto"
    required = plan_tools(tools, "required")
    assert required.mode == "forced" and required.schema == call_schema(
        [t["function"] for t in tools]
    )
    assert required.schema is not None and len(required.schema["anyOf"]) == 2
    named = plan_tools(tools, {"type": "function", "function": {"name": "get_weather"}})
    assert named.schema is not None
    assert named.schema["properties"]["name"] == {"const": "get_weather"}
