"""What the compose test needs from the host: a Docker daemon (started here when none runs), a
compose command, and the images docker-compose.yml names. Where a registry answers, they are
pulled; where none does, they are made here: Debian's base image with debootstrap, and the
Valkey and PostgreSQL images as stand-ins built from Debian's packages (the Dockerfiles beside
this module), under the names and tags the compose file uses. A llama-cpp-python wheel is built
once, so that Herd's image build finds it instead of compiling it again.

Everything made is kept for the next run: the debootstrap tree as a tarball in .cache/compose/,
the wheel in .cache/compose/wheels/, the images and their build layers in the daemon's storage.

``python -m tests.compose.images`` prepares the images alone (root, or a running daemon).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

import yaml

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CACHE = REPO / ".cache" / "compose"
BASE_IMAGE = "debian:bookworm-slim"
# The daemon this module starts when none runs: storage that works on any filesystem (each
# layer is a full copy, so images are kept small and their layers few), and no default bridge
# or iptables rules (the networks compose makes still resolve service names; image builds use
# the host's network instead).
DOCKERD_FLAGS = ["--storage-driver=vfs", "--iptables=false", "--bridge=none"]
STAND_INS = {"valkey": "valkey.Dockerfile", "postgres": "postgres.Dockerfile"}
STAND_IN_LABEL = "herd.compose-test.stand-in"


class DockerUnavailable(Exception):
    """Docker cannot run here; the message says why (the compose test skips with it)."""


class CommandFailed(Exception):
    """A command exited with an error; the message holds the end of its output."""


def run(
    argv: list[str],
    timeout: float,
    *,
    check: bool = True,
    stdin: IO[bytes] | None = None,
    env_overrides: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``argv`` to its end within ``timeout`` seconds, its output captured (and shown when it
    fails, which raises CommandFailed when ``check``). On the timeout its whole process
    group is killed: docker-compose leaves its ``docker build`` running otherwise."""
    process = subprocess.Popen(
        argv,
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env_overrides} if env_overrides else None,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    if check and process.returncode != 0:
        raise CommandFailed(
            f"{' '.join(argv)} exited with {process.returncode}:\n"
            f"{stdout[-3000:]}\n{stderr[-3000:]}"
        )
    return subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)


def log(message: str) -> None:
    print(f"[compose-test {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- the daemon ------------------------------------------------------------------------------


@dataclass
class Daemon:
    """The Docker daemon the test talks to; ``process`` is set when this module started it."""

    process: subprocess.Popen[bytes] | None

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        log("stopping the dockerd this test started")
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)


def _daemon_answers() -> bool:
    try:
        return run(["docker", "info"], timeout=30, check=False).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def start_daemon(timeout: float = 120) -> Daemon:
    """The running daemon, or one started here (root only). Raises DockerUnavailable."""
    if shutil.which("docker") is None:
        raise DockerUnavailable("no docker command (apt-get install docker.io docker-compose)")
    if _daemon_answers():
        return Daemon(None)
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        raise DockerUnavailable("no Docker daemon runs and there is no dockerd to start")
    if os.geteuid() != 0:
        raise DockerUnavailable("no Docker daemon runs, and starting dockerd needs root")
    CACHE.mkdir(parents=True, exist_ok=True)
    log_path = CACHE / "dockerd.log"
    log(f"starting dockerd {' '.join(DOCKERD_FLAGS)} (its log: {log_path})")
    with log_path.open("wb") as output:
        process = subprocess.Popen(
            [dockerd, *DOCKERD_FLAGS],
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    daemon = Daemon(process)
    deadline = time.monotonic() + timeout
    while not _daemon_answers():
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise DockerUnavailable(f"dockerd exited ({process.returncode}):\n{tail}")
        if time.monotonic() > deadline:
            daemon.stop()
            raise DockerUnavailable(f"dockerd did not answer within {timeout:.0f} s")
        time.sleep(0.5)
    return daemon


def compose_command() -> list[str]:
    """``docker compose`` (v2) where the plugin is there, else ``docker-compose`` (v1).
    Raises DockerUnavailable."""
    if run(["docker", "compose", "version"], timeout=30, check=False).returncode == 0:
        return ["docker", "compose"]
    legacy = shutil.which("docker-compose")
    if legacy is None:
        raise DockerUnavailable("neither docker compose nor docker-compose is installed")
    return [legacy]


# -- the images ------------------------------------------------------------------------------


def compose_images() -> dict[str, str]:
    """The image each of docker-compose.yml's stand-in services names."""
    services = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    return {service: services[service]["image"] for service in STAND_INS}


def image_labels(image: str) -> dict[str, str] | None:
    """The image's labels, or None when the daemon has no such image."""
    found = run(["docker", "image", "inspect", image], timeout=60, check=False)
    if found.returncode != 0:
        return None
    labels = json.loads(found.stdout)[0]["Config"].get("Labels")
    return dict(labels or {})


def pulled(image: str) -> bool:
    """Whether a registry gave the image (it fails fast where none answers)."""
    try:
        return run(["docker", "pull", image], timeout=600, check=False).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def debian_mirror() -> str:
    """The Debian mirror apt uses here (DEBIAN_MIRROR overrides)."""
    if os.environ.get("DEBIAN_MIRROR"):
        return os.environ["DEBIAN_MIRROR"]
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.exists():
        match = re.search(r"^URIs:\s*(\S+/debian)\s*$", sources.read_text(), re.M)
        if match:
            return match.group(1)
    return "http://deb.debian.org/debian"


def ensure_base_image() -> None:
    """``debian:bookworm-slim``: in the daemon, pulled, or imported from a debootstrap tree
    (made once, kept as .cache/compose/debian-bookworm.tar)."""
    if image_labels(BASE_IMAGE) is not None or pulled(BASE_IMAGE):
        return
    tarball = CACHE / "debian-bookworm.tar"
    if not tarball.exists():
        if shutil.which("debootstrap") is None:
            raise DockerUnavailable(
                f"no registry gives {BASE_IMAGE} and debootstrap is not installed to make it"
            )
        mirror = debian_mirror()
        log(f"making {BASE_IMAGE} with debootstrap from {mirror} (about a minute, once)")
        CACHE.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=CACHE) as scratch:
            root = Path(scratch) / "root"
            run(["debootstrap", "--variant=minbase", "bookworm", str(root), mirror], timeout=1200)
            # What the slim image leaves out too: the downloaded packages and the indexes.
            for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
                for path in (root / leftover).glob("*"):
                    if path.is_file():
                        path.unlink()
            partial_tar = tarball.with_suffix(".partial")
            run(["tar", "-C", str(root), "-cf", str(partial_tar), "."], timeout=600)
            partial_tar.rename(tarball)
    log(f"importing {BASE_IMAGE} from {tarball}")
    with tarball.open("rb") as source:
        run(
            ["docker", "import", "--change", 'CMD ["bash"]', "-", BASE_IMAGE],
            timeout=600,
            stdin=source,
        )


def _stand_in_digest(dockerfile: str) -> str:
    """A digest of a stand-in's Dockerfile and the scripts it copies: a stand-in built from
    other files is built again."""
    digest = hashlib.sha256()
    for path in sorted([HERE / dockerfile, *HERE.glob("*.sh")]):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def ensure_service_images() -> None:
    """The Valkey and PostgreSQL images the compose file names: in the daemon, pulled, or
    built as stand-ins from Debian's packages."""
    for service, image in compose_images().items():
        dockerfile = STAND_INS[service]
        digest = _stand_in_digest(dockerfile)
        labels = image_labels(image)
        if labels is not None and labels.get(STAND_IN_LABEL, digest) == digest:
            continue  # the real image (no label), or this very stand-in
        if labels is None and pulled(image):
            continue
        log(f"no registry gives {image}: building its stand-in from {dockerfile}")
        run(
            [
                "docker",
                "build",
                "--network",
                "host",
                "--label",
                f"{STAND_IN_LABEL}={digest}",
                "-f",
                str(HERE / dockerfile),
                "-t",
                image,
                str(HERE),
            ],
            timeout=900,
        )


# What the image's Python (Debian's 3.11.2) needs beyond what this machine's Python resolves to,
# through requirements with markers on the Python version: redis asks for async-timeout below
# 3.11.3.
IMAGE_PYTHON_NEEDS = ["async-timeout>=4.0.3"]


def wheels() -> Path:
    """A directory of wheels for everything Herd's image installs with pip, llama-cpp-python's
    among them, so that the image build needs neither an index nor a compiler's minutes: pip's
    cache on this machine gives most (and the llama-cpp-python wheel the venv built); what it
    lacks is downloaded, or compiled, once. Made again when pyproject.toml changes."""
    directory = CACHE / "wheels"
    pyproject = (REPO / "pyproject.toml").read_bytes()
    marker = directory / ".pyproject-sha256"
    digest = hashlib.sha256(pyproject + " ".join(IMAGE_PYTHON_NEEDS).encode()).hexdigest()
    if marker.exists() and marker.read_text() == digest:
        return directory
    log(f"wheels for the image into {directory} (from pip's cache, or built, once)")
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    project = tomllib.loads(pyproject.decode())
    build_requires = project["build-system"]["requires"]
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--wheel-dir",
            str(directory),
            *project["project"]["dependencies"],
            *build_requires,
            *IMAGE_PYTHON_NEEDS,
        ],
        timeout=1500,
        # Should pip compile llama-cpp-python here: a build for any x86-64 CPU, as the image's.
        env_overrides={"CMAKE_ARGS": "-DGGML_NATIVE=off"},
    )
    marker.write_text(digest)
    return directory


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


# The port the wheels are served on when it is free: the same URL from run to run keeps the
# build arguments, and so Docker's cached layers, the same.
WHEELS_PORT = 47311


@contextmanager
def serving(directory: Path) -> Iterator[str]:
    """``directory`` over HTTP on the loopback address, for builds on the host's network: its
    URL, while the context lasts."""
    try:
        server = ThreadingHTTPServer(
            ("127.0.0.1", WHEELS_PORT), partial(_QuietHandler, directory=str(directory))
        )
    except OSError:
        server = ThreadingHTTPServer(
            ("127.0.0.1", 0), partial(_QuietHandler, directory=str(directory))
        )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def prepare() -> None:
    """The base and service images, ready in the daemon."""
    started = time.monotonic()
    ensure_base_image()
    ensure_service_images()
    log(f"base and service images ready ({time.monotonic() - started:.0f} s)")


if __name__ == "__main__":
    daemon = start_daemon()
    try:
        prepare()
    finally:
        daemon.stop()
