"""The optimal-selection rule on synthetic per-question F1 results."""

import numpy as np
import pytest

from engine.benchmark.selection import Candidate, select_config
from engine.errors import InputError

N = 200
RNG = np.random.default_rng(42)
REFERENCE = RNG.uniform(10, 90, N)


def _shifted(shift: float, spread: float) -> tuple[float, ...]:
    """Reference scores plus zero-mean noise of the given spread, moved so the mean difference is exactly ``shift``."""
    noise = RNG.normal(0, spread, N)
    return tuple(REFERENCE + noise - noise.mean() + shift)


FLOAT32 = Candidate("float32", tuple(REFERENCE), speed=10.0, memory_gb=4.0)
INT8 = Candidate("int8", _shifted(-0.2, 1.0), speed=18.0, memory_gb=2.2)
W8A16 = Candidate("w8a16", _shifted(-0.1, 1.0), speed=14.0, memory_gb=1.9)
INT4 = Candidate("int4", _shifted(-5.0, 1.0), speed=40.0, memory_gb=1.2)
NOISY = Candidate("noisy", _shifted(-0.8, 15.0), speed=30.0, memory_gb=3.0)
ALL = [FLOAT32, INT8, W8A16, INT4]


def test_fastest_within_tolerance_skips_the_fast_but_bad_candidate():
    picked = select_config(ALL, "float32", tolerance=1.0)
    assert picked.chosen == "int8"
    verdicts = {v.config: v for v in picked.verdicts}
    assert [v.config for v in picked.verdicts] == ["float32", "int8", "w8a16", "int4"]
    assert not verdicts["int4"].meets and "beyond 1.0" in verdicts["int4"].reason
    assert verdicts["int4"].diff == pytest.approx(-5.0)
    assert verdicts["int4"].low < -5.0 < verdicts["int4"].high
    assert verdicts["int8"].meets and "within 1.0" in verdicts["int8"].reason
    assert verdicts["int8"].mean == pytest.approx(REFERENCE.mean() - 0.2)
    assert "int8" in picked.explanation and "1.8x the reference's tokens/s" in picked.explanation


def test_reference_verdict_is_exact():
    ref = select_config(ALL, "float32").verdicts[0]
    assert (ref.diff, ref.low, ref.high, ref.meets) == (0.0, 0.0, 0.0, True)
    assert ref.mean == pytest.approx(REFERENCE.mean())


def test_larger_tolerance_admits_the_fast_candidate():
    assert select_config(ALL, "float32", tolerance=6.0).chosen == "int4"


def test_smallest_picks_by_memory():
    assert select_config(ALL, "float32", tolerance=1.0, objective="smallest").chosen == "w8a16"
    assert select_config(ALL, "float32", tolerance=6.0, objective="smallest").chosen == "int4"


def test_strict_ci_rule_rejects_a_noisy_candidate_that_passes_on_the_mean():
    candidates = [*ALL, NOISY]
    by_mean = select_config(candidates, "float32", tolerance=1.0, rule="mean")
    assert by_mean.chosen == "noisy"
    strict = select_config(candidates, "float32", tolerance=1.0, rule="ci")
    assert strict.chosen == "int8"
    noisy = next(v for v in strict.verdicts if v.config == "noisy")
    assert noisy.diff == pytest.approx(-0.8) and noisy.low < -1.0 and not noisy.meets


def test_reference_is_chosen_when_nothing_else_meets():
    picked = select_config([FLOAT32, INT4], "float32", tolerance=1.0)
    assert picked.chosen == "float32"
    assert "float32" in picked.explanation and "No other configuration" in picked.explanation
    assert select_config(ALL, "float32", tolerance=0.0).chosen == "float32"


def test_ties_go_to_the_other_objective_then_the_name():
    same = INT8.scores
    a = Candidate("b-large", same, speed=18.0, memory_gb=3.0)
    b = Candidate("c-small", same, speed=18.0, memory_gb=2.0)
    c = Candidate("a-small", same, speed=18.0, memory_gb=2.0)
    assert select_config([FLOAT32, a, b], "float32").chosen == "c-small"
    assert select_config([FLOAT32, a, b, c], "float32").chosen == "a-small"
    slow = Candidate("slow", same, speed=12.0, memory_gb=2.0)
    assert select_config([FLOAT32, slow, b], "float32", objective="smallest").chosen == "c-small"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"objective": "cheapest"}, "objective"),
        ({"rule": "median"}, "rule"),
        ({"reference": "bf16"}, "bf16"),
        ({"tolerance": -0.5}, "tolerance"),
        ({"candidates": []}, "no configurations"),
        ({"candidates": [FLOAT32, Candidate("short", INT8.scores[:-1], 20.0, 2.0)]}, "short"),
        ({"candidates": [FLOAT32, FLOAT32]}, "unique"),
    ],
)
def test_bad_inputs_are_rejected(kwargs, message):
    args = {"candidates": ALL, "reference": "float32", **kwargs}
    with pytest.raises(InputError, match=message):
        select_config(**args)
