"""Quantizing a model that is already in memory: torch's dynamic int8 and bitsandbytes 8-bit / 4-bit.

At load time bitsandbytes quantization goes through ``from_pretrained(quantization_config=...)``;
here the same layers are built from a loaded model's weights, so a model on the Models page can
be quantized without reading its files again. The LM head stays in full precision in both paths
(transformers skips it too), so a model quantized here answers as one loaded quantized.
"""

from __future__ import annotations

import time
from dataclasses import replace

from engine.errors import InputError
from engine.models.spec import BNB_QUANTIZATIONS, QUANTIZATIONS, check_quantization_backend

KEEP = ("lm_head",)  # modules left in full precision


def quantize_dynamic_int8(model):
    """The model with its linear layers replaced by torch's dynamic int8 ones (weights int8, activations
    quantized per batch); computed in float32, so a bfloat16 model is converted first."""
    import torch
    from torch.ao.quantization import quantize_dynamic

    if next(model.parameters()).dtype != torch.float32:
        model = model.float()
    # Per-channel scales: with one scale per tensor the bundled model answered "What is the capital
    # of France?" with "La France"; per channel, as in float32. The LM head stays in float32.
    config = torch.ao.quantization.per_channel_dynamic_qconfig
    linear = {name: config for name, m in model.named_modules() if isinstance(m, torch.nn.Linear) and name not in KEEP}
    return quantize_dynamic(model, linear, dtype=torch.qint8, inplace=True)


def bnb_linear(linear, quantization: str, device: str):
    """A bitsandbytes layer holding ``linear``'s weights, quantized on ``device``."""
    import bitsandbytes as bnb

    weight = linear.weight.data.detach().cpu()  # bitsandbytes quantizes on the move off the CPU
    bias = linear.bias is not None
    if quantization == "8bit":
        layer = bnb.nn.Linear8bitLt(
            linear.in_features, linear.out_features, bias=bias, has_fp16_weights=False, threshold=6.0
        )  # transformers' default llm_int8_threshold: outlier features stay in 16-bit
        layer.weight = bnb.nn.Int8Params(weight, requires_grad=False, has_fp16_weights=False)
    else:
        kind = "fp4" if quantization == "4bit-fp4" else "nf4"
        layer = bnb.nn.Linear4bit(
            linear.in_features, linear.out_features, bias=bias, compute_dtype=weight.dtype,
            compress_statistics=True, quant_type=kind,
        )  # fmt: skip
        layer.weight = bnb.nn.Params4bit(
            weight, requires_grad=False, compress_statistics=True, quant_type=kind, module=layer
        )
    if bias:
        layer.bias = type(linear.bias)(linear.bias.data.detach().cpu(), requires_grad=False)
    return layer.to(device)


def quantize_bnb(model, quantization: str, device: str):
    """``model`` with every linear layer but the LM head replaced by bitsandbytes ones, in place."""
    import torch

    names = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and n.split(".")[-1] not in KEEP]
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, bnb_linear(getattr(parent, child), quantization, device))
    flag = "is_loaded_in_8bit" if quantization == "8bit" else "is_loaded_in_4bit"
    setattr(model, flag, True)
    return model.eval()  # new layers start in training mode, where bitsandbytes computes differently


def quantize_loaded(loaded, quantization: str):
    """``loaded`` (a LoadedModel in full precision) quantized in place to ``quantization``.

    Returns a LoadedModel whose spec names the new precision. Raises InputError for a model
    that is already quantized, has an unmerged adapter, or a device without that backend.
    """
    if quantization not in QUANTIZATIONS or quantization == "none":
        raise InputError(f"Choose a quantization among {', '.join(QUANTIZATIONS[1:])}.")
    if loaded.spec.quantization != "none":
        raise InputError(
            f"{loaded.spec.name} is already quantized ({loaded.spec.quantization}): load it in full precision first."
        )
    if getattr(loaded.model, "peft_config", None):
        raise InputError("This model holds an unmerged adapter: load it with the adapter merged first.")
    spec = replace(loaded.spec, quantization=quantization)
    check_quantization_backend(spec, loaded.device)
    start = time.perf_counter()
    if quantization in BNB_QUANTIZATIONS:
        model = quantize_bnb(loaded.model, quantization, loaded.device)
    else:
        model = quantize_dynamic_int8(loaded.model)
    from engine.models.manager import release_memory

    release_memory()  # the full-precision weights just dropped
    return replace(loaded, spec=spec, model=model, load_seconds=time.perf_counter() - start)
