"""Checks every API's request serializers share, for input the field types let through but
nothing after them can take: text that is not Unicode (lone surrogates, which JSON's
``\\ud800`` escapes can spell), JSON schemas nested deeper than any validator or grammar
converter recurses, and strings sent where the spec says string but DRF would coerce a number
to one.
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from rest_framework import serializers

from project.json_types import JsonObject

# OpenAI allows 10 levels of object nesting in a structured-output schema; each level is a
# schema inside a ``properties`` object, two JSON levels, plus room for combinators.
MAX_SCHEMA_DEPTH = 48
# As ModelRecord.name stores it.
MAX_MODEL_NAME = 200
# What a signed 32-bit C int holds: llama.cpp's token counts, top_k and context sizes are
# ints, and a bigger number wraps around on its way in.
MAX_C_INT = 2**31 - 1


def json_depth(value: Any) -> int:
    """How deeply ``value`` nests lists and objects (a scalar is 0, ``{}`` is 1); iterative,
    so a deep value cannot exhaust the stack here."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        deepest = max(deepest, depth + 1)
        pending.extend((child, depth + 1) for child in children)
    return deepest


def check_json_schema(value: Any) -> JsonObject:
    """``value`` when it is a JSON schema (2020-12) nested at most ``MAX_SCHEMA_DEPTH`` deep;
    raises ValidationError otherwise."""
    if not isinstance(value, dict):
        raise serializers.ValidationError("must be a JSON schema object")
    if json_depth(value) > MAX_SCHEMA_DEPTH:
        raise serializers.ValidationError(f"nested deeper than {MAX_SCHEMA_DEPTH} levels")
    try:
        Draft202012Validator.check_schema(value)
    except SchemaError as exc:
        raise serializers.ValidationError(f"not a valid JSON schema: {exc.message}") from exc
    return value


def lone_surrogate_at(data: Any) -> str | None:
    """The dotted path of the first string (or object key) in ``data`` that UTF-8 cannot
    encode, or None. The root's own path is ``""``."""
    pending: list[tuple[Any, str]] = [(data, "")]
    while pending:
        item, path = pending.pop()
        if isinstance(item, str):
            if not _encodable(item):
                return path
        elif isinstance(item, dict):
            for key, child in item.items():
                child_path = f"{path}.{key}" if path else str(key)
                if isinstance(key, str) and not _encodable(key):
                    return path or "body"
                pending.append((child, child_path))
        elif isinstance(item, list):
            pending.extend(
                (child, f"{path}.{i}" if path else str(i)) for i, child in enumerate(item)
            )
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class UnicodeBody(serializers.Serializer):
    """A request body's serializer that refuses, before any field sees it, text UTF-8 cannot
    encode: the worker tokenizes UTF-8, and a lone surrogate would fail there as a 500."""

    def to_internal_value(self, data: Any) -> Any:
        path = lone_surrogate_at(data)
        if path is not None:
            raise serializers.ValidationError(
                {path or "body": ["contains a lone surrogate, which is not valid Unicode text"]}
            )
        return super().to_internal_value(data)


class StrictCharField(serializers.CharField):
    """A string, and only a string: DRF's CharField turns ``12345`` into ``"12345"``, where
    the specs (and OpenAI and Ollama themselves) answer 400."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)
