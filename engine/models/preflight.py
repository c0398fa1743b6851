"""Loading a catalog model: its memory at each precision (pre-flight), the load plan for the
memory free now (with the automatic downgrade), and the load itself through the manager."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, replace

from engine.errors import InputError
from engine.machine import (
    PRECISIONS,
    Footprint,
    MemoryReading,
    ModelShape,
    estimate_footprint,
    largest_batch,
    read_memory,
    shape_of,
)
from engine.models.catalog import CatalogEntry, find_entry
from engine.models.downgrade import LoadPlan, plan_load
from engine.models.loader import LOADING, gguf_cache_dir
from engine.models.manager import rss_gb
from engine.models.remote import measure_speed
from engine.models.spec import ModelSpec, is_remote, native_bf16, resolve_device, resolve_source
from engine.settings import Settings
from engine.tracking import MODELS

# Precision -> (dtype, quantization) of a ModelSpec.
PRECISION_SPEC = {
    "float32": ("float32", "none"),
    "bfloat16": ("bfloat16", "none"),
    "float16": ("float16", "none"),
    "int8": ("auto", "8bit"),
    "nf4": ("auto", "4bit"),
    "int4-weight": ("auto", "int4-weight"),
}


def precision_of(spec: ModelSpec, device: str) -> str:
    """The ladder's name for a spec's precision (``auto`` resolved for ``device``)."""
    if spec.quantization != "none":  # fp4 is nf4's size, torch's int8 bitsandbytes' int8's
        sizes = {"8bit": "int8", "4bit": "nf4", "4bit-fp4": "nf4", "int8-dynamic": "int8"}
        return sizes.get(spec.quantization, spec.quantization)
    if spec.dtype != "auto":
        return spec.dtype
    if device in ("cuda", "mps"):
        return "float16"
    return "bfloat16" if native_bf16(device) else "float32"


def with_precision(spec: ModelSpec, precision: str) -> ModelSpec:
    dtype, quantization = PRECISION_SPEC[precision]
    return replace(spec, dtype=dtype, quantization=quantization)


def auto_config():
    """transformers' AutoConfig. Right after the app starts, its preload thread may be importing transformers (and
    sentence-transformers) while a page asks for this: the import then fails with "cannot import name" (seen on the
    Models page); it succeeds once the other import is through, so it is tried again after the model load's lock."""
    for attempt in range(5):
        try:
            from transformers import AutoConfig

            return AutoConfig
        except ImportError:
            if attempt == 4:
                raise
            with LOADING:
                time.sleep(0.5 * (attempt + 1))


@functools.lru_cache(maxsize=32)
def _shape(source: str, gguf_file: str | None, cached_config: str | None) -> ModelShape:
    AutoConfig = auto_config()  # noqa: N806 - transformers' class, as the library names it

    if cached_config:  # a converted GGUF model: its config.json is read in milliseconds, the GGUF in seconds
        return shape_of(AutoConfig.from_pretrained(cached_config))
    kwargs = {"gguf_file": gguf_file} if gguf_file else {}
    # local_files_only: an estimate never waits on the network (offline, a hub id would retry for minutes).
    return shape_of(AutoConfig.from_pretrained(source, local_files_only=True, **kwargs))


def model_shape(entry: CatalogEntry, settings: Settings) -> ModelShape:
    """The entry's shape from its config (offline: a local folder, the bundled package or the HF
    cache); failing that, from ``params_m`` in the catalog, with the KV cache unknown (0)."""
    spec = entry.model_spec()
    try:
        source = resolve_source(spec.source)
        cached = None
        if spec.gguf_file and (folder := gguf_cache_dir(spec, settings)).joinpath("config.json").is_file():
            cached = str(folder)
        return _shape(source, spec.gguf_file, cached)
    except (InputError, OSError, ValueError) as e:
        if entry.params_m is None:
            msg = f"{entry.name}: its config cannot be read here ({e}) and the catalog gives no params_m."
            raise InputError(msg) from e
        params = int(entry.params_m * 1e6)
        return ModelShape(params=params, embedding_params=int(params * 0.1), layers=0, kv_heads=0, head_dim=0)


def footprints(entry: CatalogEntry, settings: Settings, batch: int = 1, tokens: int = 1024) -> dict[str, Footprint]:
    shape = model_shape(entry, settings)
    return {p: estimate_footprint(shape, p, batch, tokens) for p in PRECISIONS}


def plan_for(
    entry: CatalogEntry,
    precision: str,
    catalog: list[CatalogEntry],
    settings: Settings,
    reading: MemoryReading,
    device: str = "cpu",
    tokens: int = 1024,
) -> LoadPlan:
    """Where ``entry`` at ``precision`` does not fit, the step down the precisions, then smaller
    catalog models (by parameter count) whose size can be told here."""

    def size(e: CatalogEntry) -> float:
        try:
            return model_shape(e, settings).params
        except InputError:
            return float("inf")

    own = size(entry)
    smaller = sorted((e for e in catalog if e.name != entry.name and size(e) < own), key=size, reverse=True)
    by_name = {e.name: e for e in [entry, *smaller]}
    return plan_load(
        [e.name for e in [entry, *smaller]],
        precision,
        reading,
        lambda name, p: estimate_footprint(model_shape(by_name[name], settings), p, 1, tokens),
        device,
    )


def preflight_rows(entry: CatalogEntry, settings: Settings, batch: int, budget: float) -> list[dict]:
    """Per precision: weights, KV cache and total (GB) for ``batch`` sequences of 1,024 tokens, and
    the largest batch whose footprint fits ``budget`` GB (batch-size auto-tuning); none for a remote model."""
    if is_remote(entry.source):
        return []
    shape = model_shape(entry, settings)
    rows = []
    for p, f in footprints(entry, settings, batch).items():
        fits = largest_batch(shape, p, budget)
        rows.append(
            {
                "precision": p,
                "weights (GB)": round(f.weights_gb, 3),
                "KV cache (GB)": round(f.kv_cache_gb, 3),
                "total (GB)": round(f.total_gb, 3),
                "largest batch in budget": fits,
            }
        )
    return rows


@dataclass(frozen=True)
class LoadOutcome:
    plan: LoadPlan
    spec: ModelSpec
    rss_before_gb: float
    rss_after_gb: float
    run_id: str | None = None  # the MLflow run that records a downgrade


def device_kind(device: str) -> str:
    return device.split(":")[0]


def load_entry(
    manager,
    entry: CatalogEntry,
    aim: str,
    catalog: list[CatalogEntry],
    settings: Settings,
    tracker=None,
    reading: MemoryReading | None = None,
) -> LoadOutcome:
    """Make ``entry`` with preset ``aim`` the active model, downgraded where the memory free now
    does not hold it; a downgrade is logged to MLflow when a tracker is given."""
    if is_remote(entry.source):
        return load_remote(manager, entry, settings)
    device = resolve_device("auto")
    kind = device_kind(device)
    asked = precision_of(entry.model_spec(kind, aim), device)
    plan = plan_for(entry, asked, catalog, settings, reading or read_memory(device), device)
    chosen = find_entry(catalog, plan.model).model_spec(kind, aim)
    # fp4 and torch's int8 share a rung with nf4 and int8: without a downgrade the preset's own stays.
    kept = not plan.downgraded and chosen.quantization in ("4bit-fp4", "int8-dynamic", "int4-weight")
    spec = chosen if kept else with_precision(chosen, plan.precision)
    before = rss_gb()
    manager.activate(spec)
    outcome = LoadOutcome(plan=plan, spec=spec, rss_before_gb=before, rss_after_gb=rss_gb())
    if plan.downgraded and tracker is not None:
        outcome = replace(outcome, run_id=log_downgrade(tracker, entry.name, asked, plan))
    return outcome


def load_remote(manager, entry: CatalogEntry, settings: Settings) -> LoadOutcome:
    """Make a model behind a server active (its server checked, its speed measured); it holds no memory here."""
    spec = entry.model_spec()
    before = rss_gb()
    generator = manager.activate(spec)
    measure_speed(generator, settings)
    plan = LoadPlan(model=entry.name, precision="remote", footprint=Footprint("remote", 0.0, 0.0, 0.0),
                    budget_gb=0.0, pressure="low", asked_precision="remote")  # fmt: skip
    return LoadOutcome(plan=plan, spec=spec, rss_before_gb=before, rss_after_gb=rss_gb())


def log_downgrade(tracker, asked_model: str, asked_precision: str, plan: LoadPlan) -> str:
    params = {
        "asked_model": asked_model,
        "asked_precision": asked_precision,
        "model": plan.model,
        "precision": plan.precision,
        "pressure": plan.pressure,
    }
    run_id = tracker.start(MODELS, f"downgrade {asked_model} -> {plan.model} {plan.precision}", params)
    tracker.log_metrics(
        run_id, {"budget_gb": plan.budget_gb, "estimate_gb": plan.footprint.total_gb, "steps": len(plan.steps)}
    )
    tracker.log_text(run_id, "\n".join(plan.steps), "downgrade.txt")
    tracker.end(run_id)
    return run_id
