"""JSON as a type: what a value read from (or written to) a JSON document can be.

For the places that hold JSON no schema of Herd's describes (a tool's JSON schema, a call's
arguments, a client's metadata): a reader narrows with ``isinstance`` before it uses a
value, where ``Any`` would let it use one unchecked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeAlias

JsonValue: TypeAlias = "bool | int | float | str | list[JsonValue] | dict[str, JsonValue] | None"
JsonObject: TypeAlias = "dict[str, JsonValue]"

# JSON to be written: read-only, so a ``list[str]`` or a ``dict[str, int]`` is one too.
JsonData: TypeAlias = (
    "bool | int | float | str | Sequence[JsonData] | Mapping[str, JsonData] | None"
)
JsonMapping: TypeAlias = "Mapping[str, JsonData]"
