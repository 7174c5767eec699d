"""LangChain's Ollama integration against ``/api``: it sends every option it knows of, most of
them null, and Ollama skips a null option."""

from __future__ import annotations

import httpx
import pytest
from langchain_ollama import ChatOllama, OllamaEmbeddings, OllamaLLM

from tests.live import LiveServer


def test_ollama_embeddings_embed_documents_and_queries(server: LiveServer) -> None:
    embeddings = OllamaEmbeddings(model="tiny", base_url=server.base_url)
    documents = embeddings.embed_documents(["first text", "second text"])
    assert [len(v) for v in documents] == [64, 64]
    assert documents[0] != documents[1]
    assert embeddings.embed_query("first text") == pytest.approx(documents[0], abs=1e-5)


def test_chat_ollama_answers_and_streams(server: LiveServer) -> None:
    chat = ChatOllama(model="tiny", base_url=server.base_url, num_predict=6, temperature=0)
    reply = chat.invoke("hello")
    assert isinstance(reply.content, str) and reply.content
    streamed = "".join(str(chunk.content) for chunk in chat.stream("hello"))
    assert streamed == reply.content


def test_ollama_llm_completes(server: LiveServer) -> None:
    llm = OllamaLLM(model="tiny", base_url=server.base_url, num_predict=6, temperature=0)
    assert llm.invoke("once upon a time")


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/chat", {"messages": [{"role": "user", "content": "hi"}]}),
        ("/api/generate", {"prompt": "hi"}),
        ("/api/embed", {"input": "hi"}),
    ],
)
def test_a_null_option_is_skipped_on_every_endpoint(
    server: LiveServer, path: str, body: dict[str, object]
) -> None:
    options = {"num_ctx": None, "temperature": None, "stop": None, "seed": None, "num_predict": 3}
    reply = httpx.post(
        f"{server.base_url}{path}",
        json={"model": "tiny", "stream": False, "options": options, **body},
        timeout=60,
    )
    assert reply.status_code == 200, reply.text
    if path != "/api/embed":
        assert reply.json()["eval_count"] <= 3
