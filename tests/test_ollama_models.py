"""Ollama's model endpoints, read by Ollama's own Python client: ``/api/tags``, ``/api/show``,
``/api/copy``, ``/api/delete`` and ``/api/pull``; ``/v1/models`` follows every change."""

from __future__ import annotations

import time
from typing import Any

import httpx
import ollama
import pytest

from tests.inprocess import InProcessServer
from tests.live import LiveServer
from tests.pulling import pull_whole, repo_folder
from tests.tiny_gguf import CHAT_TEMPLATE

TINY = "hf.co/tester/tiny-GGUF:Q8_0"


@pytest.fixture
def client(pull_server: LiveServer) -> ollama.Client:
    return ollama.Client(host=pull_server.base_url, timeout=60)


@pytest.fixture
def pull_web_client(pull_web: InProcessServer) -> ollama.Client:
    return ollama.Client(host=pull_web.base_url, timeout=60, transport=pull_web.transport)


@pytest.fixture
def tiny(pull_server: LiveServer) -> str:
    assert pull_whole(pull_server, TINY).json() == {"status": "success"}
    return TINY


def openai_ids(server: LiveServer) -> set[str]:
    return {m["id"] for m in httpx.get(f"{server.base_url}/v1/models", timeout=10).json()["data"]}


def record(server: LiveServer, name: str) -> dict[str, Any]:
    (found,) = httpx.get(f"{server.base_url}/api/models/", params={"name": name}).json()
    return dict(found)


def test_the_client_pulls_with_progress(client: ollama.Client) -> None:
    updates = list(client.pull("hf.co/tester/tiny-GGUF:Q4_K_M", stream=True))
    assert updates[0].status == "pulling manifest"
    assert updates[-1].status == "success"
    assert any(u.digest and u.total and u.completed == u.total for u in updates)
    assert client.pull("hf.co/tester/tiny-GGUF:Q4_K_M").status == "success"


def test_tags_lists_models_with_their_details(client: ollama.Client, tiny: str) -> None:
    (listed,) = [m for m in client.list().models if m.model == tiny]
    assert listed.size and listed.size > 500_000
    assert listed.digest and len(listed.digest) == 64
    assert listed.modified_at is not None
    assert listed.details is not None
    assert listed.details.format == "gguf"
    assert listed.details.family == "llama"
    assert listed.details.families == ["llama"]
    assert listed.details.parameter_size == "129.86K"
    assert listed.details.quantization_level == "F32"


def test_show_gives_details_model_info_template_parameters_and_capabilities(
    client: ollama.Client, pull_server: LiveServer, tiny: str
) -> None:
    pk = record(pull_server, tiny)["id"]
    patched = httpx.patch(
        f"{pull_server.base_url}/api/models/{pk}/",
        json={"default_options": {"temperature": 0.5, "stop": ["<|end|>"]}, "system_prompt": "Hi."},
    )
    assert patched.status_code == 200, patched.text
    shown = client.show(tiny)
    assert shown.details is not None
    assert shown.details.family == "llama"
    assert shown.details.quantization_level == "F32"
    assert shown.template == CHAT_TEMPLATE
    # The repo ships a vision projector, pulled beside the model.
    assert shown.capabilities == ["completion", "tools", "vision", "embedding"]
    assert shown.modelinfo is not None
    assert shown.modelinfo["general.architecture"] == "llama"
    assert shown.modelinfo["llama.block_count"] == 2
    assert shown.modelinfo["llama.context_length"] == 2048
    assert shown.modelinfo["general.parameter_count"] == 129856
    assert shown.modelinfo["tokenizer.ggml.tokens"] is None  # as Ollama, unless verbose
    assert shown.parameters is not None
    assert 'stop                           "<|end|>"' in shown.parameters
    assert "temperature                    0.5" in shown.parameters
    assert shown.modelfile is not None and "FROM " in shown.modelfile
    raw = httpx.post(f"{pull_server.base_url}/api/show", json={"model": tiny}).json()
    assert raw["system"] == "Hi."


def test_copy_gives_a_second_name_that_answers(
    client: ollama.Client, pull_server: LiveServer, tiny: str
) -> None:
    client.copy(tiny, "tiny-copy:v1")
    assert "tiny-copy:v1" in openai_ids(pull_server)
    assert client.show("tiny-copy:v1").details == client.show(tiny).details
    reply = client.chat(
        model="tiny-copy:v1",
        messages=[{"role": "user", "content": "hi"}],
        options={"num_predict": 4},
    )
    assert reply.message.content is not None


def test_delete_unloads_the_model_and_removes_its_file_once_unused(
    client: ollama.Client, pull_server: LiveServer
) -> None:
    name = "hf.co/tester/delete-GGUF:Q4_K_M"
    assert pull_whole(pull_server, name).json() == {"status": "success"}
    path = repo_folder(pull_server, "tester/delete-GGUF") / "d-Q4_K_M.gguf"
    client.copy(name, "delete-me")
    client.chat(
        model=name, messages=[{"role": "user", "content": "hi"}], options={"num_predict": 2}
    )
    pull_server.wait_for_worker(lambda w: name in w["resident"])

    client.delete(name)
    assert name not in openai_ids(pull_server)
    assert name not in {m.model for m in client.list().models}
    assert path.exists()  # delete-me:latest still uses it
    pull_server.wait_for_worker(lambda w: name not in w["resident"])

    client.delete("delete-me")
    assert not path.exists()
    assert "delete-me:latest" not in openai_ids(pull_server)


def test_unknown_and_malformed_names_get_ollamas_errors(pull_web: InProcessServer) -> None:
    base = pull_web.base_url
    cases = [
        (pull_web.post(f"{base}/api/show", json={"model": "nope"}), 404, "model 'nope' not found"),
        (pull_web.post(f"{base}/api/show", json={"model": "../x"}), 400, "invalid model name"),
        (pull_web.post(f"{base}/api/show", json={}), 400, "model is required"),
        (
            pull_web.post(f"{base}/api/copy", json={"source": "nope", "destination": "b"}),
            404,
            "model 'nope' not found",
        ),
        (
            pull_web.post(f"{base}/api/copy", json={"source": "nope", "destination": "a/../b"}),
            400,
            "invalid model name",
        ),
        (pull_web.post(f"{base}/api/copy", json={"source": "x"}), 400, "destination is required"),
        (
            pull_web.request("DELETE", f"{base}/api/delete", json={"model": "nope"}),
            404,
            "model 'nope' not found",
        ),
        (
            pull_web.request("DELETE", f"{base}/api/delete", json={"model": "a b"}),
            400,
            "invalid model name",
        ),
        (pull_web.post(f"{base}/api/delete", json={"model": "nope"}), 405, "not allowed"),
        (pull_web.post(f"{base}/api/tags"), 405, "not allowed"),
    ]
    for response, status, message in cases:
        assert response.status_code == status, response.text
        assert message in response.json()["error"]


def test_the_client_raises_ollamas_error_for_an_unknown_model(
    pull_web_client: ollama.Client,
) -> None:
    with pytest.raises(ollama.ResponseError) as caught:
        pull_web_client.show("nope:1")
    assert caught.value.status_code == 404
    assert caught.value.error == "model 'nope:1' not found"
    started = time.monotonic()
    with pytest.raises(ollama.ResponseError) as caught:
        pull_web_client.pull("hf.co/tester/missing-GGUF")
    assert caught.value.status_code == 404
    assert time.monotonic() - started < 10
