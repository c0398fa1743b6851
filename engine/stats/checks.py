"""Input checks shared by the statistics: score lists as finite float arrays, or an InputError naming the problem."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.errors import InputError


def finite_scores(values: Sequence[float], what: str = "scores"):
    """``values`` as a flat float array, every value a finite number. Raises InputError otherwise, naming
    the first bad item and whether it is NaN or infinite."""
    try:
        x = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise InputError(f"The {what} must be numbers: {exc}.") from None
    if x.ndim != 1:
        raise InputError(f"The {what} must be a flat list of numbers, one per item.")
    bad = ~np.isfinite(x)
    if bad.any():
        i = int(np.argmax(bad))
        kind = "NaN (a missing score)" if np.isnan(x[i]) else "infinite"
        raise InputError(f"The {what} must be finite numbers; item {i} is {kind} ({int(bad.sum())} bad in all).")
    return x


def check_pairs(a: Sequence[float], b: Sequence[float], what: str = "scores"):
    """The two score lists as float arrays, after checking they pair up: same length, at least two items,
    every value a finite number. Raises InputError otherwise."""
    if len(a) != len(b):
        raise InputError(f"Paired {what} need the same items: {len(a)} against {len(b)}.")
    if len(a) < 2:
        raise InputError(f"A paired test needs at least two items; got {len(a)} {what}.")
    return finite_scores(a, f"paired {what} (A)"), finite_scores(b, f"paired {what} (B)")
