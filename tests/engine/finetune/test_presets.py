"""Named recipes: a preset is its changes to TrainSpec's defaults; overrides change only what they name."""

from __future__ import annotations

import pytest

from engine.errors import InputError
from engine.finetune.presets import COLLECTION, COLLECTION_2, CONTINUED, PRESETS, RECIPE_7, preset_for, preset_spec
from engine.finetune.spec import TrainSpec


def test_a_preset_is_its_changes_and_overrides_change_only_what_they_name():
    spec = preset_spec(COLLECTION.name, adapter="notes-lora", rag={"k": 2})
    assert (spec.rag.answer_style, spec.rag.sources, spec.rag.k) == ("auto", "retrieved", 2)  # rag kept, k changed
    assert spec.adapter == "notes-lora" and spec.lora.r == 16 and spec.epochs == 2.0
    assert preset_spec(COLLECTION_2.name).rag.answer_style == "short"  # recipe 2: short answers throughout
    assert preset_spec(RECIPE_7.name).learning_rate == 1e-3 and TrainSpec().learning_rate != 1e-3
    assert preset_for("notes-qa") is COLLECTION and preset_for("hotpotqa") is RECIPE_7
    assert all(p.measured for p in PRESETS.values())
    with pytest.raises(InputError, match="Unknown preset"):
        preset_spec("recipe-99")


def test_the_train_command_reads_a_start_adapter_and_every_trained_style():
    import argparse

    from engine.cli.finetune import add_train_arguments, train_spec

    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    a = parser.parse_args(["--dataset", "notes-qa", "--preset", CONTINUED.name, "--start-from", "hotpotqa-v7",
                           "--answer-style", "sentences"])  # fmt: skip
    spec = train_spec(a)
    assert (spec.start_from, spec.rag.answer_style, spec.epochs) == ("hotpotqa-v7", "sentences", 1.0)
    assert spec.adapter == "notes-qa-lora" and train_spec(parser.parse_args([])).start_from == ""
