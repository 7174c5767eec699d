"""``POST /v1/rerank`` (``/rerank``, ``/v2/rerank``) on a tiny reranker GGUF the tests write:
scores sorted and stable, ``top_n`` and ``return_documents`` respected, bad bodies and chat
models refused, Cohere's client served, batch lines ranked, usage metered and a scoped key
kept to its models (``inference_app.rerank``, ``workers.engine.ranking``)."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from models_app.capabilities import derive_capabilities
from tests.isolation import new_member, wait_for_batch
from tests.keyed import KeyedServer, start_keyed_server
from tests.live import live_fixture
from tests.tiny_gguf import write_tiny_reranker
from workers.engine import ranking
from workers.engine.events import Embedded, Ranked, Rejected
from workers.engine.factory import EngineConfig, load_engine
from workers.engine.jobs import Engine
from workers.engine.loading import repack_weights
from workers.engine.ranking import decode_groups
from workers.engine.requests import EmbeddingRequest, RerankRequest

QUERY = "hello world"
DOCUMENTS = [
    "the model is a llama",
    "yes no true false",
    "hello world the answer",
    "a herd of one",
    "token of the world",
]


@pytest.fixture(scope="module")
def reranker_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_reranker(tmp_path_factory.mktemp("models") / "reranker.gguf")


# Pure parts first: no model.


def test_pairs_go_through_in_as_few_decodes_as_the_context_holds() -> None:
    assert decode_groups([10, 10, 10, 10], cells=40, most=64) == [[0, 1, 2, 3]]
    assert decode_groups([10, 10, 10, 10], cells=25, most=64) == [[0, 1], [2, 3]]
    assert decode_groups([10, 10, 10], cells=100, most=2) == [[0, 1], [2]]
    # A pair longer than the context is cut to it, and decodes alone.
    assert decode_groups([5, 500, 5], cells=100, most=64) == [[0], [1], [2]]


def test_a_header_with_rank_pooling_makes_a_reranker_and_nothing_else() -> None:
    assert derive_capabilities("qwen3", {"qwen3.pooling_type": 4}, "") == ["rerank"]
    assert derive_capabilities("bert", {"bert.pooling_type": 1}, "") == ["embedding"]
    assert "rerank" not in derive_capabilities("llama", {}, "{{ messages }}")


# The engine, in process.


@pytest.fixture(scope="module")
def engine(reranker_gguf: Path) -> Iterator[Engine]:
    config = EngineConfig(
        name="reranker",
        path=str(reranker_gguf),
        n_ctx=512,
        threads=1,
        repack=repack_weights("auto"),
    )
    built = load_engine(config)
    yield built
    built.close()


def scores_of(engine: Engine, query: str, documents: list[str]) -> list[float]:
    final = engine.submit(RerankRequest(query, tuple(documents))).wait()
    assert isinstance(final, Ranked), final
    assert final.prompt_tokens > 2 * len(documents)
    return final.scores


@pytest.mark.live
def test_each_pair_scores_the_same_alone_as_among_others(engine: Engine) -> None:
    together = scores_of(engine, QUERY, DOCUMENTS)
    alone = [scores_of(engine, QUERY, [doc])[0] for doc in DOCUMENTS]
    assert together == pytest.approx(alone, abs=1e-5)
    assert scores_of(engine, QUERY, DOCUMENTS) == together  # and again, the same
    assert len(set(together)) == len(DOCUMENTS)  # the documents are told apart
    assert all(0.0 <= score <= 1.0 for score in together)  # the head's softmax


@pytest.mark.live
def test_the_pairs_of_a_request_go_through_in_as_few_decodes_as_fit(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    decodes: list[int] = []
    real = ranking._decode_pairs

    def counted(ranker: Any, pairs: list[list[int]]) -> list[float]:
        decodes.append(len(pairs))
        return real(ranker, pairs)

    monkeypatch.setattr(ranking, "_decode_pairs", counted)
    scores_of(engine, QUERY, DOCUMENTS)
    assert decodes == [len(DOCUMENTS)]  # one decode for the whole request

    decodes.clear()
    long_documents = [f"{doc} " * 6 for doc in DOCUMENTS] * 8  # 40 pairs, past 512 cells
    scores_of(engine, QUERY, long_documents)
    assert sum(decodes) == len(long_documents)
    # Each decode as full as the ranking context's 512 cells allow.
    ranker = engine.embedder()
    lengths = [len(ranking.pair_tokens(ranker, QUERY, doc)) for doc in long_documents]
    assert sum(lengths) > 512
    assert len(decodes) == len(decode_groups(lengths, 512, 64)) < len(long_documents)


@pytest.mark.live
def test_a_reranker_refuses_embeddings(engine: Engine) -> None:
    final = engine.submit(EmbeddingRequest(("hello",))).wait()
    assert isinstance(final, Rejected) and "reranker" in final.message
    assert not isinstance(final, Embedded)


# A live server, keys required.


@live_fixture(scope="module")
def rerank_server(
    tmp_path_factory: pytest.TempPathFactory, tiny_gguf: Path, reranker_gguf: Path
) -> Iterator[KeyedServer]:
    live = start_keyed_server(
        tmp_path_factory.mktemp("live-rerank"), {"tiny": tiny_gguf, "reranker": reranker_gguf}
    )
    yield live
    live.stop()


def rerank(server: KeyedServer, secret: str, path: str = "/v1/rerank", **body: Any) -> Any:
    return server.call("POST", path, secret, json={"model": "reranker", **body})


def test_documents_come_back_best_first_with_usage(rerank_server: KeyedServer) -> None:
    secret = rerank_server.staff_secret
    reply = rerank(rerank_server, secret, query=QUERY, documents=DOCUMENTS)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    results = body["results"]
    assert sorted(r["index"] for r in results) == list(range(len(DOCUMENTS)))
    scores = [r["relevance_score"] for r in results]
    assert scores == sorted(scores, reverse=True)
    assert "document" not in results[0]
    assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] > len(DOCUMENTS)
    assert body["model"] == "reranker" and body["object"] == "list"

    # The same answer every time, on every path, documents given as objects or strings.
    as_objects = [{"text": doc} for doc in DOCUMENTS]
    for path in ("/v1/rerank", "/rerank", "/v2/rerank"):
        again = rerank(rerank_server, secret, path, query=QUERY, documents=as_objects)
        assert again.status_code == 200, (path, again.text)
        assert again.json()["results"] == results

    top = rerank(
        rerank_server, secret, query=QUERY, documents=DOCUMENTS, top_n=2, return_documents=True
    ).json()["results"]
    assert [r["index"] for r in top] == [r["index"] for r in results[:2]]
    assert [r["document"]["text"] for r in top] == [DOCUMENTS[r["index"]] for r in top]


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"query": QUERY, "documents": []}, "documents"),
        ({"query": QUERY, "documents": [""]}, "documents"),
        ({"documents": DOCUMENTS}, "query"),
        ({"query": QUERY, "documents": DOCUMENTS, "top_n": 0}, "top_n"),
        ({"query": QUERY, "documents": [{"title": "no text"}]}, "documents"),
        ({"model": "tiny", "query": QUERY, "documents": DOCUMENTS}, "model"),
    ],
)
def test_a_bad_body_or_a_chat_model_is_a_400_in_openais_shape(
    rerank_server: KeyedServer, body: dict[str, Any], param: str
) -> None:
    reply = rerank(rerank_server, rerank_server.staff_secret, **body)
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert (error["param"] or "").startswith(param), error


def test_cohere_clients_rerank_through_herd(rerank_server: KeyedServer) -> None:
    cohere = pytest.importorskip("cohere")
    expected = rerank(
        rerank_server, rerank_server.staff_secret, query=QUERY, documents=DOCUMENTS
    ).json()["results"]
    v2 = cohere.ClientV2(api_key=rerank_server.staff_secret, base_url=rerank_server.base_url)
    answer = v2.rerank(model="reranker", query=QUERY, documents=DOCUMENTS, top_n=3)
    assert [(r.index, r.relevance_score) for r in answer.results] == [
        (r["index"], r["relevance_score"]) for r in expected[:3]
    ]
    v1 = cohere.Client(api_key=rerank_server.staff_secret, base_url=rerank_server.base_url)
    answer = v1.rerank(
        model="reranker", query=QUERY, documents=DOCUMENTS, top_n=2, return_documents=True
    )
    assert [r.index for r in answer.results] == [r["index"] for r in expected[:2]]
    assert [r.document.text for r in answer.results] == [DOCUMENTS[r.index] for r in answer.results]


def test_reranks_are_metered_as_usage(rerank_server: KeyedServer) -> None:
    secret = rerank_server.create_key("rerank-meter")
    reply = rerank(rerank_server, secret, query=QUERY, documents=DOCUMENTS[:2])
    assert reply.status_code == 200, reply.text
    tokens = reply.json()["usage"]["prompt_tokens"]

    def recorded() -> list[dict[str, Any]]:
        query = "group_by=key&key=rerank-meter"
        rows = rerank_server.call("GET", f"/herd/usage?{query}", rerank_server.staff_secret)
        assert rows.status_code == 200, rows.text
        return list(rows.json())

    deadline = time.monotonic() + 10
    while not recorded():
        assert time.monotonic() < deadline, "no usage recorded for the rerank"
        time.sleep(0.1)
    (row,) = recorded()
    assert (row["requests"], row["prompt_tokens"], row["completion_tokens"]) == (1, tokens, 0)


def test_a_key_scoped_to_another_model_cannot_rerank(rerank_server: KeyedServer) -> None:
    tiny_only = new_member(rerank_server, "--models", "tiny").secret
    for path in ("/v1/rerank", "/rerank", "/v2/rerank"):
        reply = rerank(rerank_server, tiny_only, path, query=QUERY, documents=DOCUMENTS)
        assert reply.status_code == 403, (path, reply.text)
        assert "reranker" in reply.json()["error"]["message"]
    # No key at all: the paths outside /v1 are guarded as /v1 is.
    for path in ("/rerank", "/v2/rerank"):
        assert rerank_server.call("POST", path, None, json={}).status_code == 401


def rerank_line(custom_id: str, model: str = "reranker", **body: Any) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/rerank",
        "body": {"model": model, "query": QUERY, "documents": DOCUMENTS, **body},
    }


def run_rerank_batch(server: KeyedServer, lines: list[dict[str, Any]]) -> dict[str, Any]:
    secret = server.staff_secret
    content = "\n".join(json.dumps(line) for line in lines).encode()
    uploaded = server.call(
        "POST",
        "/v1/files",
        secret,
        data={"purpose": "batch"},
        files={"file": ("input.jsonl", io.BytesIO(content))},
    )
    assert uploaded.status_code == 200, uploaded.text
    body = {"input_file_id": uploaded.json()["id"], "endpoint": "/v1/rerank"}
    created = server.call("POST", "/v1/batches", secret, json=body)
    assert created.status_code == 200, created.text
    return wait_for_batch(server, secret, created.json()["id"], ("completed", "failed"), 60)


def test_a_batch_file_of_rerank_lines_is_ranked(rerank_server: KeyedServer) -> None:
    live = rerank(rerank_server, rerank_server.staff_secret, query=QUERY, documents=DOCUMENTS)
    batch = run_rerank_batch(
        rerank_server, [rerank_line("all"), rerank_line("top", top_n=1, return_documents=True)]
    )
    assert batch["status"] == "completed", batch
    assert batch["request_counts"] == {"total": 2, "completed": 2, "failed": 0}
    content = rerank_server.call(
        "GET", f"/v1/files/{batch['output_file_id']}/content", rerank_server.staff_secret
    )
    outputs = {
        row["custom_id"]: row["response"] for row in map(json.loads, content.text.splitlines())
    }
    assert outputs["all"]["status_code"] == 200
    assert outputs["all"]["body"]["results"] == live.json()["results"]
    (best,) = outputs["top"]["body"]["results"]
    assert best["index"] == live.json()["results"][0]["index"]
    assert best["document"]["text"] == DOCUMENTS[best["index"]]

    # A line naming a chat model fails the batch before anything runs.
    refused = run_rerank_batch(rerank_server, [rerank_line("chat", model="tiny")])
    assert refused["status"] == "failed"
    (error,) = refused["errors"]["data"]
    assert error["param"] == "body.model" and "rerank" in error["message"]
