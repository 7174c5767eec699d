"""A model's parameters (Ollama's Modelfile ``PARAMETER`` and ``/api/create``'s
``parameters``): their names, their types, and the values each may take.

Values arrive as text from a Modelfile and as JSON from the API; ``coerce_parameters`` turns
either into the typed values a record keeps in ``default_options``. ``stop`` may be given
many times and is always a list.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypedDict

from workers.kv_cache import CACHE_TYPES

# Ollama's option names and types (api.Options and api.Runner). Herd uses the sampling and
# context ones; the rest are accepted and kept, as Ollama's runner ignores what its backend
# lacks.
PARAMETER_TYPES: dict[str, type] = {
    "num_ctx": int,
    "num_predict": int,
    "num_keep": int,
    "num_batch": int,
    "num_gpu": int,
    "main_gpu": int,
    "num_thread": int,
    "repeat_last_n": int,
    "seed": int,
    "top_k": int,
    "mirostat": int,
    "temperature": float,
    "top_p": float,
    "min_p": float,
    "typical_p": float,
    "repeat_penalty": float,
    "presence_penalty": float,
    "frequency_penalty": float,
    "mirostat_tau": float,
    "mirostat_eta": float,
    "use_mmap": bool,
    "penalize_newline": bool,
    "stop": list,
    # Herd's own: the type the model's KV cache is kept in, over the worker's
    # HERD_KV_CACHE_TYPE (workers.kv_cache).
    "kv_cache_type": str,
}

# The values a text parameter may take.
PARAMETER_CHOICES: dict[str, tuple[str, ...]] = {"kv_cache_type": tuple(CACHE_TYPES)}


class ModelOptions(TypedDict, total=False):
    """A record's ``default_options``: the parameters above, typed, and Herd's own
    ``truncate`` (cut a prompt longer than the context down to fit, on ``/v1`` too)."""

    num_ctx: int
    num_predict: int
    num_keep: int
    num_batch: int
    num_gpu: int
    main_gpu: int
    num_thread: int
    repeat_last_n: int
    seed: int
    top_k: int
    mirostat: int
    temperature: float
    top_p: float
    min_p: float
    typical_p: float
    repeat_penalty: float
    presence_penalty: float
    frequency_penalty: float
    mirostat_tau: float
    mirostat_eta: float
    use_mmap: bool
    penalize_newline: bool
    stop: list[str]
    kv_cache_type: str
    truncate: bool


_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


class ParameterError(ValueError):
    """A parameter with an unknown name or a value of the wrong type."""


def _one(name: str, kind: type, value: Any) -> Any:
    if kind is list:
        items = value if isinstance(value, list) else [value]
        if not all(isinstance(item, str) for item in items):
            raise ParameterError(f"parameter '{name}' must be a string or a list of strings")
        return list(items)
    if kind is str:
        choices = PARAMETER_CHOICES[name]
        text = value.strip() if isinstance(value, str) else value
        if text not in choices:
            raise ParameterError(
                f"parameter '{name}' must be one of {', '.join(choices)}, got {value!r}"
            )
        return text
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in (*_TRUE, *_FALSE):
            return value.strip().lower() in _TRUE
        raise ParameterError(f"parameter '{name}' must be true or false, got {value!r}")
    if isinstance(value, bool):
        raise ParameterError(f"parameter '{name}' must be a number, got {value!r}")
    try:
        if kind is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value) if not isinstance(value, str) else int(value.strip())
        return float(value)
    except (TypeError, ValueError):
        what = "an integer" if kind is int else "a number"
        raise ParameterError(f"parameter '{name}' must be {what}, got {value!r}") from None


def coerce_parameter(name: str, value: Any) -> Any:
    """One parameter's value, typed. Raises ParameterError."""
    kind = PARAMETER_TYPES.get(name)
    if kind is None:
        raise ParameterError(f"unknown parameter '{name}'")
    return _one(name, kind, value)


def coerce_parameters(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Every parameter of ``raw``, typed. Raises ParameterError naming the first bad one."""
    return {name: coerce_parameter(name, value) for name, value in raw.items()}


def parameter_lines(options: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(name, value)`` pairs as a Modelfile writes them: one per list item, strings quoted."""
    lines = []
    for name, value in sorted(options.items()):
        for item in value if isinstance(value, list) else [value]:
            shown = json.dumps(item) if isinstance(item, str) else str(item).lower()
            lines.append((name, shown))
    return lines
