"""Optimal configuration selection: the fastest (or smallest) configuration whose answer quality stays
within a tolerance of the full-precision reference, judged on paired per-question F1."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from engine.errors import InputError, check_choice
from engine.stats import paired_bootstrap

OBJECTIVES = ("fastest", "smallest")
RULES = ("mean", "ci")


@dataclass(frozen=True)
class Candidate:
    """One configuration's results: per-question F1 (0-100, the same questions in the same order for
    every candidate), speed in tokens/s (higher is better) and memory in GB (lower is better)."""

    config: str
    scores: tuple[float, ...]
    speed: float
    memory_gb: float


@dataclass(frozen=True)
class Verdict:
    """A candidate judged against the reference: ``diff`` is its mean F1 minus the reference's, with
    the paired bootstrap 95% interval [``low``, ``high``]; ``meets`` says whether it is within tolerance."""

    config: str
    mean: float
    diff: float
    low: float
    high: float
    speed: float
    memory_gb: float
    meets: bool
    reason: str


@dataclass(frozen=True)
class Selection:
    """The chosen configuration, the criteria it was chosen by, every verdict and a short explanation."""

    chosen: str
    objective: str
    tolerance: float
    rule: str
    verdicts: tuple[Verdict, ...]
    explanation: str


def _check(candidates: Sequence[Candidate], reference: str, tolerance: float, objective: str, rule: str) -> Candidate:
    if not candidates:
        raise InputError("There are no configurations to choose from.")
    check_choice(objective, OBJECTIVES, "objective")
    check_choice(rule, RULES, "rule")
    if not tolerance >= 0:  # written this way so NaN is rejected too
        raise InputError(f"The quality tolerance must be >= 0 F1 points, not {tolerance}.")
    names = [c.config for c in candidates]
    if len(set(names)) != len(names):
        raise InputError(f"Configuration names must be unique: {', '.join(names)}.")
    found = next((c for c in candidates if c.config == reference), None)
    if found is None:
        raise InputError(f"The reference {reference!r} is not among the configurations: {', '.join(names)}.")
    for c in candidates:
        if len(c.scores) != len(found.scores):
            raise InputError(
                f"{c.config!r} has {len(c.scores)} question scores but the reference {reference!r} has "
                f"{len(found.scores)}: they must be scored on the same questions."
            )
    return found


def _judge(candidate: Candidate, ref: Candidate, tolerance: float, rule: str) -> Verdict:
    mean = sum(candidate.scores) / len(candidate.scores) if candidate.scores else 0.0
    if candidate is ref:
        return Verdict(
            config=ref.config,
            mean=mean,
            diff=0.0,
            low=0.0,
            high=0.0,
            speed=ref.speed,
            memory_gb=ref.memory_gb,
            meets=True,
            reason="reference",
        )
    paired = paired_bootstrap(ref.scores, candidate.scores)
    judged = paired.mean if rule == "mean" else paired.low
    meets = judged >= -tolerance
    what = "" if rule == "mean" else "lower bound "
    reason = (
        f"{paired.mean:+.1f} F1 [{paired.low:+.1f}, {paired.high:+.1f}] {what}"
        f"{'within' if meets else 'beyond'} {tolerance:.1f}"
    )
    return Verdict(
        config=candidate.config,
        mean=mean,
        diff=paired.mean,
        low=paired.low,
        high=paired.high,
        speed=candidate.speed,
        memory_gb=candidate.memory_gb,
        meets=meets,
        reason=reason,
    )


def _ratio(value: float, reference: float) -> str:
    return f"{value / reference:.1f}x" if reference > 0 else "n/a"


def _explain(chosen: Verdict, ref: Verdict, verdicts: Sequence[Verdict], objective: str, tolerance: float) -> str:
    criterion = f"within {tolerance:.1f} F1 of the reference {ref.config}"
    if chosen is ref:
        if sum(v.meets for v in verdicts) == 1:
            return f"No other configuration stays {criterion}, so {ref.config} itself is chosen."
        return f"The reference {ref.config} is itself the {objective} configuration {criterion}."
    return (
        f"{chosen.config} is the {objective} configuration {criterion}: {_ratio(chosen.speed, ref.speed)} the "
        f"reference's tokens/s at {_ratio(chosen.memory_gb, ref.memory_gb)} its memory. "
        f"Its F1 differs by {chosen.diff:+.1f} points (95% CI [{chosen.low:+.1f}, {chosen.high:+.1f}])."
    )


def select_config(
    candidates: Sequence[Candidate],
    reference: str,
    tolerance: float = 1.0,
    objective: str = "fastest",
    rule: str = "mean",
) -> Selection:
    """Choose among the candidates that meet the tolerance (F1 points below the reference): by the mean
    paired difference (rule "mean") or by its 95% CI lower bound (rule "ci", stricter). Objective
    "fastest" takes the highest speed, "smallest" the least memory; ties go to the other objective,
    then to the name. The reference always meets the tolerance, so there is always a choice."""
    ref = _check(candidates, reference, tolerance, objective, rule)
    verdicts = tuple(_judge(c, ref, tolerance, rule) for c in candidates)
    if objective == "fastest":
        chosen = min((v for v in verdicts if v.meets), key=lambda v: (-v.speed, v.memory_gb, v.config))
    else:
        chosen = min((v for v in verdicts if v.meets), key=lambda v: (v.memory_gb, -v.speed, v.config))
    ref_verdict = next(v for v in verdicts if v.config == reference)
    explanation = _explain(chosen, ref_verdict, verdicts, objective, tolerance)
    return Selection(
        chosen=chosen.config,
        objective=objective,
        tolerance=tolerance,
        rule=rule,
        verdicts=verdicts,
        explanation=explanation,
    )


def pareto_front(points: dict[str, tuple[float, float, float]]) -> list[str]:
    """The configurations no other beats: ``points`` maps a name to (quality, speed, memory); one
    dominates another when it is at least as good on all three (memory lower) and better on one."""

    def dominates(a, b) -> bool:
        at_least = a[0] >= b[0] and a[1] >= b[1] and a[2] <= b[2]
        return at_least and (a[0] > b[0] or a[1] > b[1] or a[2] < b[2])

    return [n for n, p in points.items() if not any(dominates(q, p) for m, q in points.items() if m != n)]
