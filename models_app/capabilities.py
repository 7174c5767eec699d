"""What a model can be asked for, in Ollama's ``capabilities`` words, derived as Ollama derives
them (from the GGUF header and the chat template) and kept to what Herd's endpoints accept.

- ``embedding``: always, since ``/api/embed`` and ``/v1/embeddings`` pool any model's hidden
  states; a model whose header declares a pooling type is an embedding model and has nothing
  else.
- ``rerank``: a model whose header declares rank pooling (llama.cpp's
  ``LLAMA_POOLING_TYPE_RANK``, a reranker with a classifier head): ``/v1/rerank`` takes it,
  and it has nothing else.
- ``completion``: every other model.
- ``tools``: a model with a chat template. Herd offers tools to any template, in its ``tools``
  variable or, for a template without one, as a system instruction, and forces a call with a
  grammar, so ``/api/chat`` and ``/v1/chat/completions`` take ``tools`` for every such model.
- ``insert``: the template uses ``suffix`` (fill-in-the-middle); ``/api/generate`` then takes
  a ``suffix`` and refuses it otherwise.
- ``thinking``: the model reasons in a block of its own (``<think>...</think>`` and the like):
  its template writes one or takes ``enable_thinking``, or its record names the tags
  (``reasoning_tags``). The endpoints then answer its reasoning apart from its answer, and
  ``/api/chat`` refuses ``think: true`` for any other model.
- ``vision``: the record has a vision projector (an ``mmproj`` GGUF beside the model); the
  chat endpoints of every API family then take images, and refuse them for any other model.
"""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ValidationError

# A template variable that Jinja reads: ``suffix`` alone, not ``suffixes`` or ``my_suffix``.
_SUFFIX = re.compile(r"\bsuffix\b")
# Reasoning blocks as chat templates write them, each with its closing tag.
_THINKING_TAGS = (
    ("<think>", "</think>"),
    ("<thinking>", "</thinking>"),
    ("<|begin_of_thought|>", "<|end_of_thought|>"),
    ("<seed:think>", "</seed:think>"),
)


def derive_capabilities(
    architecture: str,
    model_info: dict[str, Any],
    chat_template: str,
    tags_setting: str = "",
    has_projector: bool = False,
) -> list[str]:
    """The capabilities of a model with this header (``model_info``, the GGUF keys), chat
    template, ``reasoning_tags`` setting and vision projector (``has_projector``), in
    Ollama's order."""
    pooling = model_info.get(f"{architecture}.pooling_type")
    if pooling is not None:
        return ["rerank"] if _is_rank(pooling) else ["embedding"]
    capabilities = ["completion"]
    if chat_template:
        capabilities.append("tools")
        if _SUFFIX.search(chat_template):
            capabilities.append("insert")
        if has_projector:
            capabilities.append("vision")
    capabilities.append("embedding")
    if reasoning_tags(chat_template, tags_setting) is not None:
        capabilities.append("thinking")
    return capabilities


# llama.cpp's LLAMA_POOLING_TYPE_RANK, as a GGUF header writes it.
_RANK_POOLING = 4


def _is_rank(pooling: Any) -> bool:
    try:
        return int(pooling) == _RANK_POOLING
    except (TypeError, ValueError):
        return False


# ``reasoning_tags`` on a model record that says the model does not reason, whatever its
# template holds.
NO_REASONING = "none"


def reasoning_tags(chat_template: str, setting: str = "") -> tuple[str, str] | None:
    """The tags around the model's reasoning: those the record sets (``"<open> <close>"``, or
    ``"none"``), else the first pair its template writes; a template that only takes
    ``enable_thinking`` reasons in ``<think>`` tags, as the models whose templates read it do.
    None: the model does not reason apart from its answer."""
    setting = setting.strip()
    if setting:
        if setting.lower() == NO_REASONING:
            return None
        opening, closing = parse_reasoning_tags(setting)
        return opening, closing
    for opening, closing in _THINKING_TAGS:
        if opening in chat_template and closing in chat_template:
            return opening, closing
    if "enable_thinking" in chat_template:
        return _THINKING_TAGS[0]
    return None


def parse_reasoning_tags(setting: str) -> tuple[str, str]:
    """``"<open> <close>"`` as its two tags; raises ValueError for anything else."""
    parts = setting.split()
    if len(parts) != 2 or parts[0] == parts[1]:
        raise ValueError(
            'reasoning tags are the opening and the closing tag, apart by a space: "<think> '
            '</think>", or "none"'
        )
    return parts[0], parts[1]


def validate_reasoning_tags(setting: str) -> None:
    """A model field's validator: ``setting`` is empty, ``"none"`` or two tags."""
    if setting.strip() and setting.strip().lower() != NO_REASONING:
        try:
            parse_reasoning_tags(setting)
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc
