"""The active model: saved in the data dir by the guided loop, read by `engine ask` and the app."""

from __future__ import annotations

import shutil
from dataclasses import replace

from engine.models.active import ACTIVE_FILE, active_spec, read_active, set_active
from engine.models.adapters import AdapterRegistry
from engine.models.catalog import default_spec
from engine.rag.ask import ask_model_spec
from tests.engine.models.test_adapters import FakePeft, meta


def test_nothing_saved_is_the_default_model(settings) -> None:
    assert read_active(settings).adapter == ""
    assert active_spec(settings) == default_spec()
    assert ask_model_spec("", "", settings) == default_spec()


def test_a_saved_adapter_is_what_ask_answers_with(settings) -> None:
    AdapterRegistry(settings).save(FakePeft(), "notes-lora", meta())
    set_active(settings, adapter="notes-lora")

    spec = ask_model_spec("", "", settings)
    assert spec == replace(default_spec(), adapter="notes-lora") == active_spec(settings)
    # a model or an adapter asked for by name overrides the saved choice
    assert ask_model_spec("", "other", settings).adapter == "other"
    assert ask_model_spec("", "", None).adapter == ""


def test_a_vanished_adapter_or_model_falls_back_to_the_default(settings, tmp_path) -> None:
    AdapterRegistry(settings).save(FakePeft(), "gone", meta())
    set_active(settings, adapter="gone")
    shutil.rmtree(AdapterRegistry(settings).path("gone"))
    assert active_spec(settings) == default_spec()

    (settings.data_dir / ACTIVE_FILE).write_text('{"model": "%s", "adapter": ""}' % (tmp_path / "no-such-model"))
    assert active_spec(settings) == default_spec()
    (settings.data_dir / ACTIVE_FILE).write_text("not json")
    assert active_spec(settings) == default_spec()
