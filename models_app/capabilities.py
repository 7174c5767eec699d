"""What a model can be asked for, in Ollama's ``capabilities`` words, derived as Ollama derives
them (from the GGUF header and the chat template) and kept to what Herd's endpoints accept.

- ``embedding``: always, since ``/api/embed`` and ``/v1/embeddings`` pool any model's hidden
  states; a model whose header declares a pooling type is an embedding model and has nothing
  else.
- ``completion``: every other model.
- ``tools``: a model with a chat template. Herd offers tools to any template, in its ``tools``
  variable or, for a template without one, as a system instruction, and forces a call with a
  grammar, so ``/api/chat`` and ``/v1/chat/completions`` take ``tools`` for every such model.
- ``insert``: the template uses ``suffix`` (fill-in-the-middle); ``/api/generate`` then takes
  a ``suffix`` and refuses it otherwise.
- ``thinking``: the template opens and closes a reasoning block (``<think>...</think>`` and the
  like) or takes ``enable_thinking``; ``/api/chat`` refuses ``think: true`` otherwise.
- ``vision``: never; Herd has no image input, and both APIs refuse images.
"""

from __future__ import annotations

import re
from typing import Any

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
    architecture: str, model_info: dict[str, Any], chat_template: str
) -> list[str]:
    """The capabilities of a model with this header (``model_info``, the GGUF keys) and chat
    template, in Ollama's order."""
    if f"{architecture}.pooling_type" in model_info:
        return ["embedding"]
    capabilities = ["completion"]
    if chat_template:
        capabilities.append("tools")
        if _SUFFIX.search(chat_template):
            capabilities.append("insert")
    capabilities.append("embedding")
    if template_thinks(chat_template):
        capabilities.append("thinking")
    return capabilities


def template_thinks(chat_template: str) -> bool:
    """Whether the template writes a reasoning block or can be told to."""
    if "enable_thinking" in chat_template:
        return True
    return any(a in chat_template and b in chat_template for a, b in _THINKING_TAGS)
