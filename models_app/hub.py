"""The Hugging Face hub, through huggingface_hub: what a reference means, and one file's bytes.

``resolve_plan`` asks the hub (``HF_ENDPOINT``) for the repo's files with their LFS sha256 and
picks the ones a reference means. ``download_file`` fetches one file into a partial file,
continuing from the bytes already there (an HTTP Range request), so a download cut off by a
killed worker resumes where it stopped. huggingface_hub's own ``hf_hub_download`` starts every
attempt in a fresh temporary file, so it cannot resume across processes; its lower-level
``get_hf_file_metadata`` and ``http_get`` can.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, cast

import httpx2
from django.conf import settings
from huggingface_hub import HfApi, constants, get_hf_file_metadata, hf_hub_url
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.file_download import http_get

from models_app.references import HubFile, HubReference, PullRefused, select_files

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PullPlan:
    """What to download for a reference, pinned to the commit it was resolved at."""

    reference: HubReference
    revision: str
    files: list[HubFile]

    @property
    def total(self) -> int:
        return sum(f.size for f in self.files)


class PullCancelled(Exception):
    """The job was cancelled (or taken over) while its bytes were arriving."""


def resolve_plan(reference: HubReference) -> PullPlan:
    """Ask the hub which files ``reference`` means. Raises PullRefused: 404 for an unknown repo
    or quant, 403 for a gated one, 502 when the hub cannot be reached or answers nonsense."""
    try:
        info = HfApi().model_info(reference.repo_id, files_metadata=True)
    except (RepositoryNotFoundError, RevisionNotFoundError):
        message = f"pull model manifest: repository {reference.repo_id} not found"
        raise PullRefused(message, 404) from None
    except GatedRepoError:
        message = f"{reference.repo_id} is gated: set HF_TOKEN to a token with access"
        raise PullRefused(message, 403) from None
    except (HfHubHTTPError, httpx2.HTTPError, OSError, ValueError) as exc:
        raise PullRefused(f"cannot read {reference.repo_id} from the hub: {exc}", 502) from exc
    files = [
        HubFile(s.rfilename, s.lfs.size, s.lfs.sha256) if s.lfs else HubFile(s.rfilename, 0, "")
        for s in info.siblings or []
    ]
    chosen = select_files(reference, files)
    for hub_file in chosen:
        if not hub_file.sha256:
            raise PullRefused(f"the hub gives no sha256 for {hub_file.name}; refusing it", 502)
        check_safe_filename(hub_file.name)
    return PullPlan(reference, info.sha or "main", chosen)


def check_safe_filename(name: str) -> None:
    parts = name.split("/")
    if name.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise PullRefused(f"refusing a file name that leaves its folder: {name!r}", 502)


def target_path(repo_id: str, filename: str) -> Path:
    """Where a repo's file is kept: ``MODELS_DIR/hf.co/{owner}/{repo}/{filename}``."""
    check_safe_filename(filename)
    root = Path(settings.MODELS_DIR).resolve()
    path = (root / "hf.co" / repo_id / filename).resolve()
    if not path.is_relative_to(root):
        raise PullRefused(f"refusing a path outside the models folder: {path}", 502)
    return path


def partial_path(sha256: str) -> Path:
    """The partial download of the file with this digest, wherever it came from."""
    return Path(settings.MODELS_DIR) / ".partial" / f"{sha256}.part"


def check_free_disk(needed: int, directory: Path, what: str = "the model") -> None:
    """Raises PullRefused (507) unless ``needed`` bytes of ``what`` fit in ``directory`` with
    ``HERD_DISK_RESERVE`` still free afterwards."""
    directory.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(directory).free
    reserve = int(settings.HERD_DISK_RESERVE)
    if needed + reserve > free:
        raise PullRefused(
            f"not enough disk space: {what} needs {needed} bytes, {directory} has {free} "
            f"free and keeps {reserve} in reserve",
            507,
        )


class _CountingWriter:
    """The file ``http_get`` writes into, telling ``on_bytes`` how far the file has got.

    ``on_bytes`` returns False to stop the download (it raises PullCancelled from ``write``).
    """

    def __init__(self, handle: BinaryIO, start: int, on_bytes: Callable[[int], bool]) -> None:
        self._handle = handle
        self._position = start
        self._on_bytes = on_bytes

    def write(self, chunk: bytes) -> int:
        written = self._handle.write(chunk)
        self._position += written
        if not self._on_bytes(self._position):
            raise PullCancelled()
        return written

    def tell(self) -> int:
        return self._handle.tell()

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._handle.seek(offset, whence)

    def truncate(self, size: int | None = None) -> int:
        # The server ignored our Range and sends the whole file again: count from zero.
        self._position = 0 if size is None else size
        return self._handle.truncate(size)

    def flush(self) -> None:
        self._handle.flush()


def download_file(
    repo_id: str, revision: str, hub_file: HubFile, into: Path, on_bytes: Callable[[int], bool]
) -> None:
    """Bring ``into`` to the whole of ``hub_file``, continuing from what it already holds.

    ``on_bytes(n)`` hears the file's size on disk as it grows. Raises PullRefused when the hub
    disagrees with the plan, PullCancelled when ``on_bytes`` says stop, and huggingface_hub's
    or httpx's errors when the transfer fails for good (after its own retries).
    """
    url = hf_hub_url(repo_id, hub_file.name, revision=revision)
    meta = get_hf_file_metadata(url)
    if meta.size is not None and meta.size != hub_file.size:
        raise PullRefused(
            f"{hub_file.name}: the hub lists {hub_file.size} bytes but serves {meta.size}", 502
        )
    into.parent.mkdir(parents=True, exist_ok=True)
    start = into.stat().st_size if into.exists() else 0
    if start > hub_file.size:  # not this file's prefix: start over
        into.unlink()
        start = 0
    if start:
        log.info("resuming %s at byte %d of %d", hub_file.name, start, hub_file.size)
    # http_get reads the body in blocks of this size (10 MiB by default): progress, and what a
    # killed worker leaves on disk, move in these steps.
    constants.DOWNLOAD_CHUNK_SIZE = int(settings.HERD_PULL_CHUNK)
    with into.open("ab") as handle:
        writer = _CountingWriter(handle, start, on_bytes)
        on_bytes(start)
        http_get(
            meta.location,
            cast(Any, writer),
            resume_size=start,
            expected_size=hub_file.size,
            displayed_filename=hub_file.name,
        )
