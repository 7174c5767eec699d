"""The layer contracts in pyproject.toml (import-linter, run by ``make lint``): they hold for
the code as it is, and each one breaks on a deliberate bad import, so none can pass vacuously.

The bad imports go into a copy of the packages, never into the tree itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("workers", "inference_app", "models_app", "accounts", "project")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def copy_of_the_packages(tmp_path: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(
            REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_layers_hold_for_the_code_as_it_is(copy_of_the_packages: Path) -> None:
    result = lint_imports(copy_of_the_packages)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "5 kept, 0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "bad_import", "contract"),
    [
        (
            "workers/engine/bad.py",
            "from django.conf import settings",
            "The engine is llama.cpp alone",
        ),
        (
            "workers/engine/bad.py",
            "from workers.broker import keys",
            "The engine is llama.cpp alone",
        ),
        (
            "workers/broker/bad.py",
            "from workers.engine import stepper",
            "What web and worker share imports neither the engine nor the worker",
        ),
        (
            "workers/worker/bad.py",
            "from llama_cpp import Llama",
            "The worker imports no llama.cpp",
        ),
        ("inference_app/bad.py", "import llama_cpp", "Web never imports llama.cpp"),
        (
            "models_app/bad.py",
            "from workers.worker import residency",
            "Web never imports llama.cpp",
        ),
        (
            "workers/worker/bad.py",
            "from inference_app.batches import services",
            "The worker never imports web code",
        ),
        (
            "workers/broker/bad.py",
            "from models_app.services import find_ready_model",
            "The worker never imports web code",
        ),
        (
            "workers/worker/bad.py",
            "from accounts.middleware import ApiKeyMiddleware",
            "The worker never imports web code",
        ),
        (
            "workers/worker/bad.py",
            "from project.edge.endpoint import read_json_body",
            "The worker never imports web code",
        ),
    ],
)
def test_a_bad_import_breaks_its_contract(
    copy_of_the_packages: Path, module: str, bad_import: str, contract: str
) -> None:
    (copy_of_the_packages / module).write_text(f"{bad_import}\n")
    result = lint_imports(copy_of_the_packages)
    assert result.returncode != 0
    broken = [line for line in result.stdout.splitlines() if " BROKEN" in line]
    assert any(line.startswith(contract) for line in broken), result.stdout
