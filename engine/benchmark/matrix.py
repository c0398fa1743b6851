"""The benchmark matrix: one model at several precisions (and llama.cpp on its GGUF file), each
measured in a fresh process for speed, memory and quality, compared with the full-precision
reference (paired bootstrap) and with a baseline run (regressions); logged to MLflow.

A fresh process per configuration makes load time and peak memory that configuration's own:
nothing of the previous one stays in the allocator or the page cache of the Python heap.
"""

from __future__ import annotations

import concurrent.futures
import importlib.util
import multiprocessing
import os
import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from engine.benchmark.speed import (
    SpeedSpec,
    fixed_text,
    measure_generator,
    measure_llama_cpp,
    peak_memory_gb,
    perplexity,
)
from engine.errors import InputError
from engine.evaluation.runner import EvalSpec, run_evaluation
from engine.job_kinds import register_job_kind
from engine.knobs import knob
from engine.machine import GB, describe_device
from engine.models.generation import encode, load_generator
from engine.models.loader import gguf_cache_dir
from engine.models.manager import model_bytes
from engine.models.spec import MODEL_HELP, resolve_device, resolve_source, spec_for
from engine.rag.embedder import Embedder
from engine.settings import Settings, load_settings

# A precision's changes to the model spec.
PRECISIONS: dict[str, dict[str, str]] = {
    "float32": {"dtype": "float32"},
    "bfloat16": {"dtype": "bfloat16"},
    "float16": {"dtype": "float16"},
    "int8-dynamic": {"quantization": "int8-dynamic"},
    "int4-weight": {"quantization": "int4-weight"},
    "8bit": {"quantization": "8bit"},
    "4bit": {"quantization": "4bit"},
    "4bit-fp4": {"quantization": "4bit-fp4"},
}
LLAMA_CPP = "llama.cpp"


@dataclass(frozen=True)
class BenchSpec:
    """A benchmark matrix: the model, its precisions, the quality set, a baseline to compare with."""

    model: str = knob("", MODEL_HELP)
    adapter: str = knob(
        "",
        "a LoRA adapter from the registry: each precision measured on base + adapter (merged before int8-dynamic; "
        "unmerged beside an int4-weight or bitsandbytes base), its quality against the same adapter at the "
        "reference precision",
    )
    # bitsandbytes 8-bit is left out by default: on a CPU its batch-16 run peaked at 10 GB (docs/performance.md)
    precisions: tuple[str, ...] = ("float32", "bfloat16", "int8-dynamic", "int4-weight", "4bit")
    reference: str = knob("float32", "quality differences are against this precision", tuple(PRECISIONS))
    questions: int = knob(100, "HotpotQA questions (distractor setting) for EM/F1; 0: no quality", min=0, max=1000)
    split: str = knob("test", "the fixed HotpotQA split the questions come from", ("", "train", "validation", "test"))
    llama_cpp: bool = knob(
        True, "llama.cpp beside the others, where the model is a GGUF file and llama-cpp-python is installed"
    )
    device: str = "auto"
    speed: SpeedSpec = field(default_factory=SpeedSpec)
    baseline: str = knob("", "an earlier matrix's MLflow run id: regressions are flagged against it")
    thresholds: str = knob("", "overrides of the default regression thresholds, e.g. f1=0.5,decode_tok_s=0.1")

    def __post_init__(self) -> None:
        unknown = [p for p in self.precisions if p not in PRECISIONS]
        if unknown or not self.precisions:
            bad = unknown[0] if unknown else "(none given)"
            raise InputError(f"Unknown precision {bad}: choose among {', '.join(PRECISIONS)}.")
        if self.reference not in self.precisions:
            raise InputError(f"The reference precision {self.reference!r} must be one of the benchmarked ones.")
        if self.questions and self.questions < 10:
            raise InputError("Quality needs at least 10 questions (or 0 to skip it).")

    @classmethod
    def from_dict(cls, data: dict) -> BenchSpec:
        data = dict(data)
        data["precisions"] = tuple(data.get("precisions", cls.precisions))
        speed = data.pop("speed", None) or {}
        speed["batch_sizes"] = tuple(speed.get("batch_sizes", SpeedSpec.batch_sizes))
        return cls(**data, speed=SpeedSpec(**speed))


def environment() -> dict[str, str]:
    """What the numbers depend on: processor, threads, library versions, device."""
    import torch
    import transformers

    cpu = platform.processor() or platform.machine()
    with open("/proc/cpuinfo") if os.path.exists("/proc/cpuinfo") else open(os.devnull) as f:
        names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
    return {
        "cpu": names[0] if names else cpu,
        "cores": str(os.cpu_count()),
        "threads": str(torch.get_num_threads()),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "device": resolve_device("auto"),
        "device_name": describe_device(),
    }


def measure_precision(payload: dict) -> dict:
    """One configuration in this (fresh) process: load, speed, perplexity, quality, peak memory."""
    spec = BenchSpec.from_dict(payload["spec"])
    settings = Settings(data_dir=Path(payload["data_dir"]), shared_data_dir=Path(payload["shared_dir"]))
    model = replace(spec_for(spec.model), device=spec.device, adapter=spec.adapter, **PRECISIONS[payload["precision"]])
    start = time.perf_counter()
    generator = load_generator(model, settings)
    metrics = {"load_s": time.perf_counter() - start, "weights_gb": model_bytes(generator.model) / GB}
    if generator.decoder is not None:  # what the app does in the background after loading
        start = time.perf_counter()
        generator.warm_up(background=False)
        metrics["compile_s"] = time.perf_counter() - start
    metrics |= measure_generator(generator, spec.speed, settings.shared_data_dir)
    metrics["perplexity"] = perplexity(generator, fixed_text(settings.shared_data_dir), spec.speed.ppl_tokens)
    scores = {}
    if spec.questions:
        quality = EvalSpec(
            mode="distractor", split=spec.split, limit=spec.questions, model=spec.model, adapter=spec.adapter
        )
        result = run_evaluation(quality, generator, Embedder.shared(), settings=settings)
        metrics |= {"em": result.metrics["em"], "f1": result.metrics["f1"]}
        scores = {"f1": [r["f1"] for r in result.rows], "em": [r["em"] for r in result.rows]}
    metrics["peak_rss_gb"] = peak_memory_gb(generator.loaded.device)
    return {"metrics": metrics, "scores": scores}


def measure_llama(payload: dict) -> dict:
    """llama.cpp on the model's GGUF file, in this (fresh) process."""
    from transformers import AutoTokenizer

    spec = BenchSpec.from_dict(payload["spec"])
    settings = Settings(data_dir=Path(payload["data_dir"]), shared_data_dir=Path(payload["shared_dir"]))
    model = spec_for(spec.model)
    tokenizer = AutoTokenizer.from_pretrained(gguf_cache_dir(model, settings))  # the GGUF's vocabulary
    gguf = Path(resolve_source(model.source)) / model.gguf_file
    metrics = measure_llama_cpp(
        gguf, spec.speed, settings.shared_data_dir, lambda m: encode(tokenizer, m), threads=int(payload["threads"])
    )
    metrics["weights_gb"] = gguf.stat().st_size / 1024**3
    metrics["peak_rss_gb"] = peak_memory_gb("cpu")
    return {"metrics": metrics, "scores": {}}


def in_fresh_process(fn: Callable[[dict], dict], payload: dict) -> dict:
    """``fn(payload)`` in a new Python process (spawned: no state of this one is inherited)."""
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(fn, payload).result()


def llama_cpp_available(spec: BenchSpec) -> str:
    """Why llama.cpp cannot run beside the others, or '' if it can."""
    if not spec_for(spec.model).gguf_file:
        return "the model is not a GGUF file"
    if spec.adapter:
        return "llama.cpp would answer without the adapter (export base + adapter as GGUF: Models page, Export)"
    if importlib.util.find_spec("llama_cpp") is None:
        return "llama-cpp-python is not installed (pip install -r bench/requirements-llamacpp.txt)"
    return ""


def configurations(spec: BenchSpec) -> list[str]:
    return [*spec.precisions, *([LLAMA_CPP] if spec.llama_cpp and not llama_cpp_available(spec) else [])]


def run_matrix(
    spec: BenchSpec,
    settings: Settings | None = None,
    on_progress: Callable[[float, str], None] | None = None,
    measure: Callable[[str, dict], dict] | None = None,
) -> dict[str, dict]:
    """Each configuration's ``{"metrics", "scores"}``, measured one after another.

    ``measure(config, payload)`` runs one configuration; by default in a fresh process.
    """
    import torch

    settings = settings or load_settings()
    payload = {
        "spec": asdict(spec),
        "data_dir": str(settings.data_dir),
        "shared_dir": str(settings.shared_data_dir),
        "threads": torch.get_num_threads(),
    }
    measure = measure or (lambda c, p: in_fresh_process(measure_llama if c == LLAMA_CPP else measure_precision, p))
    configs = configurations(spec)
    results = {}
    for n, config in enumerate(configs):
        if on_progress:
            on_progress(n / len(configs), f"{config} ({n + 1}/{len(configs)})")
        results[config] = measure(config, payload | {"precision": config})
    return results


# The job runs in its own module (it imports the heavy libraries); the spec's module is what a page imports.
register_job_kind("bench", "engine.benchmark.runs:bench_job", BenchSpec)
