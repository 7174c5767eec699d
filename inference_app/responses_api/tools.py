"""A Responses request's ``tools``: what the model sees, and what it cannot.

Agents send every tool they know, whatever the server (Codex CLI sends its functions, a
``namespace`` of more functions and OpenAI's hosted ``web_search``). Herd's models call
functions, so:

- a ``function`` tool is offered as it is;
- a ``namespace`` groups functions: each is offered under its own name, and a call of it
  names the namespace again (the ``function_call`` item's ``namespace``), as OpenAI answers;
- a tool that runs on OpenAI's side (``web_search``, ``file_search``, ``code_interpreter``,
  ``computer_use_preview``, ``image_generation``, ``mcp``, ...), one the client runs on a
  call Herd cannot write (``local_shell``, ``shell``, ``apply_patch``), and a ``custom``
  (freeform) tool, whose input Herd's grammars cannot hold to its format, is left out of what
  the model sees: the request goes on without it, as llama.cpp's server and Ollama do, and the
  log says so once per process and kind of tool. A ``tool_choice`` that forces such a tool
  is a 400 naming it: the model could not honour it.

The response echoes ``tools`` as the request sent them (``echoed``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from rest_framework import serializers

from inference_app.input_checks import StrictCharField
from inference_app.responses_api.bodies import FunctionTool
from project.json_types import JsonObject

log = logging.getLogger(__name__)

# The kinds of tool logged as left out so far (once each per process).
_logged: set[str] = set()


@dataclass
class ToolSet:
    """``functions``: the function tools the model sees, each as the request wrote it (with
    ``type``); ``namespaces``: a function's namespace, by the function's name; ``left_out``:
    each tool the model does not see, named as ``left_out_name`` names it; ``paths``: where
    each function is in the request's ``tools`` (``"2"``, ``"3.tools.0"``)."""

    functions: list[FunctionTool] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    namespaces: dict[str, str] = field(default_factory=dict)
    left_out: list[str] = field(default_factory=list)
    echoed: list[JsonObject] = field(default_factory=list)


def left_out_name(tool: JsonObject) -> str:
    """A left-out tool as the log and errors name it: its type, and its name if it has one
    (``custom 'apply_patch'``, ``mcp 'deepwiki'``)."""
    kind = str(tool.get("type"))
    label = tool.get("name") or tool.get("server_label")
    return f"{kind} {label!r}" if isinstance(label, str) and label else kind


def split_tools(data: Any) -> ToolSet:
    """``tools`` as the model will see them; raises ValidationError (its path relative to
    ``tools``) for a tool that is not an object with a string ``type``, or a function or
    namespace that is malformed."""
    if not isinstance(data, list):
        raise serializers.ValidationError("must be a list of tools")
    tools = ToolSet()
    for index, tool in enumerate(data):
        if not isinstance(tool, dict) or not isinstance(tool.get("type"), str):
            raise serializers.ValidationError(
                {str(index): ["a tool must be an object with a string 'type'"]}
            )
        tools.echoed.append(_echo(tool))
        if tool["type"] == "function":
            tools.functions.append(_function(tool, str(index)))
            tools.paths.append(str(index))
        elif tool["type"] == "namespace":
            _unpack_namespace(tool, str(index), tools)
        else:
            tools.left_out.append(left_out_name(tool))
    _check_unique(tools.functions)
    return tools


class FunctionToolSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=("function",))
    name = StrictCharField()
    description = StrictCharField(required=False, allow_null=True, allow_blank=True)
    parameters = serializers.DictField(required=False, allow_null=True)
    strict = serializers.BooleanField(required=False, allow_null=True)


def _function(tool: JsonObject, path: str) -> FunctionTool:
    serializer = FunctionToolSerializer(data=tool)
    if not serializer.is_valid():
        raise serializers.ValidationError({path: serializer.errors})
    validated: FunctionTool = serializer.validated_data
    return {**validated}


def _unpack_namespace(tool: JsonObject, path: str, tools: ToolSet) -> None:
    name = tool.get("name")
    if not isinstance(name, str) or not name:
        raise serializers.ValidationError({path: {"name": ["must be a non-empty string"]}})
    inner = tool.get("tools")
    if not isinstance(inner, list) or not inner:
        raise serializers.ValidationError({path: {"tools": ["must be a non-empty list"]}})
    for index, member in enumerate(inner):
        member_path = f"{path}.tools.{index}"
        if not isinstance(member, dict) or not isinstance(member.get("type"), str):
            raise serializers.ValidationError(
                {member_path: ["a tool must be an object with a string 'type'"]}
            )
        if member["type"] == "function":
            function = _function(member, member_path)
            tools.functions.append(function)
            tools.paths.append(member_path)
            tools.namespaces[function["name"]] = name
        else:
            tools.left_out.append(f"{left_out_name(member)} in namespace {name!r}")


def _check_unique(functions: list[FunctionTool]) -> None:
    seen: set[str] = set()
    for function in functions:
        if function["name"] in seen:
            raise serializers.ValidationError(
                f"two tools are named {function['name']!r}: the model could not tell them apart"
            )
        seen.add(function["name"])


def _echo(tool: JsonObject) -> JsonObject:
    """A tool as the response repeats it: a function with OpenAI's fields filled in, any
    other as sent."""
    if tool["type"] != "function":
        return dict(tool)
    return {
        "type": "function",
        "name": tool.get("name"),
        "description": tool.get("description"),
        "parameters": tool.get("parameters"),
        "strict": tool.get("strict"),
    }


def log_left_out(tools: ToolSet) -> None:
    """Name each kind of left-out tool in the log, the first time a request brings it."""
    for name in tools.left_out:
        if name in _logged:
            continue
        _logged.add(name)
        log.info(
            "/v1/responses: tool %s left out of what the model sees (this server cannot run it)",
            name,
        )
