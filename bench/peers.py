"""The servers Herd is measured against, started on the same model and thread count.

- llama-cpp-python's own server (``python -m llama_cpp.server``), which serves one request at
  a time;
- llama.cpp's ``llama-server``, built from the llama.cpp sources vendored in the
  llama-cpp-python source distribution of the installed version, into ``.cache/`` (never
  committed), so both peers run the same llama.cpp as Herd.
"""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
import tarfile
from pathlib import Path

from bench.common import REPACK, wait_until_up

REPO = Path(__file__).resolve().parent.parent
CACHE = REPO / ".cache" / "llama-server"


def llama_cpp_version() -> str:
    return importlib.metadata.version("llama-cpp-python")


def llama_server_binary() -> Path:
    """Build ``llama-server`` once per llama-cpp-python version and return its path."""
    version = llama_cpp_version()
    build = CACHE / f"build-{version}"
    binary = build / "bin" / "llama-server"
    if binary.exists():
        return binary
    source = _vendored_sources(version)
    jobs = str(os.cpu_count() or 1)
    subprocess.run(
        [
            "cmake",
            "-S",
            str(source),
            "-B",
            str(build),
            "-DCMAKE_BUILD_TYPE=Release",
            "-DLLAMA_BUILD_SERVER=ON",
            "-DLLAMA_BUILD_TESTS=OFF",
            "-DLLAMA_BUILD_EXAMPLES=OFF",
            "-DLLAMA_CURL=OFF",
            "-DBUILD_SHARED_LIBS=OFF",
        ],
        check=True,
    )
    subprocess.run(
        ["cmake", "--build", str(build), "--target", "llama-server", "-j", jobs], check=True
    )
    return binary


def _vendored_sources(version: str) -> Path:
    tree = CACHE / f"llama_cpp_python-{version}" / "vendor" / "llama.cpp"
    if tree.exists():
        return tree
    archive = CACHE / f"llama_cpp_python-{version}.tar.gz"
    if not archive.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-binary",
                ":all:",
                "--no-deps",
                f"llama-cpp-python=={version}",
                "-d",
                str(CACHE),
            ],
            check=True,
        )
    with tarfile.open(archive) as sdist:
        sdist.extractall(CACHE, filter="data")
    return tree


def start_llama_server(
    model: Path, port: int, threads: int, parallel: int, n_ctx: int, log: Path
) -> subprocess.Popen[bytes]:
    """``llama-server -np N``: a context of ``n_ctx`` tokens for each of its N slots."""
    command = [
        str(llama_server_binary()),
        "-m",
        str(model),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "-t",
        str(threads),
        "-np",
        str(parallel),
        "-c",
        str(n_ctx * parallel),
        "--no-webui",
    ]
    if not REPACK:
        command.append("--no-repack")
    return _start(command, port, log, "/health")


def start_llama_cpp_python_server(
    model: Path, port: int, threads: int, n_ctx: int, log: Path
) -> subprocess.Popen[bytes]:
    """llama-cpp-python's bundled server; ``--interrupt_requests False`` lets a waiting
    request queue instead of cutting off the one being served."""
    command = [
        sys.executable,
        str(REPO / "bench" / "llama_cpp_python_server.py"),
        "on" if REPACK else "off",
        "--model",
        str(model),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_threads",
        str(threads),
        "--n_ctx",
        str(n_ctx),
        "--interrupt_requests",
        "False",
    ]
    return _start(command, port, log, "/v1/models")


def _start(command: list[str], port: int, log: Path, ready_path: str) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    return wait_until_up(process, f"http://127.0.0.1:{port}{ready_path}", log)


if __name__ == "__main__":
    print(llama_server_binary())
