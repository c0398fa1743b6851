"""The machine: its device, memory now (RAM, and a GPU's own) and its pressure level, what a model needs at each
precision, and giving memory back.

Pressure is read from the share of memory still free: ``low`` above 30%, ``moderate`` above
15%, ``high`` above 7%, ``critical`` below. On a CUDA device the GPU's free memory counts; on
a CPU and on Apple Silicon (unified memory) the system's available RAM does.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
from dataclasses import dataclass

import psutil

from engine.errors import InputError

GB = 1024**3
PRESSURE_LEVELS = ("low", "moderate", "high", "critical")
FREE_SHARE_FLOOR = {"low": 0.30, "moderate": 0.15, "high": 0.07}  # the least free share of each level
PRECISIONS = ("float32", "bfloat16", "float16", "int8", "nf4")
# Bytes per weight of the linear layers. int8 and nf4 (bitsandbytes) keep per-block scales; the
# embeddings, norms and (for bnb) the LM head stay in 16-bit, counted in ``unquantized_share``.
# int4-weight: int4 with a bfloat16 scale and zero per 32 weights, plus the bfloat16 copy for prompts
WEIGHT_BYTES = {"float32": 4.0, "bfloat16": 2.0, "float16": 2.0, "int8": 1.03, "nf4": 0.53, "int4-weight": 2.63}
RUNTIME_OVERHEAD_GB = 0.35  # torch, tokenizers and allocator slack around a loaded model (measured: 0.3-0.4)


def trim_heap() -> None:
    """Hand the heap's free pages back to the system (glibc on Linux; elsewhere nothing).

    glibc keeps what tensors of ever-changing sizes freed (a batch of texts pads to its own length), so
    a long run's resident memory creeps up batch by batch unless it is trimmed; tcmalloc needs none.
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def default_budget_gb() -> float:
    """Memory the loaded models may hold together: ``STUDIO_MODEL_BUDGET_GB``, else 40% of RAM."""
    value = os.environ.get("STUDIO_MODEL_BUDGET_GB")
    if value:
        try:
            return max(0.1, float(value))
        except ValueError:
            pass  # a bad value falls back to the default rather than stopping the app
    return 0.4 * psutil.virtual_memory().total / GB


def pressure_level(free_share: float) -> str:
    for level in PRESSURE_LEVELS[:-1]:
        if free_share > FREE_SHARE_FLOOR[level]:
            return level
    return "critical"


@dataclass(frozen=True)
class MemoryReading:
    """One reading of the memory that limits loading on ``device``."""

    total_gb: float
    available_gb: float
    process_rss_gb: float
    device: str = "cpu"
    device_total_gb: float | None = None  # a CUDA GPU's own memory
    device_free_gb: float | None = None

    @property
    def free_gb(self) -> float:
        return self.device_free_gb if self.device_free_gb is not None else self.available_gb

    @property
    def limit_gb(self) -> float:
        return self.device_total_gb if self.device_total_gb is not None else self.total_gb

    @property
    def pressure(self) -> str:
        return pressure_level(self.free_gb / self.limit_gb if self.limit_gb > 0 else 0.0)


def read_memory(device: str = "cpu") -> MemoryReading:
    """RAM from psutil; a CUDA device's free and total memory from torch."""
    mem = psutil.virtual_memory()
    rss = psutil.Process(os.getpid()).memory_info().rss
    total = free = None
    if device.startswith("cuda"):
        import torch

        free_b, total_b = torch.cuda.mem_get_info(torch.device(device))
        total, free = total_b / GB, free_b / GB
    return MemoryReading(
        total_gb=mem.total / GB,
        available_gb=mem.available / GB,
        process_rss_gb=rss / GB,
        device=device,
        device_total_gb=total,
        device_free_gb=free,
    )


@dataclass(frozen=True)
class ModelShape:
    """What sizes a model's memory: parameter counts and the KV cache's dimensions."""

    params: int  # all parameters
    embedding_params: int  # input embeddings and an untied LM head: never quantized
    layers: int
    kv_heads: int
    head_dim: int


@dataclass(frozen=True)
class Footprint:
    precision: str
    weights_gb: float
    kv_cache_gb: float
    overhead_gb: float

    @property
    def total_gb(self) -> float:
        return self.weights_gb + self.kv_cache_gb + self.overhead_gb


def estimate_footprint(shape: ModelShape, precision: str, batch: int = 1, tokens: int = 1024) -> Footprint:
    """The memory a model needs at ``precision`` to generate for ``batch`` sequences of ``tokens``."""
    if precision not in WEIGHT_BYTES:
        raise ValueError(f"unknown precision {precision!r}")
    quantized = shape.params - shape.embedding_params
    side = 4.0 if precision == "float32" else 2.0  # what stays unquantized computes in 16-bit (or fp32)
    weights = quantized * WEIGHT_BYTES[precision] + shape.embedding_params * side
    kv = 2 * shape.layers * shape.kv_heads * shape.head_dim * batch * tokens * (4.0 if precision == "float32" else 2.0)
    return Footprint(precision=precision, weights_gb=weights / GB, kv_cache_gb=kv / GB, overhead_gb=RUNTIME_OVERHEAD_GB)


def shape_of(config) -> ModelShape:
    """A model's shape from its transformers config, without loading weights (meta device)."""
    import torch
    from accelerate import init_empty_weights
    from transformers import AutoModelForCausalLM

    with init_empty_weights(), torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    params = sum(p.numel() for p in model.parameters())
    embedding = model.get_input_embeddings().weight.numel()
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    head = model.get_output_embeddings()
    if head is not None and head.weight is not model.get_input_embeddings().weight:
        if getattr(text, "tie_word_embeddings", False):
            params -= head.weight.numel()  # tied once loaded; a meta-device model may not be tied yet
        else:
            embedding += head.weight.numel()
    heads = getattr(text, "num_attention_heads", 1)
    kv_heads = getattr(text, "num_key_value_heads", None) or heads
    head_dim = getattr(text, "head_dim", None) or getattr(text, "hidden_size", 0) // max(1, heads)
    layers = getattr(text, "num_hidden_layers", None) or getattr(text, "n_layer", 0)
    return ModelShape(params=params, embedding_params=embedding, layers=layers, kv_heads=kv_heads, head_dim=head_dim)


def largest_batch(shape: ModelShape, precision: str, budget_gb: float, tokens: int = 1024, limit: int = 256) -> int:
    """The largest batch (up to ``limit``) whose footprint at ``precision`` fits ``budget_gb``; 0 if none."""
    low, high = 0, limit
    while low < high:  # the footprint grows with the batch: a binary search for the last one that fits
        mid = (low + high + 1) // 2
        if estimate_footprint(shape, precision, mid, tokens).total_gb <= budget_gb:
            low = mid
        else:
            high = mid - 1
    return low


def release_memory() -> None:
    """Give freed memory back: collect cycles, empty the CUDA cache, and trim glibc's heap (Linux)."""
    gc.collect()
    with contextlib.suppress(Exception):
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    trim_heap()


def resolve_device(device: str = "auto") -> str:
    """``auto`` picks cuda > mps > cpu; an explicit device that is absent is an error."""
    import torch

    available = {
        "cuda": torch.cuda.is_available(),
        "mps": bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available(),
        "cpu": True,
    }
    if device == "auto":
        return next(d for d in ("cuda", "mps", "cpu") if available[d])
    if not available.get(device, False):
        raise InputError(f"Device {device!r} is not available on this machine; use 'auto' or 'cpu'.")
    return device


@dataclass(frozen=True)
class ResourceSnapshot:
    device: str
    ram_total_gb: float
    ram_used_gb: float
    ram_available_gb: float
    process_rss_mb: float
    process_cpu_percent: float
    cpu_count: int


def describe_device() -> str:
    """The device ``auto`` resolves to, with the accelerator's name where there is one."""
    import torch

    device = resolve_device("auto")
    if device == "cuda":
        return f"cuda ({torch.cuda.get_device_name(0)})"
    if device == "mps":
        return "mps (Apple Silicon)"
    return f"cpu ({psutil.cpu_count(logical=True)} threads, torch {torch.__version__})"


def snapshot(device: str | None = None) -> ResourceSnapshot:
    mem = psutil.virtual_memory()
    proc = psutil.Process(os.getpid())
    gb = 1024**3
    return ResourceSnapshot(
        device=device or describe_device(),
        ram_total_gb=mem.total / gb,
        ram_used_gb=(mem.total - mem.available) / gb,
        ram_available_gb=mem.available / gb,
        process_rss_mb=proc.memory_info().rss / 1024**2,
        process_cpu_percent=proc.cpu_percent(interval=None),
        cpu_count=psutil.cpu_count(logical=True) or 1,
    )
