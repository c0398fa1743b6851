"""Named training recipes: the settings each was measured with, and what it was measured on.

The form and the CLI start from :data:`DEFAULT_PRESET`; a preset is a set of changes to
:class:`TrainSpec`'s defaults, so every setting not named keeps the class default.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import check_choice
from engine.finetune.spec import TrainSpec, primary_pool


@dataclass(frozen=True)
class Preset:
    name: str
    measured: str  # what it was measured on, and the result (or that it was not)
    changes: dict  # TrainSpec fields (nested specs as dicts of their own fields)


RECIPE_7 = Preset(
    "hotpotqa-recipe-7",
    "HotpotQA test split, 300 questions, distractor RAG: F1 36.1, +23.3 [+18.4, +28.3] over the base; "
    "Dolly closed_qa +2.3 F1 (no forgetting); 37.6 min on 2 CPU cores (docs/fine-tuning.md)",
    {
        "lora": {"r": 16, "alpha": 32},
        "learning_rate": 1e-3,
        "scheduler": "cosine",
        "max_length": 1100,
        "rag": {"max_source_chars": 450, "sources": "retrieved", "follow_links": 2},
        "mix": {"sources": (("hotpotqa", 0.75), ("dolly", 0.25))},
        "dolly_targets": "base",
        "dolly_categories": ("information_extraction", "summarization"),
        "val_limit": 40,
    },
)
COLLECTION_1 = Preset(
    "collection-recipe-1",
    "a development collection of 199 Wikipedia documents, HotpotQA's human-written questions about them, "
    "knowledge-base RAG: F1 +8.2 [+0.7, +16.3] over the base on 100 questions (docs/collections.md)",
    {
        "lora": {"r": 16, "alpha": 32},
        "learning_rate": 1e-3,
        "scheduler": "cosine",
        "max_length": 1100,
        "epochs": 3.0,
        "rag": {"max_source_chars": 450, "sources": "retrieved", "follow_links": 0},
        "mix": {"sources": (("dataset", 1.0),)},
        "val_limit": 40,
    },
)
COLLECTION_2 = Preset(
    "collection-recipe-2",
    "collection recipe 1 with half the examples from HotpotQA's training split, 2 epochs: F1 +17.8 [+9.7, +26.3] "
    "over the base on the development collection's 100 questions, level with recipe 7's adapter (docs/collections.md)",
    COLLECTION_1.changes | {"epochs": 2.0, "mix": {"sources": (("dataset", 0.5), ("hotpotqa", 0.5))}},
)
COLLECTION = Preset(
    "collection-recipe-3",
    "collection recipe 2 asking each question in the style its form wants (short, or sentences for 'What is X?'), "
    "as the Query page and the loop's evaluation ask it: F1 +15.3 [+8.9, +22.9] over the base on the HotpotQA "
    "development collection's 100 questions, level with recipe 7's adapter; on the Dolly collection, whose people "
    "answer in sentences, trained and asked in sentences as the loop does there: +4.3 [+0.5, +8.6] over the base, "
    "+13.5 [+8.6, +17.8] over recipe 7's adapter (docs/collections.md)",
    COLLECTION_2.changes | {"rag": COLLECTION_2.changes["rag"] | {"answer_style": "auto"}},
)
CONTINUED = Preset(
    "collection-recipe-4",
    "collection recipe 3 for one epoch, continuing a HotpotQA adapter (--start-from; the loop picks one): on two "
    "HotpotQA development collections of 100 questions each, +24.9 [+16.8, +33.2] and +22.3 [+14.1, +30.9] F1 "
    "over the base, +5.5 [-1.4, +12.6] and +1.8 [-5.8, +9.5] over the recipe-7 adapter it continued; two epochs "
    "or a learning rate of 3e-4 did worse (docs/collections.md)",
    COLLECTION.changes | {"epochs": 1.0},
)
PRESETS = {p.name: p for p in (RECIPE_7, COLLECTION, CONTINUED, COLLECTION_2, COLLECTION_1)}
DEFAULT_PRESET = RECIPE_7.name  # for HotpotQA; a user's QA set starts from COLLECTION


def preset_for(dataset: str) -> Preset:
    """The measured recipe for what is trained on: a user's QA set, or HotpotQA."""
    return COLLECTION if primary_pool(dataset) == "dataset" else RECIPE_7


def preset_spec(name: str, **overrides) -> TrainSpec:
    """TrainSpec with a preset's changes, then ``overrides`` (top-level fields, e.g. adapter, dataset, kb; a
    nested spec given as a dict changes only the fields it names)."""
    check_choice(name, PRESETS, "preset")
    values = TrainSpec().to_dict()
    for changes in (PRESETS[name].changes, overrides):
        for key, value in changes.items():
            nested = isinstance(value, dict) and isinstance(values.get(key), dict)
            values[key] = values[key] | value if nested else value
    return TrainSpec.from_dict(values)
