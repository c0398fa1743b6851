"""A LoRA adapter on quantized bases: unmerged on bitsandbytes layers, merged before torch int8."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file, save_file

from engine.finetune.examples import RagExampleSpec
from engine.finetune.spec import TrainSpec
from engine.finetune.trainer import train
from engine.models.adapters import AdapterRegistry
from engine.models.loader import load_model
from engine.models.quantize import quantize_model
from engine.models.spec import DEFAULT_MODEL

pytestmark = pytest.mark.slow

TEXT = "Question: Which river flows through Paris? Answer:"


@pytest.fixture(scope="module")
def adapter_settings(tmp_path_factory, session_settings):
    """Settings whose registry holds one adapter, trained a step and then scaled up, so that its
    effect on the logits is far above the quantization noise."""
    from engine.settings import Settings

    root = tmp_path_factory.mktemp("adapters")
    (root / "models").symlink_to(session_settings.models_dir, target_is_directory=True)
    settings = Settings(data_dir=root, shared_data_dir=session_settings.shared_data_dir)
    spec = TrainSpec(
        adapter="strong", rag=RagExampleSpec(distractors=1, max_source_chars=120), train_limit=4, batch_size=4,
        max_length=512, learning_rate=1e-3, val_limit=2, val_f1=False, stop_on="loss", patience=0, eval_every=0,
        precision="fp32",
    )  # fmt: skip
    train(spec, settings, None, lambda fraction, message: None)
    path = AdapterRegistry(settings).get("strong").path / "adapter_model.safetensors"
    weights = load_file(path)
    save_file({k: v * 30 if "lora_B" in k else v for k, v in weights.items()}, path)
    return settings


def logits(loaded) -> torch.Tensor:
    with torch.no_grad():
        return loaded.model(loaded.tokenizer(TEXT, return_tensors="pt").input_ids).logits[0].float()


@pytest.mark.parametrize("quantization", ["8bit", "4bit", "int8-dynamic", "int4-weight"])
def test_the_adapter_changes_a_quantized_base_as_it_changes_the_full_one(quantization, adapter_settings):
    full = replace(DEFAULT_MODEL, dtype="float32", device="cpu")
    adapted_full = load_model(replace(full, adapter="strong"), adapter_settings)
    effect = logits(adapted_full) - logits(load_model(full, adapter_settings))
    quant = replace(full, quantization=quantization)
    adapted = load_model(replace(quant, adapter="strong"), adapter_settings)
    if quantization != "int8-dynamic":  # bitsandbytes and int4 layers keep the LoRA unmerged beside them
        assert any("lora" in type(m).__module__ for m in adapted.model.modules())
    quantized_effect = logits(adapted) - logits(load_model(quant, adapter_settings))
    assert effect.abs().mean() > 1.0  # the scaled adapter matters
    if quantization == "int8-dynamic":
        # Merged before quantizing: the model is the merged one quantized, to the bit. Its effect is not compared
        # with the full model's by correlation: torch's int8 moves this model's logits by about twice what the
        # adapter does (mean 2.0 against 1.1), and the noise of the merged and the plain base do not cancel
        # (correlations seen from -0.13 to 0.43, depending on the adapter that the training step gave).
        merged = load_model(replace(full, adapter="strong"), adapter_settings)
        merged.model = quantize_model(merged.model, quantization, "cpu")
        assert torch.equal(logits(adapted), logits(merged))
    else:
        correlation = torch.corrcoef(torch.stack([effect.flatten(), quantized_effect.flatten()]))[0, 1]
        # Quantizing this 135M model moves its logits by about as much as the adapter does (mean 0.6 for
        # 8-bit, 1.6 nf4, against the adapter's 1.1), so the effect is kept only roughly: correlations seen 0.8.
        # int4-weight holds the bundled (Q4_1) weights exactly, so there the effect is kept nearly whole.
        # An adapter that was not applied would show no effect at all: the same base quantizes the same way.
        assert correlation > 0.3, correlation
    assert quantized_effect.abs().mean() > 0.5 * effect.abs().mean()


def test_quantize_reloads_an_adapter_model_where_the_adapter_stays_unmerged(adapter_settings):
    from engine.errors import InputError
    from engine.models.generation import load_generator
    from engine.models.manager import ModelManager
    from engine.models.quantize import quantize_loaded

    adapted = replace(DEFAULT_MODEL, dtype="float32", device="cpu", adapter="strong")
    merged = quantize_loaded(load_model(adapted, adapter_settings), "int8-dynamic")  # merged, then quantized
    assert torch.equal(logits(merged), logits(load_model(merged.spec, adapter_settings)))
    with pytest.raises(InputError, match="int4-weight keeps an adapter unmerged on the quantized base"):
        quantize_loaded(load_model(adapted, adapter_settings), "int4-weight")  # it would round the adapter away
    manager = ModelManager(lambda spec: load_generator(spec, adapter_settings), budget_gb=4.0, default=adapted)
    manager.activate(adapted)
    target = manager.quantize(adapted, "int4-weight")  # the Models page's Quantize
    assert target == replace(adapted, quantization="int4-weight") and manager.active_spec == target
    assert [s.spec for s in manager.loaded()] == [target]
    assert manager.events[-1].kind == "quantize" and "unmerged" in manager.events[-1].detail
    with manager.use() as generator:
        assert any("lora" in type(m).__module__ for m in generator.model.modules())
        assert torch.equal(logits(generator.loaded), logits(load_model(target, adapter_settings)))
