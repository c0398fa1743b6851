"""Preference pairs (a prompt with its sources, a chosen and a rejected answer) from the Studio's own signals:
Human Eval ratings, the local judge on A/B experiments, and corrections people wrote; saved as dataset
versions (see :mod:`engine.qa.preference` for the record format). Only the command line, the app and jobs
import this package."""

from engine.preferences.harvest import SKIP_REASONS, ReviewItem
from engine.preferences.judgements import judged_experiments
from engine.preferences.sessions import human_pairs, review_items
from engine.preferences.versions import PreferenceBuild, build_preferences, drop_pairs
from engine.qa.preference import preference_datasets

__all__ = [
    "SKIP_REASONS",
    "PreferenceBuild",
    "ReviewItem",
    "build_preferences",
    "drop_pairs",
    "human_pairs",
    "judged_experiments",
    "preference_datasets",
    "review_items",
]
