"""The rows a Human Eval session's answers came from: an A/B experiment's variant rows, or two evaluation runs'
per-question tables. A rating item keeps only the answers as shown; its row keeps the raw output and the
prompt (see :mod:`engine.preferences.prompts`)."""

from __future__ import annotations

from engine.ab.results import load_result
from engine.errors import StudioError
from engine.evaluation.history import per_question
from engine.settings import Settings
from engine.tracking import Tracker

Rows = dict[str, dict[str, dict]]  # variant -> item id -> row


def experiment_rows(result) -> Rows:
    """Variant -> item id -> row of a saved experiment (an :class:`engine.ab.results.ExperimentResult`)."""
    return {name: {str(r["item_id"]): r for r in variant.rows} for name, variant in result.variants.items()}


def session_rows(session, settings: Settings, tracker: Tracker | None = None) -> Rows:
    """Variant -> item id -> the row each answer of a session (a :class:`engine.ratings.RatingSession`) came
    from. A source that is gone (an experiment deleted, a run without its table) gives no rows: the items'
    answers and context are then all that is known."""
    source = session.source or {}
    if experiment := source.get("experiment"):
        try:
            found = experiment_rows(load_result(experiment, settings))
        except StudioError:  # no longer saved, or its name no longer valid
            return {}
        return {v: rows for v, rows in found.items() if v in session.variants}
    runs = source.get("runs") or []
    if len(runs) != len(session.variants):
        return {}
    tracker = tracker or Tracker(settings)
    found = {}
    for variant, run in zip(session.variants, runs, strict=True):  # the session names the runs in its order
        try:
            table = per_question(tracker, run)
        except Exception:  # noqa: BLE001 - a run deleted, or logged without its table: its rows are unknown
            continue
        found[variant] = {str(r["id"]): r for r in table.to_dict("records")}
    return found
