"""Reading a forced tool call as it is written, and a call cut short, from the text a
grammar-bound answer has: ``workers.engine.tool_stream``."""

from __future__ import annotations

import json

from workers.engine.tool_stream import ForcedCallStream, close_partial_object, partial_call
from workers.engine.tools import ToolCallHold, plan_tools

WRAPPER = '{ "name": "get_weather", "arguments": { "city": "Paris", "days": [1, 2] } }'


def feed_in_pieces(stream: ForcedCallStream, text: str, size: int) -> list[dict[str, object]]:
    deltas = []
    for start in range(0, len(text), size):
        deltas += stream.feed(text[start : start + size])
    return deltas


def test_the_name_comes_first_then_the_arguments_without_the_wrapper() -> None:
    for size in (1, 3, 7, len(WRAPPER)):
        stream = ForcedCallStream(["get_weather"])
        deltas = feed_in_pieces(stream, WRAPPER, size)
        opening, *fragments = deltas
        assert opening == {"index": 0, "id": stream.id, "name": "get_weather", "arguments": ""}
        assert all(set(f) == {"index", "arguments"} for f in fragments)
        arguments = "".join(str(f["arguments"]) for f in fragments)
        assert json.loads(arguments) == {"city": "Paris", "days": [1, 2]}
        assert arguments.endswith("}") and not arguments.endswith("} }")
        call = stream.finish()
        assert call == {"id": stream.id, "name": "get_weather", "arguments": json.loads(arguments)}


def test_a_brace_inside_a_string_does_not_close_the_arguments() -> None:
    stream = ForcedCallStream(["note"])
    text = '{"name": "note", "arguments": {"text": "a } and a \\" {"}}'
    deltas = feed_in_pieces(stream, text, 2)
    arguments = "".join(str(d["arguments"]) for d in deltas)
    assert json.loads(arguments) == {"text": 'a } and a " {'}


def test_a_call_cut_short_is_still_a_call_with_what_was_written() -> None:
    stream = ForcedCallStream(["get_weather"])
    stream.feed('{ "name": "get_weather", "arguments": { "city": "Par')
    call = stream.finish()
    assert call is not None
    assert call["name"] == "get_weather" and call["partial"] is True
    assert call["arguments_text"] == '{ "city": "Par'
    assert call["arguments"] == {"city": "Par"}


def test_a_call_cut_before_its_name_ended_is_the_function_it_began() -> None:
    stream = ForcedCallStream(["get_time", "get_weather"])
    assert stream.feed('{"name": "get_w') == []
    call = stream.finish()
    assert call is not None and call["name"] == "get_weather"
    assert call["arguments"] == {} and call["arguments_text"] == ""


def test_what_a_cut_object_holds_whole_is_kept() -> None:
    assert close_partial_object('{"city": "Paris", "days": [1, 2') == {
        "city": "Paris",
        "days": [1, 2],
    }
    assert close_partial_object('{"city": "Paris", "celsius":') == {"city": "Paris"}
    assert close_partial_object('{"city": "Paris", "celsius": tr') == {"city": "Paris"}
    assert close_partial_object('{"a": {"b": 1}, "c": {"d"') == {"a": {"b": 1}}
    assert close_partial_object("") == {}


def test_an_offered_call_cut_short_is_a_call_only_when_it_names_an_offered_function() -> None:
    cut = '<tool_call>{"name": "get_weather", "arguments": {"city": "Os'
    call = partial_call(cut, ["get_weather"], forced=False)
    assert call is not None and call["arguments"] == {"city": "Os"}
    assert partial_call('{"name": "other", "arguments": {', ["get_weather"], forced=False) is None
    assert partial_call('{"title": "a list"', ["get_weather"], forced=False) is None


def test_the_hold_gives_a_cut_call_only_when_the_answer_was_cut() -> None:
    tools = [{"type": "function", "function": {"name": "get_weather"}}]
    text = '{"name": "get_weather", "arguments": {"city": "Li'
    for cut in (False, True):
        hold = ToolCallHold(plan_tools(tools, "auto"))
        assert hold.feed((text, 5, None)) == []
        calls, rest = hold.finish(cut)
        if cut:
            assert calls is not None and calls[0]["arguments"] == {"city": "Li"}
            assert rest == []
        else:
            assert calls is None and "".join(p[0] for p in rest) == text
