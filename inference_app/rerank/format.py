"""A rerank answer, as llama-server's ``/v1/rerank`` writes it (``results`` of ``index`` and
``relevance_score``, best first, with ``usage``), and the ``id``, ``meta`` and ``document``
Cohere's and Jina's clients read. The live endpoint and a batch line answer alike."""

from __future__ import annotations

import uuid
from typing import Any


def ranked_results(
    scores: list[float], documents: list[str], top_n: int | None, return_documents: bool
) -> list[dict[str, Any]]:
    """Each document's index and score, best first (ties in the order given), the first
    ``top_n``, each with its ``document`` when asked."""
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    results = []
    for index in order[:top_n] if top_n else order:
        result: dict[str, Any] = {"index": index, "relevance_score": scores[index]}
        if return_documents:
            result["document"] = {"text": documents[index]}
        results.append(result)
    return results


def rerank_body(
    model: str, scores: list[Any], request: dict[str, Any], prompt_tokens: int
) -> dict[str, Any]:
    """The whole answer to a rerank ``request`` (its validated body) given each document's
    score."""
    results = ranked_results(
        [float(score) for score in scores],
        request["documents"],
        request.get("top_n"),
        bool(request.get("return_documents")),
    )
    return {
        "id": f"rerank-{uuid.uuid4().hex}",
        "model": model,
        "object": "list",
        "results": results,
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
        "meta": {"billed_units": {"search_units": 1}},
    }
