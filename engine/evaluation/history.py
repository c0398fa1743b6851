"""Past evaluation runs from MLflow, shaped for tables and charts."""

from __future__ import annotations

import pandas as pd

from engine.tracking import EVALUATION, Tracker

COLUMNS = ("em", "f1", "groundedness", "recall_at_5", "mrr", "answer_in_context", "seconds", "questions")


def evaluation_runs(tracker: Tracker, limit: int = 100) -> pd.DataFrame:
    """One row per finished evaluation run: when, mode, model, size, and its metrics."""
    rows = [
        {
            "run_id": r.run_id,
            "started": pd.to_datetime(r.start_time, unit="s"),
            "mode": r.params.get("mode", ""),
            "model": r.params.get("model", ""),
            "limit": r.params.get("limit", ""),
            **{c: r.metrics.get(c) for c in COLUMNS},
        }
        for r in tracker.recent(EVALUATION, limit)
        if r.status == "FINISHED"
    ]
    return pd.DataFrame(rows, columns=["run_id", "started", "mode", "model", "limit", *COLUMNS])


def per_question(tracker: Tracker, run_id: str) -> pd.DataFrame:
    return tracker.load_table(run_id, "per_question.json")
