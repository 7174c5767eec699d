"""Which models this worker process holds, each behind its engine.

Contract: ``get(spec)`` returns the resident model for a model spec (``ModelRecord.to_spec``),
loading it first when needed, and counts the caller as a user until ``release``; concurrent
first calls for one model cause one load. A spec whose file, context size or KV cache type
changed (new path, digest, ``num_ctx`` or ``kv_cache_type``) replaces the old copy. ``release``
sets when the model may go: after its keep-alive (``HERD_KEEP_ALIVE`` unless the request says;
negative: never; 0: as soon as nobody uses it). ``expire_idle`` (the heartbeat thread calls it)
unloads models past their time that nobody uses.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings

from models_app.gguf_metadata import GGUFError, read_gguf_metadata
from workers import kv_cache
from workers.broker.wire import ModelSpec
from workers.engine.factory import EngineConfig, load_engine
from workers.engine.jobs import Engine
from workers.engine.loading import repack_weights
from workers.engine.requests import ModelProfile
from workers.kv_cache import MIN_DEFAULT_CONTEXT, NO_LAYOUT, CacheType, KVLayout, cache_type_for
from workers.worker.cpus import default_threads
from workers.worker.devices import parse_device

log = logging.getLogger(__name__)


def llama_threads() -> int:
    """``HERD_NUM_THREADS``, else one per physical core this process may use
    (``workers.worker.cpus``)."""
    return int(settings.HERD_NUM_THREADS) or default_threads().threads


# The most sequences a model decodes together when HERD_PARALLEL does not say; they start as
# their KV cells allow. On the CPU a step of 32 still pays and one of 64 no longer does
# (bench/RESULTS.md, "Step width"); each running request holds one of a worker's
# HERD_WORKER_THREADS (32) or HERD_BATCH_RUNNERS (40). The GPU's has not been measured (no GPU
# on the machines bench/RESULTS.md comes from).
DEFAULT_PARALLEL = {"cpu": 32, "cuda": 32}
# Whole contexts a model's KV cache holds when HERD_PARALLEL does not say: the memory the
# budget counts for it. Short answers fit many to a context.
DEFAULT_CACHE_SEQUENCES = {"cpu": 4, "cuda": 8}
__all__ = [
    "MIN_DEFAULT_CONTEXT",
    "Residency",
    "ResidentModel",
    "default_context",
    "kv_cache_type",
    "kv_layout",
]


def parallel_slots(device: str) -> int:
    """The most sequences a model decodes at once: ``HERD_PARALLEL``, else the default for
    the device kind (``cpu``, ``cuda:N``)."""
    return int(settings.HERD_PARALLEL) or _by_kind(DEFAULT_PARALLEL, device)


def cache_sequences(device: str) -> int:
    """How many whole contexts a model's KV cache holds: ``HERD_PARALLEL`` when set (each of
    its sequences may fill its context, as llama-server's ``-np`` gives), else the default
    for the device kind."""
    return int(settings.HERD_PARALLEL) or _by_kind(DEFAULT_CACHE_SEQUENCES, device)


def _by_kind(defaults: dict[str, int], device: str) -> int:
    return defaults.get(device.split(":", 1)[0], defaults["cpu"])


def kv_cache_type(spec: ModelSpec) -> CacheType:
    """The type ``spec``'s KV cache is kept in: the record's ``kv_cache_type`` parameter, else
    ``HERD_KV_CACHE_TYPE``; f16 where the model's heads do not divide into the type's blocks
    (llama.cpp would refuse the context)."""
    return cache_type_for(kv_layout(spec.path), wanted_cache_type(spec))


def wanted_cache_type(spec: ModelSpec) -> str:
    """The KV cache type asked for: the record's, else the worker's."""
    return str((spec.default_options or {}).get("kv_cache_type") or settings.HERD_KV_CACHE_TYPE)


@dataclass
class ResidentModel:
    spec: ModelSpec
    engine: Engine
    loaded_at: float
    load_seconds: float
    last_used: float = field(default_factory=time.monotonic)
    # Wall-clock time after which the model may be unloaded; None keeps it forever.
    expires_at: float | None = None
    users: int = 0
    # Pinned here by an admin (workers.Placement): never expired, never evicted.
    pinned: bool = False
    # The context size asked for at load (llama.cpp may round what it allocates).
    requested_ctx: int = 0
    context_length: int = 0  # what llama.cpp allocated
    cache_type: str = "f16"  # what its KV cache is kept in (kv_cache_type)
    kv_bytes: int = 0  # the KV cache of all its sequences (see kv_cache_bytes)

    def describe(self, device: str) -> dict[str, Any]:
        """What the worker registry (and so ``/api/ps``) shows about this model."""
        # As Ollama's /api/ps counts it: the weights and the KV cache together.
        size = _weights_size(self.spec) + self.kv_bytes
        return {
            "id": self.spec.id,
            "name": self.spec.name,
            "digest": self.spec.sha256,
            "size": size,
            # Every layer is offloaded on a GPU device (Device.gpu_layers), none on the CPU.
            "size_vram": size if device.startswith("cuda") else 0,
            "context_length": self.context_length,
            "expires_at": self.expires_at,
            "loaded_at": self.loaded_at,
        }

    @property
    def identity(self) -> tuple[str, str, str]:
        """What a reload follows: the file, its digest and the projector beside it."""
        return (self.spec.path, self.spec.sha256, self.spec.projector)


class ModelTooLarge(RuntimeError):
    """The model alone is bigger than this worker's memory budget."""


class NoRoom(RuntimeError):
    """Making room would mean unloading a model that is in use."""


class Residency:
    """``budget`` (bytes, 0 for none) bounds the memory held at once, weights and KV caches:
    loading a model first unloads idle ones, least recently used first, until it fits."""

    def __init__(self, budget: int = 0, worker_name: str = "", device: str = "cpu") -> None:
        self.budget = budget
        self.worker_name = worker_name
        self.device = device
        self._models: dict[int, ResidentModel] = {}
        self._guard = threading.Lock()
        self._load_locks: dict[int, threading.Lock] = {}
        # How many times each model was loaded in this process: the registry shows it, so a
        # second load of a resident model is visible.
        self.load_counts: dict[str, int] = {}

    def get(self, spec: ModelSpec, keep_alive: float | None = None) -> ResidentModel:
        """The resident model, its user count raised. Its expiry moves to ``keep_alive`` from
        now (as in ``release``) while in use too, so the registry never shows a stale one."""
        model_id = spec.id
        with self._lock_of(model_id):
            resident = self._models.get(model_id)
            wanted = (spec.path, spec.sha256, spec.projector)
            if resident is not None and (
                resident.identity != wanted
                or resident.requested_ctx != self.context_size(spec)
                or resident.cache_type != kv_cache_type(spec).name
            ):
                self.unload(model_id)
                resident = None
            if resident is None:
                self._make_room(spec)
                resident = self._load(spec)
                self._models[model_id] = resident
                self.load_counts[spec.name] = self.load_counts.get(spec.name, 0) + 1
            resident.spec = spec  # the newest template and defaults
            resident.engine.use_profile(model_profile(spec))
            resident.pinned = self.worker_name in spec.pinned_to
            resident.last_used = time.monotonic()
            resident.users += 1
            resident.expires_at = _expiry(keep_alive)
            return resident

    def release(self, resident: ResidentModel, keep_alive: float | None) -> None:
        """The caller is done with ``resident``; keep it ``keep_alive`` seconds more (None:
        ``HERD_KEEP_ALIVE``; negative: forever; 0: unload now unless someone else uses it)."""
        seconds = float(settings.HERD_KEEP_ALIVE) if keep_alive is None else keep_alive
        model_id = resident.spec.id
        with self._lock_of(model_id):
            resident.users = max(0, resident.users - 1)
            resident.expires_at = _expiry(seconds)
            idle = resident.users == 0 and not resident.pinned
            if seconds == 0 and idle and self._models.get(model_id) is resident:
                self.unload(model_id)

    def unload_when_idle(self, model_id: int) -> bool:
        """Expire the model now: unloaded at once if nobody uses it, else when the last user
        releases it. False when it was not resident."""
        with self._lock_of(model_id):
            resident = self._models.get(model_id)
            if resident is None:
                return False
            if resident.pinned:
                return True  # an admin's pin outlasts a request's keep_alive
            resident.expires_at = time.time()
            if resident.users == 0:
                self.unload(model_id)
            return True

    def expire_idle(self) -> None:
        """Unload every model past its keep-alive that nobody is using."""
        now = time.time()
        for model_id, resident in list(self._models.items()):
            expired = resident.expires_at is not None and resident.expires_at <= now
            if not expired or resident.users or resident.pinned:
                continue
            lock = self._lock_of(model_id)
            if not lock.acquire(blocking=False):
                continue  # being loaded or released right now: look again next time
            try:
                expires_at = resident.expires_at
                still_idle = self._models.get(model_id) is resident and not resident.users
                if still_idle and expires_at is not None and expires_at <= time.time():
                    self.unload(model_id)
            finally:
                lock.release()

    def memory_used(self) -> int:
        """Bytes held: each resident model's weights (its file, memory-mapped, and its vision
        projector's) and KV cache."""
        return sum(_weights_size(m.spec) + m.kv_bytes for m in self.resident())

    def _make_room(self, spec: ModelSpec) -> None:
        if not self.budget:
            return
        weights = _weights_size(spec)
        parallel = parallel_slots(self.device)
        cells = self.context_size(spec) * cache_sequences(self.device)
        cache = kv_cache_bytes(spec.path, cells, parallel, kv_cache_type(spec).name)
        need = weights + cache
        if need > self.budget:
            raise ModelTooLarge(
                f"model '{spec.name}' needs {need / 1e6:.1f} MB ({weights / 1e6:.1f} MB of "
                f"weights, {cache / 1e6:.1f} MB of KV cache), more than this worker's memory "
                f"budget of {self.budget / 1e6:.1f} MB"
            )
        while self.memory_used() + need > self.budget:
            idle = [
                m for m in self.resident() if not m.users and not m.pinned and m.spec.id != spec.id
            ]
            if not idle:
                raise NoRoom(f"no room for model '{spec.name}': the loaded models are in use")
            victim = min(idle, key=lambda m: m.last_used)
            lock = self._lock_of(victim.spec.id)
            if not lock.acquire(blocking=False):
                raise NoRoom(f"no room for model '{spec.name}' yet: a model is busy")
            try:
                if not victim.users:
                    log.info("evicting %s to make room for %s", victim.spec.name, spec.name)
                    self.unload(victim.spec.id)
            finally:
                lock.release()

    def context_size(self, spec: ModelSpec) -> int:
        """The context (per sequence) ``spec`` loads with: ``num_ctx`` from the request or the
        model record, else ``HERD_NUM_CTX``, else what the budget allows (see
        ``default_context``); never more than the model was trained for."""
        train_ctx = int(spec.context_length or 0)
        wanted = int(
            spec.num_ctx or (spec.default_options or {}).get("num_ctx") or settings.HERD_NUM_CTX
        )
        if not wanted:
            contexts = cache_sequences(self.device)
            wanted = default_context(spec, self.budget, contexts, parallel_slots(self.device))
        return min(wanted, train_ctx) if train_ctx else wanted

    def _lock_of(self, model_id: int) -> threading.Lock:
        with self._guard:
            return self._load_locks.setdefault(model_id, threading.Lock())

    def unload(self, model_id: int) -> None:
        resident = self._models.pop(model_id, None)
        if resident is not None:
            resident.engine.close()
            log.info("unloaded %s", resident.spec.name)

    def resident(self) -> list[ResidentModel]:
        return list(self._models.values())

    def _load(self, spec: ModelSpec) -> ResidentModel:
        started = time.monotonic()
        n_ctx = self.context_size(spec)
        parallel = parallel_slots(self.device)
        contexts = cache_sequences(self.device)
        kind = kv_cache_type(spec)
        if kind.name != wanted_cache_type(spec):
            log.warning(
                "%s: its attention heads (%d values wide) do not divide into %s blocks: its KV "
                "cache stays in %s",
                spec.name,
                kv_layout(spec.path).head_width,
                wanted_cache_type(spec),
                kind.name,
            )
        config = EngineConfig(
            name=spec.name,
            path=spec.path,
            n_ctx=n_ctx,
            threads=llama_threads(),
            gpu_layers=parse_device(self.device).gpu_layers,
            repack=repack_weights(str(settings.HERD_CPU_REPACK)),
            parallel=parallel,
            cache_sequences=contexts,
            kv_cache_type=kind.name,
            projector=spec.projector,
        )
        engine = load_engine(config, model_profile(spec))
        took = time.monotonic() - started
        cells = engine.cache_cells
        log.info(
            # bench/common.py reads "in a cache of N tokens" from this line.
            "loaded %s in %.2fs (n_ctx=%d a sequence, up to %d at once in a cache of %d tokens, "
            "in %s)",
            spec.name,
            took,
            n_ctx,
            parallel,
            cells,
            kind.name,
        )
        context_length = engine.context_length
        return ResidentModel(
            spec,
            engine,
            time.time(),
            took,
            requested_ctx=n_ctx,
            context_length=context_length,
            cache_type=kind.name,
            kv_bytes=kv_cache_bytes(spec.path, cells, parallel, kind.name),
        )


def _expiry(keep_alive: float | None) -> float | None:
    """When a model kept ``keep_alive`` seconds from now expires (None: never)."""
    seconds = float(settings.HERD_KEEP_ALIVE) if keep_alive is None else keep_alive
    return None if seconds < 0 else time.time() + seconds


def model_profile(spec: ModelSpec) -> ModelProfile:
    """What the engine keeps of a model's record for every request."""
    return ModelProfile(
        chat_template=spec.chat_template,
        system_prompt=spec.system_prompt,
        messages=tuple(spec.messages),
        reasoning_tags=tuple(spec.reasoning_tags),
    )


def default_context(spec: ModelSpec, budget: int, contexts: int, sequences: int) -> int:
    """The model's own context, cut down to what ``budget`` leaves for its KV cache in its
    cache type (``workers.kv_cache.default_context``)."""
    return kv_cache.default_context(
        kv_layout(spec.path, kv_cache_type(spec).name),
        int(spec.context_length or 0),
        _weights_size(spec),
        budget,
        contexts,
        sequences,
    )


@functools.lru_cache(maxsize=64)
def _kv_layout(path: str, mtime_ns: int) -> KVLayout:
    return read_gguf_metadata(Path(path)).kv_layout


def kv_layout(path: str, cache_type: str = "f16") -> KVLayout:
    """The KV cache per token of the model at ``path``, from its GGUF header, kept in
    ``cache_type`` (one its heads hold: see ``kv_cache_type``); empty when the header cannot
    be read (the weights are then all the budget counts)."""
    try:
        layout = _kv_layout(path, os.stat(path).st_mtime_ns)
    except (OSError, GGUFError):
        return NO_LAYOUT
    return layout.in_type(kv_cache.cache_type(cache_type))


def kv_cache_bytes(path: str, cells: int, sequences: int, cache_type: str = "f16") -> int:
    """The KV cache llama.cpp allocates for ``cells`` tokens of context shared by up to
    ``sequences`` sequences, of the model at ``path``, in ``cache_type``
    (``workers.kv_cache``)."""
    return kv_cache.kv_cache_bytes(kv_layout(path, cache_type), cells, sequences)


def _weights_size(spec: ModelSpec) -> int:
    """The model's weights in memory: its file, and its vision projector's (loaded in full,
    on the model's device)."""
    return _file_size(spec.path) + (_file_size(spec.projector) if spec.projector else 0)


def _file_size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
