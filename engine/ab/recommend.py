"""Recommendations from an A/B experiment's numbers: which variant to deploy for quality, speed and memory,
by rules that are pure functions of each variant's summary and the significance of its F1 differences
(:class:`Comparison`), testable on hand-made numbers; and the intervals they quote."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from engine.errors import InputError
from engine.stats.bootstrap import bootstrap_mean

ALPHA = 0.05
SIGNIFICANCE_TEST = "permutation"  # the test (on per-item F1) whose Holm-adjusted p decides the recommendations
QUALITY_RULE = (
    "The variant with the highest mean F1. Its lead is significant when it beats every other variant in the paired "
    "permutation test on per-item F1 (Holm-adjusted p < {alpha}); otherwise there is no significant difference "
    "between it and the variants it does not beat, and the cheaper of them (lowest p50 latency, then lowest peak "
    "memory) is preferred."
)
SPEED_RULE = (
    "The lowest p50 latency among the variants whose F1 is not significantly below the best variant's "
    "(Holm-adjusted permutation p < {alpha}); ties go to the lower peak memory."
)
MEMORY_RULE = (
    "The lowest peak memory among the variants whose F1 is not significantly below the best variant's "
    "(Holm-adjusted permutation p < {alpha}); ties go to the lower p50 latency."
)


@dataclass(frozen=True)
class Comparison:
    """F1 of variant ``b`` against ``a`` on the same items: the mean gain ``diff`` = b - a (F1 points) with its
    95% interval, the Holm-adjusted p-value and whether the difference is significant after Holm."""

    a: str
    b: str
    diff: float
    low: float
    high: float
    p_adjusted: float
    significant: bool

    def gain(self, name: str) -> float:
        """How many F1 points ``name`` (one of the pair) scores above the other."""
        return self.diff if name == self.b else -self.diff


@dataclass(frozen=True)
class Recommendation:
    """Which variant to deploy for a ``goal`` (``quality``, ``speed`` or ``memory``), why in one sentence
    quoting the numbers, and the rule it follows. ``variant`` is None when the numbers cannot decide (no
    memory readings). Quality only: ``significant`` says whether the highest F1's lead is significant after
    Holm, and ``prefer`` names the cheaper variant to deploy instead when it is not (None when the best is
    also the cheapest of the variants it does not significantly beat)."""

    goal: str
    variant: str | None
    reason: str
    rule: str
    significant: bool | None = None
    prefer: str | None = None


def _between(comparisons: Sequence[Comparison], x: str, y: str) -> Comparison | None:
    return next((c for c in comparisons if {c.a, c.b} == {x, y}), None)


def _worse(comparisons: Sequence[Comparison], x: str, best: str) -> Comparison | None:
    """The comparison showing ``x`` significantly below ``best`` in F1, or None (no such evidence)."""
    c = _between(comparisons, x, best)
    return c if c is not None and c.significant and c.gain(x) < 0 else None


def _p(c: Comparison | None) -> str:
    return "no paired test" if c is None else f"Holm p = {c.p_adjusted:.3g}"


def _versus(comparisons: Sequence[Comparison], x: str, best: str) -> str:
    c = _between(comparisons, x, best)
    gain = f"{c.gain(x):+.1f} F1 points, " if c is not None else ""
    return f"{gain}{_p(c)}"


def recommend(
    summaries: Mapping[str, Mapping[str, float]], comparisons: Sequence[Comparison], alpha: float = ALPHA
) -> list[Recommendation]:
    """The variant to deploy for quality, for speed and for memory (in that order), by the rules
    ``QUALITY_RULE``, ``SPEED_RULE`` and ``MEMORY_RULE``.

    ``summaries`` maps each variant to its ``f1``, ``latency_p50_s``, ``latency_p95_s`` and ``peak_memory_gb``
    (as :meth:`VariantResult.summary` gives them); ``comparisons`` holds the F1 comparisons of the pairs,
    significance already Holm-adjusted. A pair without a comparison counts as not significantly different.
    The quality recommendation names the highest F1 and, when its lead is not significant, the cheaper variant
    to prefer; speed and memory pick among the variants not significantly worse than the highest F1."""
    if not summaries:
        raise InputError("Recommendations need at least one variant.")
    names = list(summaries)
    s = {n: summaries[n] for n in names}
    f1 = {n: float(s[n]["f1"]) for n in names}
    p50 = {n: float(s[n]["latency_p50_s"]) for n in names}
    mem = {n: float(s[n].get("peak_memory_gb", 0.0)) for n in names}

    def by_speed(n: str) -> tuple:
        return p50[n], mem[n], names.index(n)

    def by_memory(n: str) -> tuple:  # a variant without a reading (0) comes last
        return mem[n] if mem[n] > 0 else math.inf, p50[n], names.index(n)

    best = min(names, key=lambda n: (-f1[n], *by_speed(n)))
    excluded = {n: c for n in names if n != best and (c := _worse(comparisons, n, best)) is not None}
    pool = [n for n in names if n not in excluded]  # the best and those not significantly worse than it
    rules = [r.format(alpha=alpha) for r in (QUALITY_RULE, SPEED_RULE, MEMORY_RULE)]

    # quality
    if len(names) == 1:
        quality = Recommendation(
            goal="quality",
            variant=best,
            reason=f"{best} is the only variant (F1 {f1[best]:.1f}).",
            rule=rules[0],
            significant=None,
        )
    elif len(pool) == 1:
        runner = max(excluded, key=lambda n: f1[n])
        quality = Recommendation(
            goal="quality",
            variant=best,
            reason=f"{best} has the highest F1 ({f1[best]:.1f}) and its lead is significant after Holm over every "
            f"other variant, the closest being {runner} (F1 {f1[runner]:.1f}; {_versus(comparisons, runner, best)}).",
            rule=rules[0],
            significant=True,
        )
    else:
        tied = [n for n in pool if n != best]
        cheap = min(pool, key=by_speed)
        ties = ", ".join(f"{n} (F1 {f1[n]:.1f}; {_versus(comparisons, n, best)})" for n in tied)
        why = (
            f"{best} has the highest F1 ({f1[best]:.1f}) but its lead over {ties} is not significant after Holm: "
            "no significant difference, prefer the cheaper"
        )
        if cheap == best:
            why += f", which {best} is itself (p50 {p50[best]:.3g} s, peak memory {mem[best]:.2f} GB)."
        else:
            why += (
                f" {cheap} (p50 {p50[cheap]:.3g} s against {p50[best]:.3g} s, "
                f"peak memory {mem[cheap]:.2f} GB against {mem[best]:.2f} GB)."
            )
        quality = Recommendation(
            goal="quality",
            variant=best,
            reason=why,
            rule=rules[0],
            significant=False,
            prefer=None if cheap == best else cheap,
        )

    def pick(goal: str, what: str, key, value, rule: str) -> Recommendation:
        """The variant of the pool lowest by ``key``; ``value(n)`` quotes its figure."""
        chosen = min(pool, key=key)
        if len(names) == 1:
            return Recommendation(
                goal=goal, variant=chosen, reason=f"{chosen} is the only variant ({what}: {value(chosen)}).", rule=rule
            )
        if len(pool) == 1:
            why = f"{chosen} is the only variant whose F1 is not significantly below the best's, being the best "
            why += f"itself (F1 {f1[best]:.1f}; {what}: {value(chosen)})"
        else:
            why = f"{chosen} has the lowest {what} ({value(chosen)}) of the {len(pool)} variants whose F1 is not "
            why += "significantly below the best's"
            if chosen == best:
                why += f", and it has the best F1 itself ({f1[best]:.1f})"
            else:
                why += f" ({best}, {f1[best]:.1f}); its F1 is {f1[chosen]:.1f} ({_versus(comparisons, chosen, best)})"
        lower = sorted((n for n in excluded if key(n) < key(chosen)), key=key)
        if lower:
            why += "; " + ", ".join(f"{n} ({value(n)})" for n in lower) + " would be lower but "
            why += ("its F1 is" if len(lower) == 1 else "their F1s are") + " significantly worse ("
            why += "; ".join(f"{n}: {_versus(comparisons, n, best)}" for n in lower) + ")"
        return Recommendation(goal=goal, variant=chosen, reason=why + ".", rule=rule)

    def latency(n: str) -> str:
        return f"p50 {p50[n]:.3g} s, p95 {float(s[n].get('latency_p95_s', p50[n])):.3g} s"

    speed = pick("speed", "median latency", by_speed, latency, rules[1])
    if not any(mem[n] > 0 for n in names):
        memory = Recommendation(
            goal="memory",
            variant=None,
            reason="No peak-memory readings: nothing to recommend for memory.",
            rule=rules[2],
        )
    else:
        memory = pick("memory", "peak memory", by_memory, lambda n: f"{mem[n]:.2f} GB", rules[2])
    return [quality, speed, memory]


def comparisons_from(variants, test: str = SIGNIFICANCE_TEST) -> list[Comparison]:
    """:class:`Comparison` objects from an :class:`engine.stats.VariantComparison`: the bootstrap interval of
    the F1 difference and ``test``'s Holm-adjusted p-value."""
    out = []
    for label, comp in variants.comparisons.items():
        b, a = label.split(" vs ", 1)
        adj = variants.adjusted[test][label]
        d = comp.bootstrap
        out.append(
            Comparison(a=a, b=b, diff=d.mean, low=d.low, high=d.high, p_adjusted=adj.adjusted, significant=adj.reject)
        )
    return out


def mean_interval(
    values: Sequence[float], confidence: float = 0.95, resamples: int = 10_000, seed: int = 0
) -> tuple[float, float, float]:
    """The mean of ``values`` and its bootstrap confidence interval (scipy, BCa; percentile when BCa is
    undefined): ``(mean, low, high)``. Without spread (or with one value) the interval is the mean itself."""
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if x.size < 2 or np.all(x == x[0]):
        return mean, mean, mean
    for method in ("BCa", "percentile"):
        found = bootstrap_mean(x, confidence, resamples, seed, method)  # checked: NaN or inf is an InputError
        low, high = (float(v) for v in found.confidence_interval)
        if math.isfinite(low) and math.isfinite(high):
            return mean, low, high
    return mean, mean, mean


def percent_interval(t: tuple[float, float, float]) -> tuple[float, float, float]:
    return 100 * t[0], 100 * t[1], 100 * t[2]


def em_fraction(values: Sequence[float]) -> list[float]:
    """Exact-match scores as 0/1 (rows may store them as 0/1 or 0/100)."""
    scale = 100.0 if any(float(v) > 1 for v in values) else 1.0
    return [float(v) / scale for v in values]
