"""``POST /api/create``: what it refuses, in Ollama's ``{"error": "..."}`` shape with the right
status, before anything is written; and the variant it makes without a worker (a record that
shares its parent's file)."""

from __future__ import annotations

import hashlib
import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.core.management import call_command
from django.test import Client
from pytest_django.fixtures import Settings

from accounts.models import AuditEntry
from models_app.models import ModelRecord, PullJob

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def models_dir(settings: Settings, tmp_path: Path) -> Path:
    settings.MODELS_DIR = tmp_path / "models"
    settings.HERD_AUTH_REQUIRED = False
    return settings.MODELS_DIR


@pytest.fixture
def tiny(tiny_gguf: Path) -> ModelRecord:
    call_command("import_model", "tiny:create", str(tiny_gguf), stdout=StringIO())
    return ModelRecord.objects.get(name="tiny:create")


def read_stream(response: Any) -> bytes:
    async def read() -> bytes:
        return b"".join([chunk async for chunk in response.streaming_content])

    return async_to_sync(read)()


def create(body: dict[str, Any]) -> tuple[int, Any]:
    response = Client().post(
        "/api/create", json.dumps({"stream": False, **body}), content_type="application/json"
    )
    return response.status_code, response.json()


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({}, 400, "model is required"),
        ({"model": "a b"}, 400, "invalid model name"),
        ({"model": "v"}, 400, "neither 'from' or 'files' was specified"),
        ({"model": "v", "from": "nope"}, 404, "model 'nope' not found"),
        (
            {"model": "v", "files": {"m.gguf": f"sha256:{'0' * 64}"}},
            400,
            f"blob sha256:{'0' * 64} (m.gguf) not found",
        ),
        ({"model": "v", "files": {"m.gguf": "sha256:zz"}}, 400, "invalid digest"),
        ({"model": "v", "files": {"m.bin": f"sha256:{'0' * 64}"}}, 400, "not a GGUF file"),
        ({"model": "v", "from": "tiny:create", "quantize": "q3_X"}, 400, "unsupported quantiz"),
        ({"model": "v", "from": "tiny:create", "parameters": {"temp": 1}}, 400, "unknown param"),
        (
            {"model": "v", "from": "tiny:create", "parameters": {"num_ctx": "many"}},
            400,
            "parameter 'num_ctx' must be an integer",
        ),
        ({"model": "v", "from": "tiny:create", "template": "{% if %}"}, 400, "template error"),
        (
            {"model": "v", "from": "tiny:create", "messages": [{"role": "x", "content": ""}]},
            400,
            "messages[0].role must be one of",
        ),
        ({"model": "v", "from": "tiny:create", "files": {}}, 400, "not both"),
        ({"model": "v", "from": "tiny:create", "stream": "yes"}, 400, "stream must be"),
    ],
)
def test_it_refuses_in_ollamas_shape(
    tiny: ModelRecord, body: dict[str, Any], status: int, message: str
) -> None:
    got_status, answer = create(body)
    assert got_status == status, answer
    assert list(answer) == ["error"]
    assert message in answer["error"]
    assert set(ModelRecord.objects.values_list("name", flat=True)) == {"tiny:create"}
    assert not PullJob.objects.exists()


def test_a_name_being_pulled_is_taken(tiny: ModelRecord) -> None:
    PullJob.objects.create(name="busy:latest", repo_id="o/r", revision="main")
    status, answer = create({"model": "busy", "from": "tiny:create"})
    assert status == 409
    assert "model 'busy:latest' is being pulled or quantized" in answer["error"]


def test_a_quantized_model_cannot_be_quantized_again(tiny: ModelRecord, tmp_path: Path) -> None:
    ModelRecord.objects.filter(pk=tiny.pk).update(quantization="Q4_K_M")
    status, answer = create({"model": "v", "from": "tiny:create", "quantize": "q4_0"})
    assert status == 400
    assert "cannot quantize a Q4_K_M model" in answer["error"]


def test_a_variant_shares_its_parents_file_and_overrides_its_settings(
    tiny: ModelRecord, models_dir: Path
) -> None:
    tiny.default_options = {"temperature": 0.5, "top_k": 7}
    tiny.save()
    response = Client().post(
        "/api/create",
        json.dumps(
            {
                "model": "pirate",
                "from": "tiny:create",
                "system": "You are a pirate.",
                "parameters": {"temperature": 0.1, "stop": "<|end|>"},
                "messages": [{"role": "user", "content": "Ahoy"}],
                "license": ["MIT", "Apache-2.0"],
            }
        ),
        content_type="application/json",
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in read_stream(response).splitlines()]
    statuses = [line["status"] for line in lines]
    assert statuses[0] == f"using existing layer sha256:{tiny.sha256}"
    assert statuses[-2:] == ["writing manifest", "success"]
    assert sum(s.startswith("creating new layer sha256:") for s in statuses) == 4
    variant = ModelRecord.objects.get(name="pirate:latest")
    assert variant.path == tiny.path and variant.sha256 == tiny.sha256
    assert variant.parent_model == "tiny:create"
    assert variant.system_prompt == "You are a pirate."
    assert variant.default_options == {"temperature": 0.1, "top_k": 7, "stop": ["<|end|>"]}
    assert variant.messages == [{"role": "user", "content": "Ahoy"}]
    assert variant.license == "MIT\n\nApache-2.0"
    assert variant.chat_template == tiny.chat_template
    assert not models_dir.exists() or not any(models_dir.rglob("*.gguf"))  # nothing copied
    entry = AuditEntry.objects.get(action="model_created")
    assert entry.target == "pirate:latest"
    assert entry.details["from"] == "tiny:create"

    shown = Client().post("/api/show", {"model": "pirate"}, content_type="application/json")
    answer = shown.json()
    assert answer["details"]["parent_model"] == "tiny:create"
    assert answer["system"] == "You are a pirate."
    assert answer["license"] == "MIT\n\nApache-2.0"
    assert answer["messages"] == [{"role": "user", "content": "Ahoy"}]
    assert 'SYSTEM """You are a pirate."""' in answer["modelfile"]
    assert "MESSAGE user" in answer["modelfile"]


def test_a_blob_becomes_a_model(tiny_gguf: Path) -> None:
    data = tiny_gguf.read_bytes()
    digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
    web = Client()
    assert (
        web.post(f"/api/blobs/{digest}", data, content_type="application/octet-stream").status_code
        == 201
    )
    status, answer = create({"model": "uploaded:1", "files": {"tiny.gguf": digest}})
    assert status == 200 and answer == {"status": "success"}
    record = ModelRecord.objects.get(name="uploaded:1")
    assert record.sha256 == digest.removeprefix("sha256:")
    assert record.path.endswith(f"blobs/sha256-{record.sha256}")
    assert record.architecture == "llama" and record.parent_model == ""
