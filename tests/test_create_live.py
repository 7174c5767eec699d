"""Making models the way Ollama users do, against a live server with the official ``ollama``
client: a variant ``from`` a model with its own system prompt, a GGUF sent as a blob, a
digest mismatch that leaves nothing behind, and a quantization run on the worker."""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import ollama
import pytest

from tests.live import LiveServer
from tests.tiny_gguf import write_tiny_gguf

PIRATE = "You are a pirate. Answer every question like one."
GREEDY = {"temperature": 0, "num_predict": 12, "seed": 1}


def models_dir(server: LiveServer) -> Path:
    return server.home / "models"


def test_a_variant_with_a_new_system_prompt_answers_with_it(
    ollama_client: ollama.Client,
) -> None:
    updates = list(
        ollama_client.create(
            model="tiny-pirate", from_="tiny", system=PIRATE, parameters=GREEDY, stream=True
        )
    )
    statuses = [u.status for u in updates]
    assert statuses[0] and statuses[0].startswith("using existing layer sha256:")
    assert statuses[-2:] == ["writing manifest", "success"]

    question = [{"role": "user", "content": "Where is the gold?"}]
    variant = ollama_client.chat(model="tiny-pirate", messages=question)
    # The same model given the same system message by hand answers the same, token for
    # token; without it, the prompt is shorter.
    by_hand = ollama_client.chat(
        model="tiny", messages=[{"role": "system", "content": PIRATE}, *question], options=GREEDY
    )
    plain = ollama_client.chat(model="tiny", messages=question, options=GREEDY)
    assert variant.message.content == by_hand.message.content
    assert variant.prompt_eval_count == by_hand.prompt_eval_count
    assert (variant.prompt_eval_count or 0) > (plain.prompt_eval_count or 0)

    shown = ollama_client.show("tiny-pirate")
    assert shown.details is not None and shown.details.parent_model == "tiny:latest"
    assert shown.modelfile is not None and f'SYSTEM """{PIRATE}"""' in shown.modelfile
    assert shown.parameters is not None and "temperature" in shown.parameters
    tiny = {m.model: m for m in ollama_client.list().models}["tiny:latest"]
    listed = {m.model: m for m in ollama_client.list().models}["tiny-pirate:latest"]
    assert listed.digest == tiny.digest  # the same file, not a copy


def test_a_gguf_uploaded_as_a_blob_becomes_a_model(
    ollama_client: ollama.Client, server: LiveServer, tmp_path: Path
) -> None:
    gguf = write_tiny_gguf(tmp_path / "mine.gguf", n_ctx=1024, seed=16)
    digest = f"sha256:{hashlib.sha256(gguf.read_bytes()).hexdigest()}"
    assert httpx.head(f"{server.base_url}/api/blobs/{digest}").status_code == 404
    assert ollama_client.create_blob(gguf) == digest
    assert httpx.head(f"{server.base_url}/api/blobs/{digest}").status_code == 200
    assert (models_dir(server) / "blobs" / f"sha256-{digest[7:]}").read_bytes() == gguf.read_bytes()

    done = ollama_client.create(model="uploaded:v1", files={"mine.gguf": digest})
    assert done.status == "success"
    shown = ollama_client.show("uploaded:v1")
    assert shown.details is not None and shown.details.quantization_level == "F32"
    assert shown.modelinfo is not None and shown.modelinfo["llama.context_length"] == 1024
    answer = ollama_client.generate(model="uploaded:v1", prompt="hello", options=GREEDY)
    assert answer.done and (answer.eval_count or 0) > 0


def test_a_digest_mismatch_leaves_no_file(server: LiveServer) -> None:
    body = b"GGUF" + bytes(100_000)
    claimed = hashlib.sha256(b"not this").hexdigest()
    reply = httpx.post(f"{server.base_url}/api/blobs/sha256:{claimed}", content=body, timeout=30)
    assert reply.status_code == 400
    assert "digest mismatch" in reply.json()["error"]
    blobs = models_dir(server) / "blobs"
    assert not (blobs / f"sha256-{claimed}").exists()
    assert not (blobs / f"sha256-{hashlib.sha256(body).hexdigest()}").exists()
    assert list((models_dir(server) / ".partial").glob("blob-*")) == []


def test_the_client_sees_ollamas_errors(web_ollama_client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as unknown:
        web_ollama_client.create(model="x", from_="no-such-model")
    assert unknown.value.status_code == 404
    assert "model 'no-such-model' not found" in unknown.value.error
    with pytest.raises(ollama.ResponseError) as no_blob:
        web_ollama_client.create(model="x", files={"m.gguf": f"sha256:{'1' * 64}"})
    assert no_blob.value.status_code == 400 and "not found" in no_blob.value.error
    with pytest.raises(ollama.ResponseError) as bad_type:
        web_ollama_client.create(model="x", from_="tiny", quantize="q9_z")
    assert bad_type.value.status_code == 400
    assert "unsupported quantization type q9_z" in bad_type.value.error


def test_quantizing_the_f32_test_model_to_q8_0_makes_a_smaller_file_that_answers(
    ollama_client: ollama.Client, server: LiveServer
) -> None:
    updates = list(
        ollama_client.create(model="tiny:q8_0", from_="tiny", quantize="q8_0", stream=True)
    )
    statuses = [u.status for u in updates]
    assert statuses[-1] == "success", statuses
    progress = [u for u in updates if u.status == "quantizing F32 model to Q8_0"]
    assert progress and progress[-1].total and progress[-1].completed == progress[-1].total
    assert "verifying sha256 digest" in statuses

    listed = {m.model: m for m in ollama_client.list().models}
    quantized, original = listed["tiny:q8_0"], listed["tiny:latest"]
    assert quantized.size and original.size and quantized.size < original.size / 2
    assert quantized.digest != original.digest
    shown = ollama_client.show("tiny:q8_0")
    assert shown.details is not None
    assert shown.details.quantization_level == "Q8_0"  # read from the new file
    assert shown.details.parent_model == "tiny:latest"
    stored = models_dir(server) / "blobs" / f"sha256-{quantized.digest}"
    assert stored.stat().st_size == quantized.size
    answer = ollama_client.generate(model="tiny:q8_0", prompt="hello", options=GREEDY)
    assert answer.done and (answer.eval_count or 0) > 0
