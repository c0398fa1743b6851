"""A rating session's results as an MLflow run in the ``studio-human-eval`` experiment."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import asdict

from engine.errors import InputError
from engine.ratings.aggregate import agreement, judge_agreement, leaderboard, mean_scores
from engine.ratings.store import RatingStore
from engine.tracking import HUMAN_EVAL, Tracker, plain_json


def metric_name(variant: str) -> str:
    """A variant name MLflow accepts as part of a metric name (letters, digits, ``_-. /``)."""
    return re.sub(r"[^\w\-. /]", "_", variant)


def log_session(
    tracker: Tracker,
    store: RatingStore,
    session_id: str,
    judge: Mapping[str, str] | None = None,
    resamples: int = 1000,
    seed: int = 0,
) -> str:
    """Log a session's leaderboard and agreement to MLflow; returns the run id.

    Metrics: ``<variant>.win_rate`` / ``.bt`` / ``.elo`` (with ``_low`` / ``_high`` bounds), ``agreement.*``
    and, given a judge's verdicts (item id -> variant or 'tie'), ``judge.*``; undefined figures are left
    out. Artifacts: the leaderboard and mean scores as tables, the agreement figures and the session as JSON,
    and the ratings as CSV.
    """
    session = store.session(session_id)
    ratings = store.ratings(session_id)
    if ratings.empty:
        raise InputError(f"rating session {session.name!r} has no ratings yet: nothing to log")
    board = leaderboard(ratings, resamples=resamples, seed=seed)
    agree = agreement(ratings)
    judged = judge_agreement(ratings, judge) if judge is not None else None

    metrics: dict[str, float] = {"ratings": len(ratings), "raters": ratings["rater"].nunique()}
    for row in board.to_dict("records"):
        name = metric_name(row["variant"])
        for col in ("win_rate", "bt", "elo"):
            for suffix in ("", "_low", "_high"):
                metrics[f"{name}.{col}{suffix}"] = row[col + suffix]
    metrics.update({f"agreement.{k}": v for k, v in asdict(agree).items()})
    if judged is not None:
        metrics.update({f"judge.{k}": v for k, v in asdict(judged).items()})
    metrics = {k: float(v) for k, v in metrics.items() if v is not None and math.isfinite(float(v))}

    params = {
        "session_id": session.id,
        "session": session.name,
        "variants": json.dumps(list(session.variants)),
        "source": json.dumps(session.source, sort_keys=True),
        "seed": session.seed,
        "resamples": resamples,
    }
    run_id = tracker.start(HUMAN_EVAL, f"ratings {session.name}", params=params, tags={"session_id": session.id})
    try:
        tracker.log_metrics(run_id, metrics)
        tracker.log_table(run_id, board, "leaderboard.json")
        tracker.log_table(run_id, mean_scores(ratings), "scores.json")
        figures = {"agreement": plain_json(agree), "judge": plain_json(judged) if judged else None}
        tracker.log_dict(run_id, figures, "agreement.json")
        tracker.log_dict(run_id, asdict(session), "session.json")
        tracker.log_text(run_id, ratings.to_csv(index=False), "ratings.csv")
    except BaseException:
        tracker.end(run_id, status="FAILED")
        raise
    tracker.end(run_id)
    return run_id
