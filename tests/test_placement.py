"""A worker's memory budget, weights and KV caches: too-large models are refused, idle ones
are evicted LRU first."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.live import LiveServer, live_fixture, make_server
from tests.tiny_gguf import write_tiny_gguf

# With a cache of four contexts of 512 tokens (HERD_NUM_CTX below; the CPU default's four):
# tiny, slow and mid take 1.6 + 144 + 88 MB, their weights 0.5 + 111 + 63 of it, so the three
# fit and a second mid does not, where weights alone would leave room for it.
BUDGET = 260_000_000


@live_fixture(scope="module")
def budgeted(
    tmp_path_factory: pytest.TempPathFactory, tiny_gguf: Path, slow_gguf: Path
) -> Iterator[LiveServer]:
    models = tmp_path_factory.mktemp("budget-models")
    mid = write_tiny_gguf(models / "mid.gguf", n_embd=384, n_layer=8, n_head=8, n_ff=1152)
    mid2 = models / "mid2.gguf"
    shutil.copy(mid, mid2)
    big = write_tiny_gguf(models / "big.gguf", n_embd=640, n_layer=12, n_head=8, n_ff=2048)
    assert big.stat().st_size > BUDGET
    server = make_server(
        tmp_path_factory.mktemp("budget"),
        {"tiny": tiny_gguf, "slow": slow_gguf, "mid": mid, "mid2": mid2, "big": big},
        {"HERD_MEMORY_BUDGET": str(BUDGET), "HERD_NUM_CTX": "512"},
    )
    server.start()
    yield server
    server.stop()


def complete(server: LiveServer, model: str) -> httpx.Response:
    return httpx.post(
        f"{server.base_url}/v1/completions",
        json={"model": model, "prompt": "hi", "max_tokens": 2},
        timeout=60,
    )


def resident(server: LiveServer, expected: set[str]) -> dict[str, Any]:
    return server.wait_for_worker(lambda w: set(w["resident"]) == expected)


def test_a_model_over_the_budget_gets_a_clear_error_and_others_carry_on(
    budgeted: LiveServer,
) -> None:
    refused = complete(budgeted, "big")
    assert refused.status_code == 500
    assert "memory budget" in refused.json()["error"]["message"]
    assert complete(budgeted, "tiny").status_code == 200


def test_idle_models_are_evicted_least_recently_used_first(budgeted: LiveServer) -> None:
    assert complete(budgeted, "slow").status_code == 200
    assert complete(budgeted, "mid").status_code == 200
    # Answered one after the other, so slow's use is after mid's (the worker's monotonic
    # clock orders them): mid is now the least recently used.
    assert complete(budgeted, "slow").status_code == 200
    worker = resident(budgeted, {"tiny:latest", "slow:latest", "mid:latest"})
    assert worker["memory_used"] <= BUDGET
    assert complete(budgeted, "mid2").status_code == 200
    # tiny (used longest ago) goes, then mid; slow, loaded before mid but used since, stays.
    worker = resident(budgeted, {"slow:latest", "mid2:latest"})
    assert worker["budget"] == BUDGET
    assert worker["memory_used"] <= BUDGET


def test_the_kv_cache_counts_towards_the_budget(budgeted: LiveServer) -> None:
    """slow's weights (111 MB) fit, but four sequences of 4096 tokens add 268 MB of cache."""

    def generate(num_ctx: int) -> httpx.Response:
        return httpx.post(
            f"{budgeted.base_url}/api/generate",
            json={
                "model": "slow",
                "prompt": "hi",
                "stream": False,
                "options": {"num_ctx": num_ctx, "num_predict": 2},
            },
            timeout=60,
        )

    refused = generate(4096)
    assert refused.status_code == 500
    message = refused.json()["error"]
    assert "268.4 MB of KV cache" in message and "memory budget" in message
    assert generate(512).status_code == 200
    worker = budgeted.wait_for_worker(lambda w: "slow:latest" in w["resident"])
    assert worker["memory_used"] <= BUDGET
