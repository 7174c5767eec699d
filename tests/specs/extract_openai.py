"""Extract from OpenAI's official OpenAPI document the operations Herd serves, with every
component they reference, into ``openai-herd.yaml`` beside this script.

    python tests/specs/extract_openai.py path/to/openai-openapi.yaml

The source is github.com/openai/openai-openapi, ``openapi.yaml`` (the commit is in
``README.md`` here). Three rewrites, all to let a JSON Schema 2020-12 validator read the
document as its authors meant it:

- where the examples show null for a field the schema does not allow it in
  (``EXAMPLE_NULLS``), the field may be null;
- the document is OpenAPI 3.1 but still writes ``nullable: true`` (an OpenAPI 3.0 keyword
  that 3.1 dropped) in about a hundred places; each becomes a ``null`` alternative;
- ``x-stainless-*`` and ``x-oaiMeta`` extensions, which only document generators read, go;

and the ``text/event-stream`` answers lose their schema, which describes one chunk where a
validator reads it as the whole SSE event (tests/test_spec_shapes.py checks the chunks).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

# What Herd serves of the document (read-only list endpoints; creating and deleting files
# and batches is left to the batch tests, where the fuzzer would only pile up rows).
OPERATIONS = {
    "/models": ["get"],
    "/models/{model}": ["get"],
    "/chat/completions": ["post"],
    "/completions": ["post"],
    "/embeddings": ["post"],
    "/files": ["get"],
    "/files/{file_id}": ["get"],
    "/batches": ["get"],
    "/batches/{batch_id}": ["get"],
}
OUTPUT = Path(__file__).with_name("openai-herd.yaml")
# Fields the document's own examples show as null where its schema says they never are: the
# batch example (``GET /batches/{batch_id}``) has ``"errors": null``, ``"output_file_id":
# null`` and every ``*_at`` of a step not reached as null, as the API answers. Herd answers
# as the examples do, so the subset lets these be null too.
EXAMPLE_NULLS = {
    "Batch": (
        "errors",
        "output_file_id",
        "error_file_id",
        "in_progress_at",
        "expires_at",
        "finalizing_at",
        "completed_at",
        "failed_at",
        "expired_at",
        "cancelling_at",
        "cancelled_at",
    ),
}


def references(node: Any) -> set[str]:
    found: set[str] = set()
    pending = [node]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            ref = item.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/components/"):
                found.add(ref)
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return found


def resolve(document: dict[str, Any], ref: str) -> Any:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def without_nullable(node: Any) -> Any:
    """``node`` with every ``nullable: true`` written as 3.1 writes it."""
    if isinstance(node, list):
        return [without_nullable(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {
        k: without_nullable(v)
        for k, v in node.items()
        if not (isinstance(k, str) and (k.startswith("x-stainless") or k == "x-oaiMeta"))
    }
    if not node.pop("nullable", False):
        return node
    kind = node.get("type")
    if isinstance(kind, str):
        node["type"] = [kind, "null"]
        if "enum" in node:
            node["enum"] = [*node["enum"], None]
        return node
    if isinstance(kind, list):
        node["type"] = [*kind, "null"] if "null" not in kind else kind
        return node
    return {"anyOf": [node, {"type": "null"}]}


def extract(document: dict[str, Any]) -> dict[str, Any]:
    paths = {
        path: {method: document["paths"][path][method] for method in methods}
        for path, methods in OPERATIONS.items()
    }
    for operations in paths.values():
        for operation in operations.values():
            for response in operation.get("responses", {}).values():
                # The document gives a stream the schema of one chunk, where a validator reads
                # the schema of an SSE event (its `data` as a string, then `[DONE]`):
                # tests/test_spec_shapes.py checks each streamed chunk against it instead.
                response.get("content", {}).pop("text/event-stream", None)
    seen: set[str] = set()
    pending = references(paths) | {"#/components/schemas/CreateChatCompletionStreamResponse"}
    while pending:
        ref = pending.pop()
        if ref in seen:
            continue
        seen.add(ref)
        pending |= references(resolve(document, ref)) - seen
    components: dict[str, dict[str, Any]] = {}
    for ref in sorted(seen):
        _, _, section, name = ref.split("/", 3)
        components.setdefault(section, {})[name] = resolve(document, ref)
    components["securitySchemes"] = document["components"]["securitySchemes"]
    for name, fields in EXAMPLE_NULLS.items():
        properties = components["schemas"][name]["properties"]
        for field in fields:
            properties[field] = {**properties[field], "nullable": True}
    subset = {
        "openapi": document["openapi"],
        "info": document["info"],
        "servers": [{"url": "/v1"}],
        "security": document.get("security", []),
        "paths": paths,
        "components": components,
    }
    return without_nullable(subset)


def main(source: str) -> None:
    document = yaml.safe_load(Path(source).read_text())
    header = (
        "# Extracted by tests/specs/extract_openai.py from OpenAI's openapi.yaml "
        "(see README.md for its commit). Do not edit: rerun the script.\n"
    )
    OUTPUT.write_text(header + yaml.safe_dump(extract(document), sort_keys=False))


if __name__ == "__main__":
    main(sys.argv[1])
