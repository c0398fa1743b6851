"""Quantizing a loaded model in memory: the same layers and logits as quantizing at load time."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from engine.errors import InputError
from engine.models.generation import load_generator
from engine.models.loader import load_model
from engine.models.manager import ModelManager, model_bytes
from engine.models.quantize import quantize_loaded
from engine.models.spec import DEFAULT_MODEL

FP32 = replace(DEFAULT_MODEL, dtype="float32", device="cpu")
TEXT = "The quick brown fox jumps over the lazy dog, and then"


def logits(model, tokenizer):
    with torch.no_grad():
        return model(tokenizer(TEXT, return_tensors="pt").input_ids).logits


@pytest.mark.parametrize("quantization", ["8bit", "4bit", "4bit-fp4", "int8-dynamic", "int4-weight"])
def test_on_the_fly_matches_quantizing_at_load(quantization, session_settings):
    loaded = load_model(FP32, session_settings)
    full = model_bytes(loaded.model)
    quantized = quantize_loaded(loaded, quantization)
    assert quantized.spec == replace(FP32, quantization=quantization)
    assert model_bytes(quantized.model) < (0.7 if quantization == "int4-weight" else 0.9) * full
    at_load = load_generator(quantized.spec, session_settings)
    layer = "model.layers.3.mlp.down_proj"
    assert type(quantized.model.get_submodule(layer)) is type(at_load.model.get_submodule(layer))
    assert type(quantized.model.lm_head) is type(at_load.model.lm_head)
    torch.testing.assert_close(logits(quantized.model, loaded.tokenizer), logits(at_load.model, at_load.tokenizer))


def test_a_quantized_model_is_not_quantized_again(session_settings):
    loaded = quantize_loaded(load_model(FP32, session_settings), "int8-dynamic")
    with pytest.raises(InputError, match="already quantized"):
        quantize_loaded(loaded, "8bit")
    with pytest.raises(InputError, match="Choose a quantization"):
        quantize_loaded(load_model(FP32, session_settings), "none")


def test_the_manager_quantizes_the_active_model_in_place(session_settings):
    manager = ModelManager(lambda spec: load_generator(spec, session_settings), budget_gb=4.0, default=FP32)
    manager.activate(FP32)
    before = manager.used_gb()
    with manager.use(), pytest.raises(InputError, match="answering a question"):
        manager.quantize(FP32, "8bit")
    target = manager.quantize(FP32, "8bit")
    assert manager.active_spec == target and target.quantization == "8bit"
    assert [s.spec for s in manager.loaded()] == [target]
    assert manager.used_gb() < 0.6 * before
    event = manager.events[-1]
    assert event.kind == "quantize" and "->" in event.detail
    with manager.use() as generator:
        assert generator.loaded.spec == target
        assert generator.generate([[{"role": "user", "content": "What is the capital of France?"}]])[0].text


def test_int4_weights_reproduce_the_gguf_4bit_weights(session_settings):
    """The bundled model's linear layers come from GGUF Q4_1 blocks of 32: int4 groups of 32 hold them
    exactly, so the int4 path computes what bfloat16 computes, only faster."""
    from engine.models.quantize import Int4WeightLinear, Int8WeightLinear

    loaded = load_model(FP32, session_settings)
    layer = loaded.model.model.layers[5].mlp.up_proj
    x = torch.randn(4, layer.in_features)
    exact = x @ layer.weight.T
    int4 = Int4WeightLinear(layer)
    for rows in (x, torch.randn(64, layer.in_features)):  # decoding rows (int4 kernel) and prompt rows (copy)
        reference = rows.bfloat16().float() @ layer.weight.T
        torch.testing.assert_close(int4(rows), reference, atol=0.05, rtol=0.02)
    assert (int4(x) - exact).abs().max() < 0.02 * exact.abs().max()  # bfloat16 rounding, nothing more
    head = Int8WeightLinear(loaded.model.lm_head)
    h = torch.randn(2, head.in_features)
    logits = loaded.model.lm_head(h)
    assert (head(h) - logits).abs().max() < 0.02 * logits.abs().max()
    assert (head(h).argmax(-1) == logits.argmax(-1)).all()


def test_the_int4_path_answers_like_full_precision(session_settings):
    spec = replace(FP32, quantization="int4-weight")
    question = [{"role": "user", "content": "What is the capital of France?"}]
    full = load_generator(FP32, session_settings).generate([question])[0].text
    int4 = load_generator(spec, session_settings).generate([question])[0].text
    assert "Paris" in int4 and int4 == full  # the same greedy answer: the GGUF's own 4-bit weights
