"""Ollama's Modelfile: parse one into what ``/api/create`` takes, and write one that recreates a
model record.

The syntax is Ollama's: one instruction per line (``FROM``, ``TEMPLATE``, ``SYSTEM``,
``PARAMETER name value``, ``MESSAGE role content``, ``LICENSE``, ``ADAPTER``; and Herd's
``ALIAS name``, another name the model answers to), instructions in
any case, ``#`` comment lines, and values that are the rest of the line, a ``"quoted"`` string,
or a ``\"\"\"triple-quoted\"\"\"`` block over any number of lines. ``PARAMETER stop`` may repeat;
``LICENSE``, ``MESSAGE`` and ``ALIAS`` add one each. A mistake raises ModelfileError naming the
line and the instruction: ``line 4 (PARAMETER): unknown parameter 'tempreature'``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from models_app.parameters import ParameterError, coerce_parameter, parameter_lines

INSTRUCTIONS = (
    "FROM",
    "ADAPTER",
    "TEMPLATE",
    "SYSTEM",
    "PARAMETER",
    "MESSAGE",
    "LICENSE",
    # Herd's own: another name the model answers to (models_app.aliases), one per line.
    "ALIAS",
)
MESSAGE_ROLES = ("system", "user", "assistant")
_TRIPLE = '"""'


class ModelfileError(ValueError):
    def __init__(self, line: int, instruction: str, message: str) -> None:
        where = f"line {line} ({instruction})" if instruction else f"line {line}"
        super().__init__(f"{where}: {message}")
        self.line = line
        self.instruction = instruction


@dataclass
class Modelfile:
    """What a Modelfile says; ``from_line`` is where ``FROM`` was, for errors about it."""

    from_: str = ""
    from_line: int = 0
    # A second FROM: the model's vision projector (an mmproj GGUF), as Ollama takes it.
    projector: str = ""
    projector_line: int = 0
    template: str | None = None
    system: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    messages: list[dict[str, str]] = field(default_factory=list)
    licenses: list[str] = field(default_factory=list)
    aliases: list[str] = field(default_factory=list)

    def create_fields(self) -> dict[str, Any]:
        """The ``/api/create`` fields other than ``model``, ``from`` and ``files``."""
        fields: dict[str, Any] = {}
        if self.template is not None:
            fields["template"] = self.template
        if self.system is not None:
            fields["system"] = self.system
        if self.parameters:
            fields["parameters"] = self.parameters
        if self.messages:
            fields["messages"] = self.messages
        if self.licenses:
            fields["license"] = self.licenses
        if self.aliases:
            fields["aliases"] = self.aliases
        return fields


def _read_value(text: str, start: int, line: int, instruction: str) -> tuple[str, int, int]:
    """The value at ``text[start:]``: ``(value, index after it, lines consumed)``."""
    rest = text[start:]
    if rest.startswith(_TRIPLE):
        end = text.find(_TRIPLE, start + 3)
        if end < 0:
            raise ModelfileError(line, instruction, 'unterminated """ block')
        value = text[start + 3 : end]
        after = end + 3
        tail_end = text.find("\n", after)
        tail = text[after : tail_end if tail_end >= 0 else len(text)]
        if tail.strip():
            raise ModelfileError(line, instruction, f'unexpected text after """: {tail.strip()!r}')
        return value, tail_end + 1 if tail_end >= 0 else len(text), value.count("\n") + 1
    eol = text.find("\n", start)
    raw = text[start : eol if eol >= 0 else len(text)].strip()
    nxt = eol + 1 if eol >= 0 else len(text)
    if raw.startswith('"'):
        try:
            decoded, used = json.JSONDecoder().raw_decode(raw)
        except ValueError:
            raise ModelfileError(line, instruction, f"not a valid quoted string: {raw}") from None
        if not isinstance(decoded, str) or raw[used:].strip():
            raise ModelfileError(line, instruction, f"unexpected text after the string: {raw!r}")
        return decoded, nxt, 1
    return raw, nxt, 1


def parse_modelfile(text: str) -> Modelfile:
    """Parse a Modelfile. Raises ModelfileError."""
    result = Modelfile()
    text = text.replace("\r\n", "\n")
    index, line = 0, 1
    while index < len(text):
        eol = text.find("\n", index)
        current = text[index : eol if eol >= 0 else len(text)]
        stripped = current.strip()
        if not stripped or stripped.startswith("#"):
            index = eol + 1 if eol >= 0 else len(text)
            line += 1
            continue
        word = stripped.split(maxsplit=1)[0]
        instruction = word.upper()
        if instruction not in INSTRUCTIONS:
            raise ModelfileError(
                line, word, "unknown instruction; one of " + ", ".join(INSTRUCTIONS) + " expected"
            )
        offset = index + (len(current) - len(current.lstrip())) + len(word)
        while offset < len(text) and text[offset] in " \t":
            offset += 1
        argument = ""
        if instruction in ("PARAMETER", "MESSAGE"):
            eol_here = text.find("\n", offset)
            head = text[offset : eol_here if eol_here >= 0 else len(text)]
            argument = head.split(maxsplit=1)[0] if head.strip() else ""
            if not argument:
                what = "a name and a value" if instruction == "PARAMETER" else "a role and content"
                raise ModelfileError(line, instruction, f"expected {what}")
            offset += len(argument)
            while offset < len(text) and text[offset] in " \t":
                offset += 1
        value, index, used = _read_value(text, offset, line, instruction)
        _apply(result, instruction, argument, value, line)
        line += used
    if not result.from_:
        raise ModelfileError(line - 1 if line > 1 else 1, "FROM", "no FROM line")
    return result


def _apply(result: Modelfile, instruction: str, argument: str, value: str, line: int) -> None:
    if instruction != "LICENSE" and instruction != "SYSTEM" and not value:
        raise ModelfileError(line, instruction, "expected a value")
    if instruction == "FROM":
        if result.from_:
            first = result.from_line
            if result.projector or not value.lower().endswith(".gguf"):
                raise ModelfileError(
                    line,
                    instruction,
                    f"a second FROM (the first is on line {first}) names the model's vision "
                    "projector, one .gguf file",
                )
            result.projector, result.projector_line = value, line
            return
        result.from_, result.from_line = value, line
    elif instruction == "ADAPTER":
        raise ModelfileError(line, instruction, "LoRA adapters are not supported by Herd")
    elif instruction == "TEMPLATE":
        result.template = value
    elif instruction == "SYSTEM":
        result.system = value
    elif instruction == "LICENSE":
        result.licenses.append(value)
    elif instruction == "ALIAS":
        result.aliases.append(value)
    elif instruction == "MESSAGE":
        role = argument.lower()
        if role not in MESSAGE_ROLES:
            message = f"role must be one of system, user or assistant, not {argument!r}"
            raise ModelfileError(line, instruction, message)
        result.messages.append({"role": role, "content": value})
    elif instruction == "PARAMETER":
        name = argument.lower()
        try:
            typed = coerce_parameter(name, value)
        except ParameterError as exc:
            raise ModelfileError(line, instruction, str(exc)) from None
        if name == "stop":
            result.parameters.setdefault("stop", []).extend(typed)
        else:
            result.parameters[name] = typed


def _quoted(value: str) -> str:
    if _TRIPLE in value:
        # A triple-quoted block cannot hold three quotes: write it as one JSON string.
        return json.dumps(value)
    return f"{_TRIPLE}{value}{_TRIPLE}"


def render_modelfile(
    name: str,
    source: str,
    *,
    template: str,
    system: str,
    parameters: dict[str, Any],
    messages: list[dict[str, Any]],
    license_: str,
    aliases: list[str] | None = None,
    projector: str = "",
) -> str:
    """A Modelfile that recreates the model ``name`` from ``source`` (its file) and its vision
    ``projector``, if it has one."""
    lines = [
        '# Modelfile generated by "herd show"',
        "# To build a new Modelfile based on this, replace FROM with:",
        f"# FROM {name}",
        "",
        f"FROM {source}",
    ]
    if projector:
        lines.append(f"FROM {projector}")
    if template:
        lines.append(f"TEMPLATE {_quoted(template)}")
    if system:
        lines.append(f"SYSTEM {_quoted(system)}")
    for key, shown in parameter_lines(parameters):
        lines.append(f"PARAMETER {key} {shown}")
    for message in messages:
        lines.append(f"MESSAGE {message['role']} {_quoted(str(message.get('content', '')))}")
    if license_:
        lines.append(f"LICENSE {_quoted(license_)}")
    for alias in aliases or ():
        lines.append(f"ALIAS {alias}")
    return "\n".join(lines) + "\n"
