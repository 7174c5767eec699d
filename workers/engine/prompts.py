"""Turn chat messages into a prompt with the model's Jinja chat template."""

from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache
from typing import Any

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment


class TemplateError(ValueError):
    """The messages cannot be rendered with this template (the template says why)."""


def _raise_exception(message: str) -> None:
    raise TemplateError(message)


@lru_cache(maxsize=32)
def _compile(template: str) -> jinja2.Template:
    environment = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=["jinja2.ext.loopcontrols"]
    )
    environment.globals["raise_exception"] = _raise_exception
    environment.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return environment.from_string(template)


def message_text(content: Any) -> str:
    """OpenAI content may be a string or a list of parts; templates want a string."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") for part in content if part.get("type") == "text")


def supports_tools(template: str) -> bool:
    """Whether the template renders a ``tools`` variable itself (Hugging Face convention)."""
    return "tools" in template


# Schema keywords that say nothing to a model choosing and writing a call, only to validators
# and code generators: left out of the definitions a template without tools reads.
_SCHEMA_NOISE = frozenset({"title", "$schema", "$id", "strict"})
# Keywords whose value maps names (of properties, definitions) to schemas.
_NAMED_SCHEMAS = frozenset({"properties", "patternProperties", "$defs", "definitions"})
# Keywords whose value is data, not a schema.
_DATA = frozenset({"enum", "const", "default", "examples", "required"})


def lean_definition(function: dict[str, Any]) -> str:
    """One function as one compact JSON line: name, description (its whitespace collapsed)
    and parameters, in the order they were given, without schema keywords a model has no use
    for."""
    entry: dict[str, Any] = {"name": function["name"]}
    description = " ".join(str(function.get("description") or "").split())
    if description:
        entry["description"] = description
    if function.get("parameters"):
        entry["parameters"] = _lean_schema(function["parameters"])
    return json.dumps(entry, separators=(",", ":"), ensure_ascii=False)


def _lean_schema(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_lean_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    lean: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _SCHEMA_NOISE or (key == "additionalProperties" and isinstance(value, bool)):
            continue
        if key in _NAMED_SCHEMAS and isinstance(value, dict):
            lean[key] = {name: _lean_schema(sub) for name, sub in value.items()}
        else:
            lean[key] = value if key in _DATA else _lean_schema(value)
    return lean


def tool_instructions(functions: list[dict[str, Any]]) -> str:
    """A system text offering ``functions``, for templates that cannot render tools: one line
    per function, so that leaving functions out (to fit the context) never cuts one."""
    listed = "\n".join(lean_definition(f) for f in functions)
    return (
        "You can call these functions:\n"
        f"{listed}\n"
        "To call one, answer with only "
        '<tool_call>{"name": "<function name>", "arguments": {<arguments>}}</tool_call>.'
    )


def _for_template(message: dict[str, Any], tools_native: bool) -> dict[str, Any]:
    """Templates want string content and tool-call arguments as objects (OpenAI sends them as
    JSON strings); a template without tool support gets calls and results as plain turns."""
    out = {**message, "content": message_text(message.get("content"))}
    calls = [
        {**call, "function": {**call["function"], "arguments": _arguments(call["function"])}}
        for call in message.get("tool_calls") or []
    ]
    if calls:
        out["tool_calls"] = calls
    if tools_native:
        return out
    if calls:
        rendered = "".join(
            "<tool_call>"
            + json.dumps({"name": c["function"]["name"], "arguments": c["function"]["arguments"]})
            + "</tool_call>"
            for c in calls
        )
        out = {"role": out["role"], "content": out["content"] + rendered}
    if out["role"] == "tool":
        name = message.get("tool_name") or message.get("name") or message.get("tool_call_id")
        out = {"role": "user", "content": f"Result of {name}: {out['content']}"}
    return out


def _arguments(function: dict[str, Any]) -> Any:
    arguments = function.get("arguments")
    if isinstance(arguments, str):
        try:
            return json.loads(arguments)
        except ValueError:
            return arguments
    return arguments if arguments is not None else {}


def render_chat_prompt(
    template: str,
    messages: list[dict[str, Any]],
    *,
    bos_token: str,
    eos_token: str,
    system_prompt: str = "",
    tools: list[dict[str, Any]] | None = None,
    variables: dict[str, Any] | None = None,
) -> str:
    """Render ``messages`` (OpenAI shape) for generation; the record's system prompt comes
    first unless the messages bring their own. ``tools`` (OpenAI function tools) go to the
    template's ``tools`` variable, or into the system text when the template has none.
    ``variables`` are further template variables (``suffix``, ``enable_thinking``)."""
    if not template:
        raise TemplateError("this model has no chat template: set one on its record")
    native = supports_tools(template)
    normalized = [_for_template(m, native) for m in messages]
    if system_prompt and not any(m["role"] == "system" for m in normalized):
        normalized.insert(0, {"role": "system", "content": system_prompt})
    if tools and not native:
        offer = tool_instructions([t["function"] for t in tools])
        if normalized and normalized[0]["role"] == "system":
            first = normalized[0]
            normalized[0] = {**first, "content": f"{first['content']}\n\n{offer}"}
        else:
            normalized.insert(0, {"role": "system", "content": offer})
    context: dict[str, Any] = dict(variables or {})
    if tools and native:
        context["tools"] = tools
    later = [m for m in normalized[1:] if m["role"] == "system"]
    if later:
        # A system message after the first (Claude Code sends one mid-conversation): kept
        # at its place where the template renders it there, else folded into a user turn.
        try:
            prompt = _render(template, normalized, bos_token, eos_token, context)
        except TemplateError:
            prompt = None
        if prompt is not None and all(m["content"].strip() in prompt for m in later):
            return prompt
        normalized = fold_later_system_messages(normalized)
    return _render(template, normalized, bos_token, eos_token, context)


def _render(
    template: str,
    messages: list[dict[str, Any]],
    bos_token: str,
    eos_token: str,
    context: dict[str, Any],
) -> str:
    try:
        return _compile(template).render(
            messages=messages,
            bos_token=bos_token,
            eos_token=eos_token,
            add_generation_prompt=True,
            **context,
        )
    except jinja2.TemplateError as exc:
        raise TemplateError(f"chat template failed: {exc}") from exc


def fold_later_system_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``messages`` with each system message after the first merged into the nearest user
    turn: the next one (its text first), else the last one before it (its text after); with
    no user turn at all, it becomes one. A leading system message stays where it is."""
    out: list[dict[str, Any]] = []
    waiting: list[str] = []  # system texts for the next user turn
    for index, message in enumerate(messages):
        if message["role"] == "system" and index > 0:
            waiting.append(message["content"])
        elif message["role"] == "user" and waiting:
            out.append({**message, "content": "\n\n".join([*waiting, message["content"]])})
            waiting = []
        else:
            out.append(message)
    if waiting:
        last_user = next((i for i in range(len(out) - 1, -1, -1) if out[i]["role"] == "user"), None)
        if last_user is None:
            out.append({"role": "user", "content": "\n\n".join(waiting)})
        else:
            user = out[last_user]
            out[last_user] = {**user, "content": "\n\n".join([user["content"], *waiting])}
    return out
