"""DRF validation errors as the APIs report them: the first error, named by its path."""

from __future__ import annotations

from typing import Any


def first_error(errors: Any) -> tuple[str | None, str]:
    """``({"messages": [{}, {"role": ["bad"]}]})`` -> ``("messages.1.role", "bad")``: the path
    of the first field in error (None for an error about the whole body) and its message."""
    path = ""
    while isinstance(errors, dict | list):
        if isinstance(errors, dict):
            key, errors = next(iter(errors.items()))
            if key != "non_field_errors":
                path = f"{path}.{key}" if path else str(key)
        else:
            index = next((i for i, e in enumerate(errors) if e), 0)
            inner = errors[index]
            if isinstance(inner, dict | list) and inner:
                path = f"{path}.{index}" if path else str(index)
            errors = inner
    return path or None, str(errors)
