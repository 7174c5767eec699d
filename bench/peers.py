"""The servers a benchmark runs side by side on the demo model: Herd and its peers,

- llama-cpp-python's own server (``python -m llama_cpp.server``), which serves one request at
  a time;
- llama.cpp's ``llama-server``, built from the llama.cpp sources vendored in the
  llama-cpp-python source distribution of the installed version, into ``.cache/`` (never
  committed), so both peers run the same llama.cpp as Herd.

Each runs with the settings a benchmark gives it (its own defaults unless it says otherwise),
and each row a benchmark writes says what those were. ``python bench/peers.py`` builds
llama-server ahead of a run.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.common import (  # noqa: E402
    DEMO,
    REPACK,
    THREADS,
    TUNING,
    HerdContext,
    demo_model_path,
    herd_context,
    herd_threads,
    start_server,
    stop,
    wait_until_up,
    warm_up,
)
from tests.live import free_port  # noqa: E402

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


@dataclass(frozen=True)
class LlamaServerSettings:
    """The flags a ``llama-server`` runs with beyond the model and address; None leaves one
    to llama-server's own default."""

    parallel: int | None = None  # -np: its slots
    cells: int | None = None  # -c: the KV cache of every slot together
    threads: int | None = None  # -t
    # --kv-unified --kv-unified-per-slot N: the slots share one cache, each holding up to N
    # tokens of it, as Herd's sequences do; None: a cache each (-c over -np).
    shared_per_slot: int | None = None

    def flags(self) -> list[str]:
        chosen = (("-np", self.parallel), ("-c", self.cells), ("-t", self.threads))
        flags = [part for flag, value in chosen if value is not None for part in (flag, str(value))]
        if self.shared_per_slot is not None:
            flags += ["--kv-unified", "--kv-unified-per-slot", str(self.shared_per_slot)]
        return flags

    @classmethod
    def like(cls, herd: HerdContext) -> LlamaServerSettings:
        """The slots, context and cache Herd allocated: as many slots as it decodes at once,
        sharing its cells where it shares them; else a whole context each."""
        if herd.shared:
            return cls(parallel=herd.at_once, cells=herd.cells, shared_per_slot=herd.per_sequence)
        return cls(parallel=herd.whole_contexts, cells=herd.cells)

    def describe(self) -> str:
        return " ".join(self.flags()) or "no flags (its defaults)"


def start_llama_server(
    model: Path, port: int, settings: LlamaServerSettings, log: Path, poll_s: float = 0.2
) -> subprocess.Popen[bytes]:
    """``llama-server`` on ``model`` with ``settings``, once its ``/health`` answers (asked
    every ``poll_s``)."""
    command = [
        str(llama_server_binary()),
        "-m",
        str(model),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *settings.flags(),
    ]
    if not REPACK:
        command.append("--no-repack")
    return _start(command, port, log, "/health", poll_s)


def llama_server_choices(log: Path) -> str:
    """What a running ``llama-server`` made of its settings, from its log: its slots, their
    context, whether they share one KV cache, and its threads."""
    text = log.read_text(errors="replace")
    slots = re.search(r"n_slots = (\d+), n_ctx_slot = (\d+), kv_unified = '(\w+)'", text)
    threads = re.search(r"n_threads = (\d+)", text)
    if slots is None or threads is None:
        return "(its log does not say what it chose)"
    unified = "one KV cache shared" if slots[3] == "true" else "a KV cache each"
    return f"{slots[1]} slots of {slots[2]} tokens, {unified}, {threads[1]} threads"


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


def _start(
    command: list[str], port: int, log: Path, ready_path: str, poll_s: float = 0.2
) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    return wait_until_up(process, f"http://127.0.0.1:{port}{ready_path}", log, poll_s=poll_s)


def herd_settings(env: dict[str, str] | None, home: Path, context: HerdContext) -> str:
    """What the `herd serve` in ``home`` was given (``env`` over its defaults) and what it
    chose: the ``context`` it allocated, and the threads its worker logged."""
    tuned = " ".join(f"{k}={v}" for k, v in (env or {}).items())
    chose = [context.describe()]
    chose += [threads] if (threads := herd_threads(home)) else []
    given = tuned or f"its defaults (no {', '.join(TUNING)})"
    return f"{given}; chose {', '.join(chose)}"


# llama-cpp-python's server runs one request at a time, so one sequence's context is enough.
LLAMA_CPP_PYTHON_CTX = 2048
# The keys of the servers every comparison runs (Lineup.start_main), as the run's figures
# name them: Herd with its defaults, and the llama-server the targets are against.
HERD = "herd"
LLAMA_SERVER_NP8 = "llama_server_np8"
LLAMA_SERVER = "llama_server"


@dataclass
class Server:
    """One running server of a lineup: ``key`` names it in the run's figures, ``name`` in a
    table, ``settings`` says what it ran with, ``model`` is what its requests name."""

    key: str
    name: str
    settings: str
    base: str
    model: str
    process: subprocess.Popen[bytes]


class Lineup:
    """Servers up at once, each warmed up when it starts (a Herd's first request loads its
    model), all stopped when the ``with`` block ends. Logs and Herd homes go in ``home``."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.servers: list[Server] = []

    def __enter__(self) -> Lineup:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        for server in self.servers:
            stop(server.process)

    def start_main(self) -> tuple[Server, Server, Server]:
        """Herd with its defaults, llama-server ``-np 8`` (the reference) and llama-server with
        its defaults, in that order."""
        return (
            self.herd(HERD, "Herd, its defaults"),
            self.llama_server(LLAMA_SERVER_NP8, "llama-server -np 8", LlamaServerSettings(8)),
            self.llama_server(LLAMA_SERVER, "llama-server, its defaults", LlamaServerSettings()),
        )

    def herd(self, key: str, name: str, env: dict[str, str] | None = None) -> Server:
        """A `herd serve` with ``env`` over its defaults (none: Herd as `make run` starts it)."""
        home = self.home / key
        home.mkdir()
        port = free_port()
        process = start_server(home, port, env)
        base = f"http://127.0.0.1:{port}"
        server = self._add(Server(key, name, "", base, DEMO, process))
        warm_up(base, DEMO)
        server.settings = herd_settings(env, home, herd_context(base, home))
        return server

    def _add(self, server: Server) -> Server:
        """``server``, which the lineup now stops at its end."""
        self.servers.append(server)
        return server

    def model(self) -> Path:
        """The demo model's file, from the first Herd of the lineup (which installed it)."""
        first = next(s for s in self.servers if s.model == DEMO)
        return demo_model_path(self.home / first.key)

    def llama_server(self, key: str, name: str, settings: LlamaServerSettings) -> Server:
        model = self.model()
        port = free_port()
        log = self.home / f"{key}.log"
        process = start_llama_server(model, port, settings, log)
        base = f"http://127.0.0.1:{port}"
        server = self._add(Server(key, name, "", base, str(model), process))
        warm_up(base, str(model))
        server.settings = f"{settings.describe()}; chose {llama_server_choices(log)}"
        return server

    def llama_cpp_python(self, key: str, name: str) -> Server:
        model = self.model()
        port = free_port()
        log = self.home / f"{key}.log"
        process = start_llama_cpp_python_server(model, port, THREADS, LLAMA_CPP_PYTHON_CTX, log)
        base = f"http://127.0.0.1:{port}"
        settings = f"--n_threads {THREADS} --n_ctx {LLAMA_CPP_PYTHON_CTX}; one request at a time"
        server = self._add(Server(key, name, settings, base, str(model), process))
        warm_up(base, str(model))
        return server


if __name__ == "__main__":
    print(llama_server_binary())
