"""How the APIs show a model record (``ModelRecord.ollama_details``, ``to_ollama``,
``to_openai``), as typed dictionaries."""

from __future__ import annotations

from typing import Literal, TypedDict


class OllamaDetails(TypedDict, total=False):
    """Ollama's ``details`` object (``/api/tags``, ``/api/show``, ``/api/ps``); a model no
    record describes any longer has the first four fields only."""

    parent_model: str
    format: Literal["gguf"]
    family: str
    families: list[str] | None
    parameter_size: str
    quantization_level: str


class OllamaModel(TypedDict):
    """One entry of ``/api/tags``."""

    name: str
    model: str
    modified_at: str | None
    size: int
    digest: str
    details: OllamaDetails


class OpenAIModel(TypedDict):
    """One entry of ``/v1/models``."""

    id: str
    object: Literal["model"]
    created: int
    owned_by: str
