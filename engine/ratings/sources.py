"""Where a rating session's answers come from: two variants of an A/B experiment, or any two
evaluation runs logged to MLflow (their per-question tables, matched by question id)."""

from __future__ import annotations

from engine.ab.judging import load_judges, verdicts_for
from engine.ab.results import load_result
from engine.errors import InputError
from engine.evaluation.history import per_question
from engine.names import check_safe_name
from engine.ratings.sessions import items_from_answers
from engine.ratings.store import RatingStore
from engine.settings import Settings


def session_from_experiment(
    store: RatingStore, settings: Settings, experiment_id: str, a: str, b: str, limit: int = 0, seed: int = 0
) -> str:
    """A session rating variants ``a`` and ``b`` of a saved experiment on its items (the first
    ``limit``; 0: all); returns the session id."""
    result = load_result(experiment_id, settings)
    missing = [v for v in (a, b) if v not in result.variants]
    if missing:
        names = ", ".join(result.variants)
        raise InputError(f"Experiment {experiment_id} has no variant {missing[0]!r}: it has {names}.")
    rows_a, rows_b = result.variants[a].rows, result.variants[b].rows
    if limit:
        rows_a, rows_b = rows_a[:limit], rows_b[:limit]
    items = items_from_answers(
        [r["question"] for r in rows_a],
        [r.get("gold", "") for r in rows_a],
        [r.get("context", "") for r in rows_a],
        [r["prediction"] for r in rows_a],
        [r["prediction"] for r in rows_b],
        (a, b),
        [r["item_id"] for r in rows_a],
    )
    name = f"{result.spec.get('name', experiment_id)}: {a} vs {b}"
    return store.create_session(name, (a, b), items, {"experiment": experiment_id}, seed)


def session_from_runs(
    store: RatingStore, tracker, run_a: str, run_b: str, names: tuple[str, str], limit: int = 0, seed: int = 0
) -> str:
    """A session rating two evaluation runs' answers to the questions both answered (matched by
    question id, in run A's order); ``names`` label the two runs. Returns the session id."""
    names = tuple(check_safe_name(n, "variant") for n in names)  # the user's labels of the two runs
    if run_a == run_b:
        raise InputError("Pick two different runs to compare.")
    try:
        first, second = per_question(tracker, run_a), per_question(tracker, run_b)
    except Exception as exc:  # a run without the table (or not an evaluation run)
        raise InputError(f"Could not read the runs' per-question answers: {str(exc).splitlines()[0]}") from None
    answers_b = dict(zip(second["id"], second["prediction"], strict=True))
    shared = first[first["id"].isin(answers_b)]
    if shared.empty:
        raise InputError("The two runs have no question in common: evaluate both on the same questions.")
    if limit:
        shared = shared.head(limit)
    items = items_from_answers(
        list(shared["question"]),
        list(shared["gold"]),
        None,
        list(shared["prediction"]),
        [answers_b[i] for i in shared["id"]],
        names,
        list(shared["id"]),
    )
    return store.create_session(f"{names[0]} vs {names[1]}", names, items, {"runs": [run_a, run_b]}, seed)


def judge_verdicts(session, settings: Settings) -> dict[str, str] | None:
    """The local judge's verdicts (item id -> variant or 'tie') on a session's two variants, where the
    session comes from an A/B experiment on which the judge was run for that pair; else None."""
    experiment = (session.source or {}).get("experiment")
    if not experiment or len(session.variants) != 2:
        return None
    try:
        judges = load_judges(experiment, settings)
    except InputError:  # the experiment's name is no longer valid: no judgement to find
        return None
    return verdicts_for(judges, *session.variants)
