"""Load a causal LM and its tokenizer from a spec, caching GGUF models as safetensors.

Loading a GGUF file dequantizes every tensor (about 16-20 s for the bundled model), and a
GGUF-loaded model refuses ``save_pretrained``. So the first load rebuilds the model from
its config without ``quantization_config``, copies the state dict in, and saves it as
safetensors in the data directory; later loads read that folder in about 2 s.
"""

from __future__ import annotations

import copy
import hashlib
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from engine.errors import InputError, first_line
from engine.models.adapters import AdapterInfo, AdapterRegistry, check_base, read_info
from engine.models.spec import (
    TORCH_QUANTIZATIONS,
    ModelSpec,
    check_quantization_backend,
    merges_adapter,
    resolve_device,
    resolve_dtype,
    resolve_source,
    to_bnb_config,
)
from engine.settings import Settings, load_settings
from engine.write_policy import remove_tree, scratch_beside

# transformers builds models under global context managers (meta device, default dtype),
# so two loads in one process at once can corrupt each other: the app's warm-up thread and
# a page may both load. Every model load in the Studio holds this lock.
LOADING = threading.RLock()


@dataclass
class LoadedModel:
    spec: ModelSpec
    model: object
    tokenizer: object
    device: str
    load_seconds: float
    from_cache: bool


def gguf_cache_dir(spec: ModelSpec, settings: Settings) -> Path:
    """The safetensors folder for a GGUF model: keyed by the file's path, size and mtime."""
    gguf = Path(resolve_source(spec.source)) / spec.gguf_file
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}|{stat.st_size}|{int(stat.st_mtime)}".encode()).hexdigest()[:12]
    return settings.models_dir / f"{spec.name}-{key}"


def convert_gguf(spec: ModelSpec, target: Path, settings: Settings) -> None:
    """Dequantize a GGUF model once and save it (model + tokenizer) as safetensors in ``target``.

    A GGUF file that cannot be read is an InputError that says so (the converter's own errors are many
    and low-level: struct, ValueError, KeyError for a missing field).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = resolve_source(spec.source)
    kwargs = {"gguf_file": spec.gguf_file, "trust_remote_code": spec.trust_remote_code}
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, **kwargs)
        gguf_model = AutoModelForCausalLM.from_pretrained(folder, **kwargs)
    except Exception as exc:
        raise InputError(
            f"The GGUF file {Path(folder) / spec.gguf_file} could not be read ({first_line(exc)[:200]}): it is "
            "damaged, incomplete or not a model this version of transformers can convert. Download or reinstall it "
            "and try again."
        ) from exc
    config = copy.deepcopy(gguf_model.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, trust_remote_code=spec.trust_remote_code)
    model.load_state_dict(gguf_model.state_dict(), strict=False)
    model.tie_weights()
    with scratch_beside(target) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        remove_tree(target, settings)  # a cache left half-made by a crash (it has no config.json)
        tmp.rename(target)  # atomic: a half-written cache is never picked up


def load_model(spec: ModelSpec, settings: Settings | None = None) -> LoadedModel:
    """Load the spec's model on its device; GGUF sources go through the safetensors cache."""
    with LOADING:
        return load_model_unlocked(spec, settings)


def load_model_unlocked(spec: ModelSpec, settings: Settings | None) -> LoadedModel:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    settings = settings or load_settings()
    start = time.perf_counter()
    device = resolve_device(spec.device)
    if device == "cuda" and os.environ.get("LOCAL_RANK"):  # one process per GPU under `accelerate launch`
        device = f"cuda:{int(os.environ['LOCAL_RANK'])}"
    check_quantization_backend(spec, device)
    dtype = resolve_dtype(spec, device)
    folder = resolve_source(spec.source)
    from_cache = False
    if spec.gguf_file:
        if not (Path(folder) / spec.gguf_file).is_file():
            raise InputError(f"GGUF file {spec.gguf_file!r} not found in {folder}.")
        cache = gguf_cache_dir(spec, settings)
        from_cache = (cache / "config.json").is_file()
        if not from_cache:
            cache.parent.mkdir(parents=True, exist_ok=True)
            convert_gguf(spec, cache, settings)
        folder = str(cache)
    bnb = to_bnb_config(spec, compute_dtype=dtype)
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=spec.trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(
            folder,
            dtype=dtype,
            trust_remote_code=spec.trust_remote_code,
            quantization_config=bnb,
            device_map=device if bnb is not None else None,
        )
    except (OSError, ValueError) as exc:  # missing files; a folder that is not a model
        raise InputError(f"Could not load model {spec.source!r}: {first_line(exc)}") from exc
    if bnb is None:
        model.to(device)
    model.eval()
    prepare_tokenizer(tokenizer)
    loaded = LoadedModel(
        spec=spec,
        model=model,
        tokenizer=tokenizer,
        device=device,
        load_seconds=time.perf_counter() - start,
        from_cache=from_cache,
    )
    if spec.adapter:
        info = AdapterRegistry(settings).get(spec.adapter)
        loaded.model = apply_adapter(loaded, info, merge=merges_adapter(spec.quantization))
    if spec.quantization in TORCH_QUANTIZATIONS:  # int8-dynamic after the adapter is merged in; int4 beneath it
        from engine.models.quantize import quantize_model  # noqa: PLC0415 - loads torch

        loaded.model = quantize_model(loaded.model, spec.quantization, device)
    loaded.load_seconds = time.perf_counter() - start
    return loaded


def prepare_tokenizer(tokenizer) -> None:
    """Left padding for batched generation; a pad token where the model has none."""
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token


def apply_adapter(loaded, info_or_path: AdapterInfo | Path | str, merge: bool = True):
    """``loaded.model`` with the adapter applied, in eval mode; merged into the weights by default.

    The adapter's layers are injected into ``loaded.model`` itself (and merged into its weights):
    pass a model that nobody else uses, never the shared generator's.
    """
    from peft import PeftModel

    path = info_or_path.path if isinstance(info_or_path, AdapterInfo) else Path(info_or_path).expanduser()
    if not (path / "adapter_config.json").is_file():
        raise InputError(f"{path} is not a saved adapter (no adapter_config.json).")
    info = info_or_path if isinstance(info_or_path, AdapterInfo) else read_info(path)
    check_base(info, loaded)
    with LOADING:  # PEFT builds layers too: keep clear of a model load in another thread
        model = PeftModel.from_pretrained(loaded.model, str(info.path))
        if merge:
            model = model.merge_and_unload()
    model.eval()
    return model
