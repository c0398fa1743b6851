"""LoRA settings and target modules, on tiny random models built from configs in the test."""

from __future__ import annotations

import pytest
import torch
from peft import get_peft_model
from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig, PhiConfig

from engine.errors import InputError
from engine.finetune.lora import ALL_LINEAR, LoraSpec, detect_targets, summarize, to_lora_config

TINY = {
    "llama": LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2),
    "gpt2": GPT2Config(vocab_size=64, n_embd=32, n_layer=2, n_head=4, n_positions=64),
    "phi": PhiConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4),
}  # fmt: skip


def adapted_modules(config, spec: LoraSpec = LoraSpec()) -> set[str]:
    """Short names of the modules that got a LoRA adapter in a tiny random model."""
    torch.manual_seed(0)
    model = get_peft_model(AutoModelForCausalLM.from_config(config), to_lora_config(spec, config))
    return {name.rsplit(".", 1)[-1] for name, module in model.named_modules() if hasattr(module, "lora_A")}


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("llama", {"q_proj", "k_proj", "v_proj", "o_proj"}),
        ("gpt2", {"c_attn", "c_proj"}),
        ("phi", {"q_proj", "k_proj", "v_proj", "dense"}),
    ],
)
def test_attention_targets_per_architecture(kind: str, expected: set[str]) -> None:
    assert adapted_modules(TINY[kind]) == expected


@pytest.mark.parametrize(
    ("kind", "extra"),
    [("llama", {"gate_proj", "up_proj", "down_proj"}), ("gpt2", {"c_fc"}), ("phi", {"fc1", "fc2"})],
)
def test_mlp_projections_are_added_on_request(kind: str, extra: set[str]) -> None:
    assert extra <= adapted_modules(TINY[kind], LoraSpec(include_mlp=True))
    assert not extra & adapted_modules(TINY[kind])


def test_explicit_targets_override_detection() -> None:
    spec = LoraSpec(targets=("v_proj",))
    assert detect_targets(TINY["llama"], spec).note == "chosen by hand"
    assert adapted_modules(TINY["llama"], spec) == {"v_proj"}


def test_unknown_architecture_falls_back_to_all_linear_and_says_so() -> None:
    config = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=4)  # fmt: skip
    config.model_type = "mystery"
    found = detect_targets(config)
    assert found.modules == ALL_LINEAR
    assert "mystery" in found.note and "all linear layers" in found.note
    assert {"q_proj", "gate_proj", "down_proj"} <= adapted_modules(config)


def test_lora_config_carries_the_spec() -> None:
    config = to_lora_config(LoraSpec(r=4, alpha=8, dropout=0.1), TINY["llama"])
    assert (config.r, config.lora_alpha, config.lora_dropout) == (4, 8, 0.1)
    assert set(config.target_modules) == {"q_proj", "k_proj", "v_proj", "o_proj"}
    assert config.task_type == "CAUSAL_LM"


def test_trainable_share_is_small_and_counted() -> None:
    model = get_peft_model(AutoModelForCausalLM.from_config(TINY["llama"]), to_lora_config(LoraSpec(), TINY["llama"]))
    summary = summarize(model)
    # 2 layers x 4 projections, each r x (in + out) = 8 x (32 + out)
    per_layer = 8 * (32 + 32) + 8 * (32 + 16) + 8 * (32 + 16) + 8 * (32 + 32)
    assert summary.trainable == 2 * per_layer
    assert summary.total == sum(p.numel() for p in model.parameters())
    assert 0 < summary.share < 0.2
    assert "trainable" in str(summary)


@pytest.mark.parametrize("kwargs", [{"r": 0}, {"alpha": 0}, {"dropout": 1.0}, {"dropout": -0.1}])
def test_bad_lora_settings_are_input_errors(kwargs: dict) -> None:
    with pytest.raises(InputError):
        LoraSpec(**kwargs)
