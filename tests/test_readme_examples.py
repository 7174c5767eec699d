"""The README's client examples run as written, against a live server.

Each section's Python blocks run in order in one namespace, as a reader pastes them, with the
address ``make run`` serves on swapped for the live server's. ``smollm2:135m`` (the demo model
the examples name) is the tiny test model under that name.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator

import ollama
import pytest

from tests.live import REPO, LiveServer

MAKE_RUN_ADDRESS = "http://127.0.0.1:11434"
DEMO_MODEL = "smollm2:135m"
README_SECTIONS = (
    "## Calling it",
    "### The Ollama API",
    "### The Responses API",
    "### Anthropic's Messages API",
)


def python_blocks(section: str) -> list[str]:
    """The Python blocks of ``section``: from its heading to the next heading of any level
    (a ``#`` line inside a code block is a comment, not a heading)."""
    blocks: list[str] = []
    inside, fence = False, ""
    current: list[str] = []
    for line in (REPO / "README.md").read_text().splitlines():
        if not fence and line.startswith("#"):
            if inside:
                break
            inside = line == section
        elif inside and line.startswith("```"):
            if fence:
                if fence == "```python":
                    blocks.append("\n".join(current))
                fence, current = "", []
            else:
                fence = line
        elif fence:
            current.append(line)
    return blocks


@pytest.fixture(scope="module")
def demo_model(server: LiveServer) -> Iterator[None]:
    models = ollama.Client(host=server.base_url)
    models.copy("tiny", DEMO_MODEL)
    yield
    models.delete(DEMO_MODEL)


def run_readme_examples(section: str, base_url: str) -> None:
    """Run ``section``'s Python blocks in order in one namespace, against ``base_url``."""
    blocks = python_blocks(section)
    assert blocks, f"no Python example under {section!r}"
    namespace: dict[str, object] = {}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        for block in blocks:
            exec(block.replace(MAKE_RUN_ADDRESS, base_url), namespace)
    assert printed.getvalue(), "the examples print their answers"


@pytest.mark.parametrize("section", README_SECTIONS)
def test_the_readme_examples_run_as_written(
    section: str, server: LiveServer, demo_model: None
) -> None:
    run_readme_examples(section, server.base_url)
