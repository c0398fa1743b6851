"""Quantizing a model that is already in memory: torch's dynamic int8 and bitsandbytes 8-bit / 4-bit.

At load time bitsandbytes quantization goes through ``from_pretrained(quantization_config=...)``;
here the same layers are built from a loaded model's weights, so a model on the Models page can
be quantized without reading its files again. The LM head stays in full precision in both paths
(transformers skips it too), so a model quantized here answers as one loaded quantized.
"""

from __future__ import annotations

import time
import weakref
from dataclasses import replace

import torch

from engine.errors import InputError
from engine.machine import release_memory
from engine.models.spec import BNB_QUANTIZATIONS, QUANTIZATIONS, check_quantization_backend, merges_adapter

KEEP = ("lm_head",)  # modules left in full precision
GROUP = 32  # int4 group size: GGUF's Q4_0 / Q4_1 blocks are 32 weights too
PROMPT_ROWS = 32  # from this many tokens on, a layer multiplies with its bfloat16 copy (reading a prompt)


def quantize_dynamic_int8(model):
    """The model with its linear layers replaced by torch's dynamic int8 ones (weights int8, activations
    quantized per batch); computed in float32, so a bfloat16 model is converted first."""
    from torch.ao.quantization import quantize_dynamic  # noqa: PLC0415 - for int8-dynamic only

    if next(model.parameters()).dtype != torch.float32:
        model = model.float()
    # Per-channel scales: with one scale per tensor the bundled model answered "What is the capital
    # of France?" with "La France"; per channel, as in float32. The LM head stays in float32.
    config = torch.ao.quantization.per_channel_dynamic_qconfig
    linear = {name: config for name, m in model.named_modules() if isinstance(m, torch.nn.Linear) and name not in KEEP}
    return quantize_dynamic(model, linear, dtype=torch.qint8, inplace=True)


def int4_groups(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``w`` (float32, out x in) as the int4-weight path stores it: levels 0-15 (as floats) and, per group of
    32 inputs, a scale and a zero point (out x in / 32 each), so that w = (q - 8) * scale + zero."""
    n, k = w.shape
    groups = w.reshape(n, k // GROUP, GROUP)
    low, high = groups.amin(-1), groups.amax(-1)
    scale = (high - low).clamp(min=1e-12) / 15
    q = torch.round((groups - low[..., None]) / scale[..., None]).clamp(0, 15).reshape(n, k)
    return q, scale, low + 8 * scale


def int4_weight_values(w: torch.Tensor) -> torch.Tensor:
    """The float32 weights an int4-weight layer built from ``w`` decodes with: its levels times the scales and
    plus the zero points as stored, in bfloat16 (what quantization-aware training computes with)."""
    q, scale, zero = int4_groups(w.float())
    n, k = w.shape
    scale, zero = (t.to(torch.bfloat16).float()[..., None] for t in (scale, zero))
    return ((q.reshape(n, k // GROUP, GROUP) - 8) * scale + zero).reshape(n, k)


def int8_rows(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``w`` (float32) as int8 levels (as floats) with one scale per output row."""
    scales = w.abs().amax(dim=1).clamp(min=1e-12) / 127
    return torch.round(w / scales[:, None]).clamp(-127, 127), scales


def int8_weight_values(w: torch.Tensor) -> torch.Tensor:
    """The float32 weights an int8-weight layer (the int4 path's LM head) built from ``w`` computes with."""
    q, scales = int8_rows(w.float())
    return q * scales.to(torch.bfloat16).float()[:, None]


class Int4WeightLinear(torch.nn.Module):
    """A linear layer (no bias) with int4 weights in groups of 32 (a scale and a zero point each), for
    torch's CPU int4 kernel in bfloat16, and a bfloat16 copy of the weights for reading prompts.

    The int4 kernel is memory-bound and fast for the few rows of a decoding step; for a prompt's
    hundreds of rows it is slower than a dense bfloat16 product (measured 0.77 s against 0.27 s for
    300 tokens), hence the copy. Weights dequantized from GGUF's Q4_1 (a scale and a minimum per 32)
    are reproduced exactly: each group's minimum and maximum are two of its 16 levels.
    """

    def __init__(self, linear: torch.nn.Linear):
        super().__init__()
        w = linear.weight.detach().float()
        q, scale, zero = int4_groups(w)
        self.out_features, self.in_features = w.shape
        self.register_buffer("packed", torch._convert_weight_to_int4pack_for_cpu(q.to(torch.int32), 1))
        # torch's layout: [k / group, n, 2]
        self.register_buffer("scales_zeros", torch.stack([scale.t(), zero.t()], -1).contiguous().to(torch.bfloat16))
        self.register_buffer("dense", w.to(torch.bfloat16))

    @classmethod
    def joined(cls, layers: list[Int4WeightLinear]) -> Int4WeightLinear:
        """One layer computing ``layers`` side by side (their outputs concatenated), for one product
        instead of several. The layers' weights become views of the joined ones: nothing is copied
        twice (scales and zero points, a sixteenth of the size, are)."""
        joined = cls.__new__(cls)
        torch.nn.Module.__init__(joined)
        joined.in_features, joined.out_features = layers[0].in_features, sum(x.out_features for x in layers)
        for name in ("packed", "dense"):
            whole = torch.cat([getattr(x, name) for x in layers])
            joined.register_buffer(name, whole)
            for layer, part in zip(layers, whole.split([x.out_features for x in layers]), strict=True):
                setattr(layer, name, part)
        joined.register_buffer("scales_zeros", torch.cat([x.scales_zeros for x in layers], 1).contiguous())
        return joined

    def forward(self, x):
        rows = x.reshape(-1, self.in_features).to(torch.bfloat16)
        if rows.shape[0] >= PROMPT_ROWS:
            y = torch.nn.functional.linear(rows, self.dense)
        else:
            y = torch._weight_int4pack_mm_for_cpu(rows, self.packed, GROUP, self.scales_zeros)
        return y.reshape(*x.shape[:-1], self.out_features).to(x.dtype)


class Int8WeightLinear(torch.nn.Module):
    """A linear layer (no bias) with int8 weights, one scale per output row, for torch's CPU int8
    kernel in bfloat16: the LM head of the int4 path (a quarter of the bundled model's weights)."""

    def __init__(self, linear: torch.nn.Linear):
        super().__init__()
        q, scales = int8_rows(linear.weight.detach().float())
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.register_buffer("weight_int8", q.to(torch.int8))
        self.register_buffer("scales", scales.to(torch.bfloat16))

    def forward(self, x):
        rows = x.reshape(-1, self.in_features).to(torch.bfloat16)
        y = torch._weight_int8pack_mm(rows, self.weight_int8, self.scales)
        return y.reshape(*x.shape[:-1], self.out_features).to(x.dtype)


def replace_module(model, name: str, module) -> None:
    """Put ``module`` where ``model``'s submodule ``name`` (dotted) is."""
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, module)


def int4_path_kind(name: str, module) -> str | None:
    """What the int4-weight path makes of ``model``'s submodule ``name``: "int4", "int8" (the LM head) or None
    (kept as it is: not a bias-free linear layer, no whole groups of inputs, an unmerged adapter's own layers,
    which stay in full precision beside their int4 base)."""
    if not isinstance(module, torch.nn.Linear) or module.bias is not None or ".lora_" in name:
        return None
    if name.split(".")[-1] in KEEP:
        return "int8"
    return "int4" if module.in_features % GROUP == 0 else None


def quantize_int4_weight(model):
    """``model`` with its bias-free linear layers on torch's int4 (and the LM head int8) CPU kernels, in place; an
    unmerged LoRA adapter's layers are kept, so that it adds its update to the int4 products."""
    for name, module in list(model.named_modules()):
        kind = int4_path_kind(name, module)
        if kind is None:
            continue
        try:
            replace_module(model, name, (Int8WeightLinear if kind == "int8" else Int4WeightLinear)(module))
        except RuntimeError:  # a shape the packing kernel does not take: the layer stays as it is
            continue
    embedding = model.get_input_embeddings()
    if embedding.weight.dtype == torch.float32:  # untied from the head now: kept in bfloat16, read as float32
        embedding.to(torch.bfloat16)
        embedding.register_forward_hook(lambda module, args, out: out.float())
    return model


def bnb_linear(linear, quantization: str, device: str):
    """A bitsandbytes layer holding ``linear``'s weights, quantized on ``device``."""
    import bitsandbytes as bnb  # noqa: PLC0415 - optional: no backend on some devices

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
            linear.in_features,
            linear.out_features,
            bias=bias,
            compute_dtype=weight.dtype,
            compress_statistics=True,
            quant_type=kind,
        )
        layer.weight = bnb.nn.Params4bit(
            weight, requires_grad=False, compress_statistics=True, quant_type=kind, module=layer
        )
    if bias:
        layer.bias = type(linear.bias)(linear.bias.data.detach().cpu(), requires_grad=False)
    return layer.to(device)


def quantize_bnb(model, quantization: str, device: str):
    """``model`` with every linear layer but the LM head replaced by bitsandbytes ones, in place."""
    names = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and n.split(".")[-1] not in KEEP]
    for name in names:
        replace_module(model, name, bnb_linear(model.get_submodule(name), quantization, device))
    flag = "is_loaded_in_8bit" if quantization == "8bit" else "is_loaded_in_4bit"
    setattr(model, flag, True)
    return model.eval()  # new layers start in training mode, where bitsandbytes computes differently


def quantize_model(model, quantization: str, device: str):
    """``model`` quantized in place with a quantization of the spec's list (not ``none``)."""
    # weak references: what quantizing frees may go (and a new tensor reusing an id is not mistaken for it)
    loaded = {id(t): weakref.ref(t) for t in _tensors(model) if t.device.type == "cpu"}
    if quantization in BNB_QUANTIZATIONS:
        model = quantize_bnb(model, quantization, device)
    elif quantization == "int4-weight":
        model = quantize_int4_weight(model)
    else:
        model = quantize_dynamic_int8(model)
    own_weights(model, loaded)
    return model


def _tensors(model) -> list[torch.Tensor]:
    return [t for m in model.modules() for t in (*m._parameters.values(), *m._buffers.values()) if t is not None]


def own_weights(model, loaded: dict[int, weakref.ref]) -> None:
    """Copy into memory of their own the tensors that quantizing left as they were loaded (``loaded``:
    id -> weak reference of each tensor before quantizing), keeping tensors that shared memory shared.

    A model loaded from safetensors reads its weights through one memory map of the file. The few
    tensors quantizing leaves as they are (norms, a head kept in full precision) keep the whole map,
    so every page of it quantizing read stays resident: 0.54 GB of the bundled model's 1.33 GB RSS
    after int4, against 0.80 GB once these tensors own their memory and the map is released."""
    copies: dict[tuple, torch.Tensor] = {}
    kept = {id(t): t for t in _tensors(model) if (ref := loaded.get(id(t))) is not None and ref() is t}
    for t in kept.values():
        view = (t.data_ptr(), t.dtype, tuple(t.shape), t.stride())  # the same view of the same memory
        t.data = copies.setdefault(view, t.data.clone())


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
    if loaded.spec.adapter and not merges_adapter(quantization):
        # quantizing the merged weights would round the adapter's update away (int4), or give a model that its
        # spec does not describe: a spec with an adapter at these precisions loads it unmerged on the base
        raise InputError(
            f"{quantization} keeps an adapter unmerged on the quantized base: load {loaded.spec.name} + "
            f"{loaded.spec.adapter} at {quantization} (the Models page's Quantize does)."
        )
    spec = replace(loaded.spec, quantization=quantization)
    check_quantization_backend(spec, loaded.device)
    start = time.perf_counter()
    model = quantize_model(loaded.model, quantization, loaded.device)

    release_memory()  # the full-precision weights just dropped
    return replace(loaded, spec=spec, model=model, load_seconds=time.perf_counter() - start)
