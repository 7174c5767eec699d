from __future__ import annotations

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from models_app.models import ModelRecord, ModelStatus
from models_app.registration import file_sha256
from tests.tiny_gguf import CHAT_TEMPLATE

pytestmark = pytest.mark.django_db


def test_it_registers_a_gguf_with_its_metadata(tiny_gguf: Path) -> None:
    out = StringIO()
    call_command("import_model", "tiny:test", str(tiny_gguf), stdout=out)
    record = ModelRecord.objects.get(name="tiny:test")
    assert record.status == ModelStatus.READY
    assert record.path == str(tiny_gguf)
    assert record.size == tiny_gguf.stat().st_size
    assert record.sha256 == file_sha256(tiny_gguf)
    assert (record.architecture, record.family, record.quantization) == ("llama", "llama", "F32")
    assert record.context_length == 4096
    assert record.chat_template == CHAT_TEMPLATE
    assert "imported tiny:test" in out.getvalue()


def test_a_template_file_overrides_the_files_own(tiny_gguf: Path, tmp_path: Path) -> None:
    template = tmp_path / "t.jinja"
    template.write_text("{{ messages[0]['content'] }}")
    call_command(
        "import_model", "tiny", str(tiny_gguf), "--template", str(template), stdout=StringIO()
    )
    assert ModelRecord.objects.get(name="tiny:latest").chat_template == template.read_text()


def test_a_projector_makes_it_a_vision_model(tiny_gguf: Path, tiny_mmproj: Path) -> None:
    call_command(
        "import_model", "seer", str(tiny_gguf), "--projector", str(tiny_mmproj), stdout=StringIO()
    )
    record = ModelRecord.objects.get(name="seer:latest")
    assert record.projector == str(tiny_mmproj)
    assert "vision" in record.capabilities
    assert record.to_spec().projector == str(tiny_mmproj)
    with pytest.raises(CommandError, match="no such projector file"):
        call_command(
            "import_model",
            "seer",
            str(tiny_gguf),
            "--projector",
            "/nowhere.gguf",
            stdout=StringIO(),
        )


def test_it_refuses_a_bad_name_and_writes_nothing(tiny_gguf: Path) -> None:
    with pytest.raises(CommandError, match="invalid model name"):
        call_command("import_model", "../evil", str(tiny_gguf))
    assert not ModelRecord.objects.exists()


def test_it_refuses_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CommandError):
        call_command("import_model", "ghost", str(tmp_path / "ghost.gguf"))
    assert not ModelRecord.objects.exists()


def test_the_admin_lists_model_records(admin_client, tiny_gguf: Path) -> None:  # type: ignore[no-untyped-def]
    call_command("import_model", "tiny", str(tiny_gguf), stdout=StringIO())
    page = admin_client.get("/admin/models_app/modelrecord/")
    assert page.status_code == 200
    assert b"tiny:latest" in page.content
