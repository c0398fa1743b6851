"""Quantization-aware LoRA on the bundled model: the fake-quantized forward is the deployed one (merged, then
int4-weight; unmerged on an nf4 base) to within the kernels' rounding, and a training step moves the adapter only."""

from __future__ import annotations

import copy
import dataclasses

import pytest

from engine.errors import InputError
from engine.finetune.spec import TrainSpec
from engine.models.spec import DEFAULT_MODEL
from tests.support.adapters import random_lora

CPU = dataclasses.replace(DEFAULT_MODEL, dtype="float32", device="cpu")
TEXT = "The Eiffel Tower is in Paris, and the Brandenburg Gate is in"  # 14 tokens: the int4 kernel's path


def test_qat_needs_a_full_precision_base() -> None:
    with pytest.raises(InputError, match="QLoRA base .* Choose one of the two"):
        TrainSpec(quantization="4bit", quantization_aware="nf4")
    with pytest.raises(InputError, match="quantization-aware scheme 'int8'"):
        TrainSpec(quantization_aware="int8")
    assert TrainSpec(quantization_aware="int4-weight").quantization_aware == "int4-weight"


def test_the_fake_int4_layer_is_the_kernels_to_one_bfloat16_step() -> None:
    import torch

    from engine.finetune.qat import to_bfloat16
    from engine.models.quantize import Int4WeightLinear, Int8WeightLinear, int4_weight_values, int8_weight_values

    torch.manual_seed(0)
    x = torch.randn(5, 576)
    for kind, values, width in (
        (Int4WeightLinear, int4_weight_values, 1536),
        (Int8WeightLinear, int8_weight_values, 4000),
    ):
        linear = torch.nn.Linear(576, width, bias=False)
        real = kind(linear)(x)
        fake = to_bfloat16(torch.nn.functional.linear(to_bfloat16(x), values(linear.weight.detach())))
        step = torch.finfo(torch.bfloat16).eps * real.abs()  # one bfloat16 step at each output's size
        assert ((real - fake).abs() <= step).all(), kind.__name__
        # the rounding of the weights moves the product several times more than the kernel's own rounding
        assert (fake - linear(x)).abs().max() > 3 * (real - fake).abs().max()


@pytest.fixture(scope="module")
def adapted(session_settings):
    """The bundled model in float32 with a random LoRA on attention and MLP, and a prompt's ids."""
    from engine.finetune.lora import LoraSpec
    from engine.models.loader import load_model

    loaded = load_model(CPU, session_settings)
    model = random_lora(loaded.model, LoraSpec(include_mlp=True)).eval()
    return model, loaded.tokenizer(TEXT, return_tensors="pt").input_ids


def logits(model, ids):
    import torch

    with torch.no_grad():
        return model(ids).logits[0]


def test_int4_qat_computes_what_merging_and_quantizing_deploys(adapted) -> None:
    from engine.finetune.qat import quantization_aware
    from engine.models.quantize import quantize_int4_weight

    model, ids = adapted
    plain = logits(model, ids)
    deployed = logits(quantize_int4_weight(copy.deepcopy(model).merge_and_unload()), ids)
    remove = quantization_aware(model, "int4-weight")
    try:
        fake = logits(model, ids)
        with model.disable_adapter():  # the base's own answers (self-distillation) stay the base's
            base = logits(model, ids)
    finally:
        remove()
    with model.disable_adapter():
        assert (base == logits(model, ids)).all()
    assert (logits(model, ids) == plain).all()  # undone
    missed, error = (fake - deployed).abs().max().item(), (plain - deployed).abs().max().item()
    print(f"int4-weight: fake quantization within {missed:.3f} of the deployed logits, full precision {error:.3f}")
    # 30 layers of bfloat16 steps in another order add up to a few tenths on logits of about 25; the rounding of
    # the weights themselves moves them several times more (measured: 0.47 against 1.87)
    assert missed < error / 3
    assert (fake.argmax(-1) == deployed.argmax(-1)).all()


def test_nf4_qat_computes_what_an_unmerged_adapter_on_an_nf4_base_does(adapted) -> None:
    import torch
    from peft.tuners.lora import LoraLayer

    from engine.finetune.qat import quantization_aware
    from engine.models.quantize import bnb_linear, replace_module

    model, ids = adapted
    deployed = copy.deepcopy(model)
    for name, module in list(deployed.named_modules()):
        if isinstance(module, torch.nn.Linear) and ".lora_" not in name and not name.endswith("lm_head"):
            replace_module(deployed, name, bnb_linear(module, "4bit", "cpu"))
    assert sum(isinstance(m, LoraLayer) for m in deployed.modules()) == 30 * 7
    remove = quantization_aware(model, "nf4")
    try:
        fake = logits(model, ids)
    finally:
        remove()
    assert torch.equal(fake, logits(deployed.eval(), ids))


@pytest.mark.slow
def test_a_quantization_aware_step_moves_the_adapter_not_the_base(adapted) -> None:
    import torch

    from engine.finetune.qat import quantization_aware

    model, ids = adapted
    model = copy.deepcopy(model)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert trainable and all(".lora_" in n for n, p in model.named_parameters() if p.requires_grad)
    remove = quantization_aware(model, "int4-weight")
    model.train()
    optimizer = torch.optim.AdamW(trainable, lr=1e-3)
    loss = model(ids, labels=ids).loss
    loss.backward()
    optimizer.step()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all("lora_A" in n or "lora_B" in n for n in changed)
    assert len(changed) == len(trainable)
    # the cached Q(W + delta) follows the step: the next forward computes with the stepped adapter
    model.eval()
    after_step = logits(model, ids)
    remove()
    remove = quantization_aware(model, "int4-weight")  # nothing cached
    assert torch.equal(after_step, logits(model, ids))
    remove()
