"""Memory readings, pressure levels, footprint estimates, and the downgrade plan on simulated readings."""

from __future__ import annotations

import pytest

from engine.errors import InputError
from engine.machine import (
    GB,
    MemoryReading,
    ModelShape,
    estimate_footprint,
    largest_batch,
    pressure_level,
    read_memory,
    shape_of,
)
from engine.models.downgrade import plan_load, precisions_from

SHAPE = ModelShape(params=135_000_000, embedding_params=28_000_000, layers=30, kv_heads=3, head_dim=64)


def reading(free_gb: float, total_gb: float = 16.0) -> MemoryReading:
    return MemoryReading(total_gb=total_gb, available_gb=free_gb, process_rss_gb=0.5)


@pytest.mark.parametrize(
    ("share", "level"), [(0.9, "low"), (0.31, "low"), (0.3, "moderate"), (0.16, "moderate"), (0.1, "high"),
                         (0.07, "critical"), (0.0, "critical")],
)  # fmt: skip
def test_pressure_levels(share, level):
    assert pressure_level(share) == level
    assert reading(share * 16).pressure == level


def test_a_real_reading_is_sane():
    now = read_memory("cpu")
    assert 0 < now.available_gb <= now.total_gb and 0 < now.process_rss_gb < now.total_gb
    assert now.free_gb == now.available_gb and now.pressure in ("low", "moderate", "high", "critical")


def test_gpu_memory_counts_on_cuda():
    gpu = MemoryReading(64, 60, 1, "cuda", device_total_gb=8, device_free_gb=0.4)
    assert gpu.free_gb == 0.4 and gpu.limit_gb == 8 and gpu.pressure == "critical"


def test_footprint_shrinks_down_the_ladder():
    sizes = [estimate_footprint(SHAPE, p).weights_gb for p in ("float32", "bfloat16", "int8", "nf4")]
    assert sizes == sorted(sizes, reverse=True)
    assert sizes[0] == pytest.approx(135e6 * 4 / GB)
    assert sizes[1] == pytest.approx(135e6 * 2 / GB)
    big = estimate_footprint(SHAPE, "bfloat16", batch=16, tokens=2048)
    assert big.kv_cache_gb == pytest.approx(16 * estimate_footprint(SHAPE, "bfloat16", 1, 2048).kv_cache_gb)
    with pytest.raises(ValueError):
        estimate_footprint(SHAPE, "int3")


def test_shape_of_counts_parameters_without_loading_weights():
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    config = LlamaConfig(vocab_size=1000, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False)  # fmt: skip
    shape = shape_of(config)
    real = AutoModelForCausalLM.from_config(config)
    assert shape.params == sum(p.numel() for p in real.parameters())
    assert shape.embedding_params == 2 * 1000 * 64  # input embeddings and the untied head
    assert (shape.layers, shape.kv_heads, shape.head_dim) == (2, 2, 16)
    tied_config = LlamaConfig(vocab_size=1000, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                              num_attention_heads=4, tie_word_embeddings=True)  # fmt: skip
    tied = shape_of(tied_config)
    assert tied.params == sum(p.numel() for p in AutoModelForCausalLM.from_config(tied_config).parameters())
    assert tied.embedding_params == 1000 * 64 and tied.kv_heads == 4
    assert torch.zeros(1).device.type == "cpu"  # the meta device did not leak out as the default


def estimate_by_table(table: dict[tuple[str, str], float]):
    def estimate(model: str, precision: str):
        from engine.machine import Footprint

        return Footprint(precision, table[(model, precision)], 0.0, 0.0)

    return estimate


TABLE = {
    ("big", "float32"): 8.0, ("big", "bfloat16"): 4.0, ("big", "int8"): 2.2, ("big", "nf4"): 1.3,
    ("small", "float32"): 1.2, ("small", "bfloat16"): 0.6, ("small", "int8"): 0.4, ("small", "nf4"): 0.3,
}  # fmt: skip


def test_no_downgrade_when_it_fits():
    plan = plan_load(["big"], "float32", reading(12.0), estimate_by_table(TABLE))
    assert (plan.model, plan.precision, plan.downgraded) == ("big", "float32", False)


def test_low_memory_steps_down_the_ladder_and_says_why():
    plan = plan_load(["big", "small"], "float32", reading(3.0), estimate_by_table(TABLE))  # budget 2.4 GB
    assert (plan.model, plan.precision) == ("big", "int8")
    assert len(plan.steps) == 2 and "big at float32 needs about 8.00 GB" in plan.steps[0]
    assert "2.40 GB budget" in plan.steps[0] and "pressure moderate" in plan.steps[0]


def test_high_pressure_halves_the_budget_and_falls_back_to_a_smaller_model():
    plan = plan_load(["big", "small"], "bfloat16", reading(2.0), estimate_by_table(TABLE))  # high: budget 1.0
    assert (plan.model, plan.precision, plan.pressure) == ("small", "bfloat16", "high")
    assert len(plan.steps) == 3  # big at bfloat16, int8, nf4


def test_apple_silicon_skips_bitsandbytes_steps():
    assert precisions_from("float32", "mps") == ["float32", "bfloat16"]
    assert precisions_from("float16", "cpu") == ["float16", "int8", "nf4"]
    plan = plan_load(["big", "small"], "float32", reading(3.0), estimate_by_table(TABLE), device="mps")
    assert (plan.model, plan.precision) == ("small", "float32")


def test_nothing_fits_or_critical_pressure_is_a_clear_error():
    with pytest.raises(InputError, match="No model fits the 0.16 GB"):
        plan_load(["big", "small"], "float32", reading(0.2, total_gb=1.0), estimate_by_table(TABLE))
    with pytest.raises(InputError, match="critical"):
        plan_load(["small"], "nf4", reading(0.5), estimate_by_table(TABLE))


def test_largest_batch_is_the_last_that_fits_the_budget():
    fits = largest_batch(SHAPE, "bfloat16", 1.0, tokens=2048)
    assert fits >= 1
    assert estimate_footprint(SHAPE, "bfloat16", fits, 2048).total_gb <= 1.0
    assert estimate_footprint(SHAPE, "bfloat16", fits + 1, 2048).total_gb > 1.0
    assert largest_batch(SHAPE, "float32", 0.1) == 0  # not even one sequence
    assert largest_batch(SHAPE, "nf4", 1000.0, limit=64) == 64
    assert largest_batch(SHAPE, "nf4", 1.0) > largest_batch(SHAPE, "float32", 1.0)
