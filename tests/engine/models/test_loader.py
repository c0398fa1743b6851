"""Loading the bundled GGUF model: the converted safetensors cache, and load errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from engine.errors import InputError
from engine.models.loader import gguf_cache_dir, load_model
from engine.models.spec import DEFAULT_MODEL, ModelSpec

pytestmark = pytest.mark.slow


def test_bundled_model_is_llama_in_its_auto_dtype_with_tied_embeddings(generator) -> None:
    from transformers import LlamaForCausalLM

    from engine.models.spec import resolve_dtype

    loaded = generator.loaded
    model = loaded.model
    assert isinstance(model, LlamaForCausalLM)
    assert loaded.device == "cpu" or torch.cuda.is_available()
    dtype = resolve_dtype(loaded.spec, loaded.device)
    assert model.dtype == dtype
    assert all(p.dtype == dtype for p in model.parameters())
    assert not model.training
    # SmolLM2 ties the output layer to the input embeddings: one tensor, not two copies
    assert model.config.tie_word_embeddings is True
    assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    # a real, dequantized model: ~135M parameters, not all zeros
    n_params = sum(p.numel() for p in model.parameters())
    assert 130e6 < n_params < 140e6
    assert model.model.embed_tokens.weight.abs().sum() > 0
    # tokenizer prepared for batched generation
    assert loaded.tokenizer.padding_side == "left"
    assert loaded.tokenizer.pad_token is not None


def test_cache_folder_holds_safetensors_without_quantization_config(generator, session_settings) -> None:
    cache = gguf_cache_dir(DEFAULT_MODEL, session_settings)
    assert cache.parent == session_settings.models_dir
    assert cache.name.startswith(DEFAULT_MODEL.name + "-")
    assert (cache / "model.safetensors").is_file()
    assert (cache / "model.safetensors").stat().st_size > 100_000_000  # float32 weights, not GGUF blocks
    assert (cache / "tokenizer.json").is_file() or (cache / "tokenizer_config.json").is_file()
    config = json.loads((cache / "config.json").read_text())
    assert "quantization_config" not in config
    assert config["model_type"] == "llama"
    assert not cache.with_name(cache.name + ".tmp").exists()  # no half-written leftover


def test_cache_key_follows_the_gguf_file(tmp_path: Path, session_settings) -> None:
    fake = tmp_path / "pkg"
    fake.mkdir()
    gguf = fake / "m.gguf"
    gguf.write_bytes(b"GGUF" + b"\0" * 10)
    spec = ModelSpec(source=str(fake), gguf_file="m.gguf")
    first = gguf_cache_dir(spec, session_settings)
    assert first == gguf_cache_dir(spec, session_settings)  # stable
    assert first != gguf_cache_dir(DEFAULT_MODEL, session_settings)
    os.utime(gguf, (1_000_000, 1_000_000))  # the file changed: a new cache folder
    assert gguf_cache_dir(spec, session_settings) != first


def test_second_load_comes_from_the_cache(generator, settings) -> None:
    again = load_model(DEFAULT_MODEL, settings)
    assert again.from_cache is True
    assert again.load_seconds < 10
    assert again.device == generator.loaded.device
    # the same weights as the session's model
    for name in ("model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight", "model.norm.weight"):
        assert torch.equal(again.model.get_parameter(name), generator.model.get_parameter(name)), name
    assert again.model.lm_head.weight.data_ptr() == again.model.model.embed_tokens.weight.data_ptr()


def test_missing_model_path_is_an_input_error(settings) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_model(ModelSpec(source="/nonexistent/model", gguf_file=None), settings)


def test_folder_without_the_gguf_file_is_an_input_error(tmp_path: Path, settings) -> None:
    folder = tmp_path / "no-gguf"
    folder.mkdir()
    (folder / "other.gguf").write_bytes(b"GGUF")
    with pytest.raises(InputError, match=r"GGUF file 'model\.Q4\.gguf' not found"):
        load_model(ModelSpec(source=str(folder), gguf_file="model.Q4.gguf"), settings)
    assert not any(settings.models_dir.glob("smollm2*.tmp"))


def test_folder_that_is_not_a_model_is_an_input_error(tmp_path: Path, settings) -> None:
    folder = tmp_path / "not-a-model"
    folder.mkdir()
    (folder / "notes.txt").write_text("no weights here")
    with pytest.raises(InputError, match="Could not load model"):
        load_model(ModelSpec(source=str(folder), gguf_file=None), settings)


@pytest.mark.parametrize("quantization", ["8bit", "4bit", "4bit-fp4", "int8-dynamic"])
def test_each_quantization_loads_smaller_and_answers(quantization: str, generator, session_settings) -> None:
    from dataclasses import replace

    from engine.models.generation import SamplingSpec, load_generator
    from engine.models.manager import model_bytes

    spec = replace(generator.loaded.spec, quantization=quantization, device="cpu")
    quantized = load_generator(spec, session_settings)
    assert model_bytes(quantized.model) < 0.9 * model_bytes(generator.model)
    question = [{"role": "user", "content": "What is the capital of France?"}]
    text = quantized.generate([question], SamplingSpec(max_new_tokens=10))[0].text
    assert "Paris" in text, text  # quality kept on an easy question, as in full precision
