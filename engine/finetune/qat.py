"""Quantization-aware LoRA: during training the frozen base computes with the weights the deployment precision
will hold, so that the adapter learns to make up for their rounding.

``int4-weight`` is an adapter merged and then quantized to int4 in groups of 32 (a GGUF Q4 export for llama.cpp
or Ollama rounds the same way; the Studio's own int4-weight keeps an adapter unmerged: docs/performance.md), so
an adapted layer deploys as
x·Q(W + Δ)ᵀ, with Δ the adapter's update and Q the int4-weight rounding (groups of 32, a scale and a zero
point each, stored in bfloat16). Training computes x·(Q(W + Δ) − Δ)ᵀ, without gradient, in the base layer,
and peft adds x·Δᵀ: the sum is the deployed product, and the adapter's gradient is the straight-through
estimate (Q's derivative taken as 1) with no full-size weight gradient computed. The other linear layers
compute with Q(W) (the LM head with its int8 rows), the embedding with its bfloat16 values, and each product
takes its input and gives its output rounded to bfloat16, as the int4 kernel does.

``nf4`` (bitsandbytes 4-bit) keeps the adapter unmerged on the quantized base, so every linear layer but the
LM head computes with its nf4 values (bitsandbytes' own quantization, read back) and the adapter in full
precision: what a QLoRA base holds, at float32 speed.

With the adapter switched off (the base model's own answers, for self-distillation) every layer computes with
its original weights, so a quantization-aware training learns from the same targets as a plain one.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from engine.models.quantize import bnb_linear, int4_path_kind, int4_weight_values, int8_weight_values


def to_bfloat16(x: torch.Tensor) -> torch.Tensor:
    """``x`` rounded to bfloat16, in its own dtype (the gradient passes unchanged)."""
    return x.to(torch.bfloat16).to(x.dtype)


def nf4_values(linear: torch.nn.Linear) -> torch.Tensor:
    """The weights a bitsandbytes nf4 layer built from ``linear`` (as the Studio builds it) computes with."""
    import bitsandbytes as bnb  # noqa: PLC0415 - optional: no backend on some devices

    layer = bnb_linear(linear, "4bit", "cpu")
    return bnb.functional.dequantize_4bit(layer.weight.data, layer.weight.quant_state).float()


def quantization_aware(model, scheme: str) -> Callable[[], None]:
    """Make a peft LoRA ``model`` compute as ``scheme`` deploys it (see the module's docstring), in place;
    returns the function that undoes it."""
    if scheme == "none":
        return lambda: None
    from peft.tuners.lora import LoraLayer  # noqa: PLC0415 - peft loads slowly

    adapted = {id(m.base_layer): m for m in model.modules() if isinstance(m, LoraLayer)}
    probe = next(iter(adapted.values()))
    undo: list[Callable[[], None]] = []

    def patch(module, forward) -> None:
        module.forward = forward  # an instance attribute: nn.Module.__call__ finds it before the class's
        undo.append(lambda: delattr(module, "forward"))

    for name, module in model.named_modules():
        kind = int4_path_kind(name, module)  # the layers the int4 path replaces
        if scheme == "nf4":  # bitsandbytes takes every linear layer but the head, whole groups or not
            bnb_layer = isinstance(module, torch.nn.Linear) and ".lora_" not in name and module.bias is None
            if bnb_layer and kind != "int8":
                patch(module, fixed_forward(module, nf4_values(module), probe, rounded=False))
        elif id(module) in adapted and kind == "int4":
            patch(module, merged_forward(module, adapted[id(module)]))
        elif kind is not None:
            values = (int8_weight_values if kind == "int8" else int4_weight_values)(module.weight.detach())
            patch(module, fixed_forward(module, values, probe, rounded=True))
    if scheme == "int4-weight":
        hook = model.get_input_embeddings().register_forward_hook(
            lambda _m, _a, out: out if probe.disable_adapters else to_bfloat16(out)
        )
        undo.append(hook.remove)

    def remove() -> None:
        for step in reversed(undo):
            step()
        undo.clear()

    return remove


def fixed_forward(module: torch.nn.Linear, values: torch.Tensor, probe, rounded: bool):
    """``module``'s forward computing with ``values`` (its weights as deployed), or its own with the adapter off."""

    def forward(x):
        if probe.disable_adapters:
            return torch.nn.functional.linear(x, module.weight)
        if not rounded:
            return torch.nn.functional.linear(x, values.to(x.dtype))
        return to_bfloat16(torch.nn.functional.linear(to_bfloat16(x), values.to(x.dtype)))

    return forward


def merged_forward(module: torch.nn.Linear, lora):
    """An adapted layer's base forward computing x·(Q(W + Δ) − Δ)ᵀ, Δ the active adapters' update: recomputed
    only when the adapter's weights have changed (an optimizer step), not at each decoding step."""
    cache: dict = {}
    weights = [p for n, p in lora.named_parameters() if ".lora_" in f".{n}"]

    def forward(x, *args, **kwargs):
        if lora.disable_adapters or lora.merged:
            return torch.nn.functional.linear(x, module.weight)
        # _version counts in-place updates of a tensor: the optimizer's steps
        key = (tuple(lora.active_adapters), *(p._version for p in weights))
        if cache.get("key") != key:
            with torch.no_grad():
                delta = sum(lora.get_delta_weight(a) for a in lora.active_adapters)
                cache["values"] = int4_weight_values(module.weight + delta) - delta
            cache["key"] = key
        return to_bfloat16(torch.nn.functional.linear(to_bfloat16(x), cache["values"].to(x.dtype)))

    return forward
