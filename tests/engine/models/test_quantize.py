"""Quantizing a loaded model in memory: the same layers and logits as quantizing at load time."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

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
    torch.manual_seed(0)  # the same inputs whatever ran before (the bounds below are for typical inputs)
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


def file_mapped(path) -> list[tuple[int, int]]:
    """The address ranges where this process maps ``path`` (Linux)."""
    ranges = []
    for line in open("/proc/self/maps", encoding="utf-8"):
        if line.rstrip().endswith(str(path)):
            low, high = (int(x, 16) for x in line.split()[0].split("-"))
            ranges.append((low, high))
    return ranges


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
@pytest.mark.parametrize("quantization", ["int4-weight", "int8-dynamic"])
def test_quantized_weights_leave_the_file_map_and_tied_ones_stay_tied(quantization, session_settings):
    """What quantizing leaves as loaded (norms, a kept head) is copied out of the safetensors map, which
    would otherwise keep every page of the file that quantizing read resident."""
    loaded = load_model(FP32, session_settings)
    weights = Path(loaded.model.config._name_or_path) / "model.safetensors"
    ranges = file_mapped(weights)
    loaded_tensors = loaded.model.state_dict().values()
    assert ranges and any(lo <= t.data_ptr() < hi for t in loaded_tensors for lo, hi in ranges)  # as loaded: mapped
    tied = loaded.model.lm_head.weight.data_ptr() == loaded.model.get_input_embeddings().weight.data_ptr()
    quantized = quantize_loaded(loaded, quantization).model
    ranges = file_mapped(weights) or ranges  # another model of the session may still map the file
    tensors = {n: t for n, t in quantized.state_dict().items() if isinstance(t, torch.Tensor)}  # int8: also dtypes
    inside = [n for n, t in tensors.items() if any(lo <= t.data_ptr() < hi for lo, hi in ranges)]
    assert inside == []
    if quantization == "int8-dynamic" and tied:  # the head stays in float32, still the embedding's matrix
        assert quantized.lm_head.weight.data_ptr() == quantized.get_input_embeddings().weight.data_ptr()
