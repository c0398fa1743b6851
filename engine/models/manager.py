"""The model manager: loaded models in an LRU cache under a memory budget, an active model
that can be swapped while the app runs, and memory given back on unload.

Generation borrows a model with :meth:`ModelManager.use`: a model in use is never freed
under it. Swapping the active model, unloading or evicting one that is in use only marks it;
its memory is released when the last generation using it finishes. So a swap needs no
restart, and an answer being written finishes on the model it started with.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace

from engine.errors import InputError
from engine.machine import GB, read_memory, release_memory
from engine.models.spec import ModelSpec, merges_adapter


def model_bytes(model) -> int:
    """Bytes held by a model's parameters and buffers (shared tensors counted once; none for a remote model)."""
    if model is None:
        return 0
    seen, total = set(), 0
    for tensor in [*model.parameters(), *model.buffers()]:
        key = (tensor.data_ptr(), tensor.numel())
        if key not in seen:
            seen.add(key)
            total += tensor.numel() * tensor.element_size()
    for module in model.modules():  # torch's dynamic int8 layers keep packed weights outside parameters()
        if hasattr(module, "_packed_params") and callable(getattr(module, "weight", None)):
            total += module.weight().numel()
    return total


@dataclass
class Slot:
    spec: ModelSpec
    generator: object
    size_gb: float
    loaded_at: float
    users: int = 0
    retired: bool = False  # unloaded or evicted while in use: freed when the last user finishes


@dataclass(frozen=True)
class ManagerEvent:
    """What the manager did (shown on the Models page): load, unload, evict, swap, release."""

    kind: str
    model: str
    detail: str
    rss_before_gb: float
    rss_after_gb: float
    at: float = field(default_factory=time.time)


class ModelManager:
    """Loads generators by spec, keeps the most recently used under ``budget_gb``, swaps the active one.

    ``load`` is the function that makes a generator from a spec (the Studio's ``load_generator``
    with the settings bound); tests may pass another.
    """

    def __init__(self, load: Callable[[ModelSpec], object], budget_gb: float, default: ModelSpec | None = None):
        self._load = load
        self.budget_gb = budget_gb
        self.default = default
        self._slots: OrderedDict[ModelSpec, Slot] = OrderedDict()
        self._retired: list[Slot] = []
        self._active: ModelSpec | None = None
        self._lock = threading.RLock()
        self.events: list[ManagerEvent] = []

    # -- reading -------------------------------------------------------------------------------

    @property
    def active_spec(self) -> ModelSpec | None:
        return self._active or self.default

    def loaded(self) -> list[Slot]:
        """The loaded models, least recently used first."""
        with self._lock:
            return list(self._slots.values())

    def used_gb(self) -> float:
        with self._lock:
            return sum(s.size_gb for s in self._slots.values())

    # -- loading and unloading --------------------------------------------------------------------

    def get(self, spec: ModelSpec) -> object:
        """The generator for ``spec``, loaded if needed (evicting the least recently used to fit)."""
        with self._lock:
            slot = self._slots.get(spec)
            if slot is not None:
                self._slots.move_to_end(spec)
                return slot.generator
            before = rss_gb()
            generator = self._load(spec)
            warm_up(generator)
            size = model_bytes(generator.model) / GB
            self._slots[spec] = Slot(spec=spec, generator=generator, size_gb=size, loaded_at=time.time())
            self._record("load", spec, f"{size:.2f} GB of weights", before)
            self._evict_to_fit(keep=spec)
            return generator

    def unload(self, spec: ModelSpec) -> ManagerEvent:
        """Unload ``spec``; a model in use is freed when its generations finish."""
        with self._lock:
            slot = self._slots.pop(spec, None)
            if slot is None:
                raise InputError(f"{spec.name} is not loaded.")
            if self._active == spec:
                self._active = None
            return self._retire(slot, "unload")

    def _evict_to_fit(self, keep: ModelSpec) -> None:
        while self.used_gb() > self.budget_gb and len(self._slots) > 1:
            victim = next(s for s in self._slots if s != keep)
            slot = self._slots.pop(victim)
            if self._active == victim:
                self._active = None
            self._retire(slot, "evict")

    def _retire(self, slot: Slot, kind: str) -> ManagerEvent:
        before = rss_gb()
        if slot.users:
            slot.retired = True
            self._retired.append(slot)
            return self._record(kind, slot.spec, f"in use by {slot.users}: freed when it finishes", before)
        slot.generator = None
        release_memory()
        return self._record(kind, slot.spec, f"{slot.size_gb:.2f} GB of weights released", before)

    def quantize(self, spec: ModelSpec, quantization: str) -> ModelSpec:
        """Quantize the loaded full-precision ``spec`` in memory (no reload from disk); its slot, and
        the active mark if it had it, pass to the quantized spec, which is returned."""
        with self._lock:
            slot = self._slots.get(spec)
            if slot is None:
                raise InputError(f"{spec.name} is not loaded.")
            if slot.users:
                raise InputError(f"{describe(spec)} is answering a question: quantize it when that finishes.")
            target = replace(spec, quantization=quantization)
            if target in self._slots:
                raise InputError(f"{describe(target)} is loaded already.")
            if spec.adapter and not merges_adapter(quantization):
                return self._reload_unmerged(spec, target)
            before = rss_gb()
            from engine.models.quantize import quantize_loaded  # noqa: PLC0415 - loads torch

            loaded = quantize_loaded(slot.generator.loaded, quantization)
            generator = type(slot.generator)(loaded)
            warm_up(generator)
            del self._slots[spec]
            size = model_bytes(loaded.model) / GB
            self._slots[target] = Slot(spec=target, generator=generator, size_gb=size, loaded_at=time.time())
            if self.active_spec == spec:
                self._active = target
            detail = f"{slot.size_gb:.2f} -> {size:.2f} GB of weights in {loaded.load_seconds:.1f} s"
            self._record("quantize", target, detail, before)
            return target

    def _reload_unmerged(self, spec: ModelSpec, target: ModelSpec) -> ModelSpec:
        """Quantize by loading ``target`` afresh (the base quantized, the adapter unmerged beside it) in place of
        ``spec``: the loaded model has the adapter merged in, which this precision would round away."""
        was_active = self.active_spec == spec
        self.unload(spec)
        self.get(target)
        if was_active:
            self._active = target
        self.events[-1] = replace(
            self.events[-1], kind="quantize", detail=self.events[-1].detail + ", the adapter unmerged on the base"
        )
        return target

    # -- the active model and generation ----------------------------------------------------------

    def activate(self, spec: ModelSpec) -> object:
        """Make ``spec`` the active model (loading it); generations under way keep their model."""
        with self._lock:
            generator = self.get(spec)
            previous, self._active = self.active_spec, spec
            if previous != spec:
                self._record("swap", spec, f"from {previous.name if previous else 'none'}", rss_gb())
            return generator

    @contextlib.contextmanager
    def use(self, spec: ModelSpec | None = None) -> Iterator[object]:
        """Borrow a generator (default: the active model) for one generation."""
        with self._lock:
            spec = spec or self.active_spec
            if spec is None:
                raise InputError("No model is active: load one on the Models page.")
            generator = self.get(spec)
            slot = self._slots[spec]
            slot.users += 1
        try:
            yield generator
        finally:
            with self._lock:
                slot.users -= 1
                if slot.retired and not slot.users:
                    self._retired.remove(slot)
                    before = rss_gb()
                    slot.generator = None
                    release_memory()
                    self._record(
                        "release", slot.spec, f"{slot.size_gb:.2f} GB of weights released after its last use", before
                    )

    def _record(self, kind: str, spec: ModelSpec, detail: str, before: float) -> ManagerEvent:
        event = ManagerEvent(
            kind=kind, model=describe(spec), detail=detail, rss_before_gb=before, rss_after_gb=rss_gb()
        )
        self.events.append(event)
        return event


def warm_up(generator) -> None:
    """Compile a new generator's fast decoder in the background (``STUDIO_COMPILE_DECODER=0``: not)."""
    if hasattr(generator, "warm_up_if_enabled"):
        generator.warm_up_if_enabled(background=True)


def describe(spec: ModelSpec) -> str:
    precision = spec.quantization if spec.quantization != "none" else spec.dtype
    return f"{spec.name}{'+' + spec.adapter if spec.adapter else ''} ({precision})"


def rss_gb() -> float:
    return read_memory().process_rss_gb
