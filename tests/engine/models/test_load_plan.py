"""Pre-flight of catalog models: memory per precision from the real config, and the load plan."""

from __future__ import annotations

import pytest

from engine.errors import InputError
from engine.machine import MemoryReading
from engine.models.catalog import BUNDLED, CatalogEntry
from engine.models.preflight import footprints, model_shape, plan_for, precision_of, with_precision
from engine.models.spec import DEFAULT_MODEL, ModelSpec


def test_the_bundled_models_footprint_comes_from_its_config(session_settings):
    shape = model_shape(BUNDLED[0], session_settings)
    assert 130e6 < shape.params < 140e6 and (shape.layers, shape.kv_heads, shape.head_dim) == (30, 3, 64)
    found = footprints(BUNDLED[0], session_settings)
    assert found["float32"].weights_gb == pytest.approx(2 * found["bfloat16"].weights_gb)
    assert found["bfloat16"].weights_gb > found["int8"].weights_gb > found["nf4"].weights_gb
    assert found["float32"].kv_cache_gb == pytest.approx(2 * 30 * 3 * 64 * 1024 * 4 / 1024**3)


def test_an_entry_that_cannot_be_read_offline_falls_back_to_its_parameter_count(session_settings):
    online = CatalogEntry("far-away", "someone/far-away-model", params_m=500)
    assert model_shape(online, session_settings).params == 500_000_000
    with pytest.raises(InputError, match="no params_m"):
        model_shape(CatalogEntry("unknown", "someone/unknown-model"), session_settings)


def test_a_big_model_on_little_memory_is_planned_down_to_what_fits(session_settings):
    big = CatalogEntry("big", "someone/big", params_m=1700)
    catalog = [BUNDLED[0], big]
    plan = plan_for(big, "float32", catalog, session_settings, MemoryReading(16, 1.5, 0.3))  # budget 0.75 GB
    # big: float32, bfloat16, int8, nf4 all too large; the bundled model's float32 (0.9 GB) too.
    assert (plan.model, plan.precision) == (BUNDLED[0].name, "bfloat16")
    assert [s.split(" needs")[0] for s in plan.steps] == [
        "big at float32", "big at bfloat16", "big at int8", "big at nf4", f"{BUNDLED[0].name} at float32"
    ]  # fmt: skip
    roomy = plan_for(big, "bfloat16", catalog, session_settings, MemoryReading(64, 40, 0.3))
    assert (roomy.model, roomy.precision, roomy.downgraded) == ("big", "bfloat16", False)


def test_precisions_map_to_model_specs():
    assert precision_of(with_precision(DEFAULT_MODEL, "nf4"), "cpu") == "nf4"
    assert with_precision(DEFAULT_MODEL, "int8").quantization == "8bit"
    assert precision_of(with_precision(DEFAULT_MODEL, "float32"), "cpu") == "float32"
    assert precision_of(DEFAULT_MODEL, "cuda") == "float16"
    assert precision_of(ModelSpec(quantization="4bit-fp4"), "cpu") == "nf4"  # a rung's size, not a switch
    assert precision_of(ModelSpec(quantization="int8-dynamic"), "cpu") == "int8"
    assert precision_of(DEFAULT_MODEL, "cpu") in ("bfloat16", "float32")


def test_a_low_memory_reading_downgrades_the_load_and_logs_why(settings, session_settings):
    from engine.models.generation import load_generator
    from engine.models.manager import ModelManager
    from engine.models.preflight import load_entry
    from engine.tracking import MODELS, Tracker

    manager = ModelManager(lambda spec: load_generator(spec, session_settings), budget_gb=2.0)
    tracker = Tracker(settings)
    low = MemoryReading(16, 1.4, 0.3)  # high pressure: a 0.7 GB budget, below float32's 0.9 GB
    outcome = load_entry(manager, BUNDLED[0], "quality", [BUNDLED[0]], session_settings, tracker, low)
    assert outcome.plan.downgraded and outcome.plan.precision == "bfloat16"
    assert outcome.spec.dtype == "bfloat16" and manager.active_spec == outcome.spec
    with manager.use() as generator:
        assert next(generator.model.parameters()).dtype.is_floating_point
        assert str(next(generator.model.parameters()).dtype) == "torch.bfloat16"
    run = tracker.recent(MODELS, 1)[0]
    assert run.run_id == outcome.run_id and run.params["asked_precision"] == "float32"
    assert run.params["precision"] == "bfloat16" and run.metrics["steps"] == 1
    roomy = load_entry(manager, BUNDLED[0], "quality", [BUNDLED[0]], session_settings, tracker,
                       MemoryReading(16, 12, 0.3))  # fmt: skip
    assert not roomy.plan.downgraded and roomy.run_id is None and roomy.spec.dtype == "float32"
