"""Hugging Face references as Ollama accepts them, and which repo files each one means.

``hf.co/{owner}/{repo}:{quant}`` picks the GGUF whose quantization is ``quant`` (compared without
case); ``hf.co/{owner}/{repo}`` picks ``Q4_K_M``; ``hf.co/{owner}/{repo}/{file}.gguf`` names
one file. A split GGUF (``-00001-of-00003.gguf``) means all of its parts. Pure functions: the
hub is asked elsewhere (``models_app.hub``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from models_app.names import InvalidModelName, normalize_model_name
from project.errors import ApiError

HOSTS = ("hf.co", "huggingface.co")
DEFAULT_QUANT = "Q4_K_M"

_TOKEN = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_REFERENCE = re.compile(
    rf"^(?:https?://)?(?:{'|'.join(re.escape(h) for h in HOSTS)})/"
    rf"(?P<owner>{_TOKEN})/(?P<repo>{_TOKEN})"
    rf"(?:/(?P<file>{_TOKEN}\.gguf))?"
    rf"(?::(?P<tag>{_TOKEN}))?$",
    re.IGNORECASE,
)
_SPLIT = re.compile(r"^(?P<stem>.+)-(?P<part>\d{5})-of-(?P<count>\d{5})\.gguf$", re.IGNORECASE)
# The quantization at the end of a file's stem: Q4_K_M, IQ4_XS, Q8_0, F16, BF16, UD-Q4_K_XL...
_QUANT = re.compile(r"(?:^|[-._])((?:UD-)?(?:I?Q\d[A-Z0-9_]*|BF16|F16|F32|MXFP4[A-Z0-9_]*))$", re.I)


class PullRefused(ApiError, ValueError):
    """A reference that cannot be pulled; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message, status=status)


@dataclass(frozen=True)
class HubReference:
    """A parsed reference. ``name`` is the local model name it creates."""

    repo_id: str
    name: str
    quant: str = ""
    filename: str = ""


@dataclass(frozen=True)
class HubFile:
    name: str
    size: int
    sha256: str

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "size": self.size, "sha256": self.sha256}


def is_hub_reference(raw: str) -> bool:
    return raw.strip().lower().startswith(tuple(f"{h}/" for h in HOSTS)) or "://" in raw


def parse_reference(raw: str) -> HubReference:
    """Parse ``raw``; raises PullRefused (400) when it is not one of the three forms, or
    holds ``..`` or an extra path part."""
    text = raw.strip()
    match = _REFERENCE.match(text)
    if not match or ".." in text:
        raise PullRefused(
            f"invalid model reference {raw!r}: expected hf.co/{{owner}}/{{repo}}[:quant] "
            "or hf.co/{owner}/{repo}/{file}.gguf"
        )
    owner, repo, filename, tag = match.group("owner", "repo", "file", "tag")
    if filename and tag:
        raise PullRefused(f"invalid model reference {raw!r}: a file reference takes no tag")
    repo_id = f"{owner}/{repo}"
    base = f"hf.co/{repo_id}" + (f"/{filename}" if filename else "")
    try:
        name = normalize_model_name(f"{base}:{tag}" if tag else base)
    except InvalidModelName as exc:
        raise PullRefused(str(exc)) from None
    return HubReference(repo_id=repo_id, name=name, quant=tag or "", filename=filename or "")


def file_quant(filename: str) -> str:
    """The quantization a GGUF file's name declares, as written there (``""`` when none)."""
    stem = filename.rsplit("/", 1)[-1]
    split = _SPLIT.match(stem)
    stem = split.group("stem") if split else re.sub(r"\.gguf$", "", stem, flags=re.I)
    match = _QUANT.search(stem)
    return match.group(1) if match else ""


def _is_model_file(filename: str) -> bool:
    # Multimodal projectors are GGUFs too, but not a model one can load on its own.
    base = filename.rsplit("/", 1)[-1].lower()
    return base.endswith(".gguf") and not base.startswith("mmproj")


def is_projector_file(filename: str) -> bool:
    """A vision projector's file, as repos name them: ``mmproj-model-f16.gguf``,
    ``model.mmproj-Q8_0.gguf``."""
    base = filename.rsplit("/", 1)[-1].lower()
    return base.endswith(".gguf") and "mmproj" in base


# Of several projectors in a repo, the one pulled: llama.cpp's converters write F16 by default.
_PROJECTOR_PREFERENCE = ("f16", "bf16", "q8_0", "f32")


def _projector(files: list[HubFile]) -> list[HubFile]:
    """The repo's vision projector, when it has one (at most one: see the preference)."""
    projectors = sorted((f for f in files if is_projector_file(f.name)), key=lambda f: f.name)
    for kind in _PROJECTOR_PREFERENCE:
        for hub_file in projectors:
            if file_quant(hub_file.name).lower() == kind:
                return [hub_file]
    return projectors[:1]


def _with_parts(chosen: HubFile, files: list[HubFile]) -> list[HubFile]:
    """``chosen`` alone, or every part of the split GGUF it belongs to, in order."""
    split = _SPLIT.match(chosen.name)
    if not split:
        return [chosen]
    prefix, count = chosen.name[: split.start("part") - 1], int(split.group("count"))
    wanted = [f"{prefix}-{i:05d}-of-{count:05d}.gguf" for i in range(1, count + 1)]
    by_name = {f.name: f for f in files}
    missing = [w for w in wanted if w not in by_name]
    if missing:
        raise PullRefused(f"split model is incomplete on the hub: {missing[0]} is missing", 404)
    return [by_name[w] for w in wanted]


def select_files(reference: HubReference, files: list[HubFile]) -> list[HubFile]:
    """The files ``reference`` means among a repo's ``files``: first part first, then the
    repo's vision projector when it has one (a file whose name holds ``mmproj``).

    Raises PullRefused (404) for a repo without GGUF files, an unknown quant or file, and
    (400) for a bare repo reference whose repo has no Q4_K_M, naming the quants there are.
    """
    models = [f for f in files if _is_model_file(f.name)]
    if not models:
        raise PullRefused(f"{reference.repo_id} has no GGUF files", 404)
    if reference.filename:
        match = next((f for f in models if f.name == reference.filename), None)
        if match is None:
            raise PullRefused(f"{reference.repo_id} has no file {reference.filename}", 404)
        return _with_parts(match, files) + _projector(files)
    wanted = (reference.quant or DEFAULT_QUANT).lower()
    candidates = sorted(
        (f for f in models if file_quant(f.name).lower() == wanted),
        key=lambda f: (not _is_first_part(f.name), f.name),
    )
    if not candidates:
        quants = available_quants(models)
        listed = ", ".join(quants) if quants else "none recognised"
        if reference.quant:
            raise PullRefused(
                f"{reference.repo_id} has no quant {reference.quant}; it has: {listed}", 404
            )
        raise PullRefused(
            f"{reference.repo_id} has no {DEFAULT_QUANT}; name a quant, one of: {listed}", 400
        )
    return _with_parts(candidates[0], files) + _projector(files)


def _is_first_part(filename: str) -> bool:
    split = _SPLIT.match(filename)
    return split is None or int(split.group("part")) == 1


def available_quants(files: list[HubFile]) -> list[str]:
    quants = {file_quant(f.name) for f in files if _is_model_file(f.name)}
    return sorted(q for q in quants if q)
