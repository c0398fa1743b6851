"""Automatic downgrade: load at the asked precision when it fits, else step down.

The ladder is float32 -> bfloat16 -> int8 -> nf4 (int8 and nf4 through bitsandbytes, so not
on Apple Silicon), then the next smaller catalog model, from its asked precision again. A
step is taken when the pre-flight estimate does not fit the budget: the free memory, less a
margin that grows with pressure (20% when pressure is low or moderate, half when it is high;
at critical pressure nothing new is loaded). Every step says why; the plan is what the UI
shows and what is logged to MLflow.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from engine.errors import InputError
from engine.machine import Footprint, MemoryReading

LADDER = ("float32", "bfloat16", "int8", "nf4")
BUDGET_SHARE = {"low": 0.8, "moderate": 0.8, "high": 0.5, "critical": 0.0}
NO_BITSANDBYTES = ("mps",)


@dataclass(frozen=True)
class LoadPlan:
    """What to load, and the reasons for each step away from what was asked."""

    model: str
    precision: str
    footprint: Footprint
    budget_gb: float
    pressure: str
    steps: tuple[str, ...] = field(default=())
    asked_precision: str = ""  # the precision tried first (the asked one, or where the device's ladder starts)

    @property
    def downgraded(self) -> bool:
        return bool(self.steps)

    def downgrade_note(self, asked: str) -> str:
        """Why the model asked for (``asked``, its name) was not loaded as asked: one sentence per step."""
        return f"Downgraded from {asked} at {self.asked_precision}: " + "; ".join(self.steps)


def budget_gb(reading: MemoryReading) -> float:
    return reading.free_gb * BUDGET_SHARE[reading.pressure]


def precisions_from(precision: str, device: str) -> list[str]:
    """The asked precision and the ladder below it that ``device`` can run."""
    # float16 is bfloat16's size: it steps on to int8 as bfloat16 does.
    start = LADDER.index(precision) if precision in LADDER else LADDER.index("bfloat16") + 1
    below = [p for p in LADDER[start:] if not (device in NO_BITSANDBYTES and p in ("int8", "nf4"))]
    return ([precision] if precision not in LADDER else []) + below


def plan_load(
    models: Sequence[str],
    precision: str,
    reading: MemoryReading,
    estimate: Callable[[str, str], Footprint],
    device: str = "cpu",
) -> LoadPlan:
    """The first (model, precision) that fits: ``models`` is the asked model, then smaller ones
    in the order to try; ``estimate(model, precision)`` is the pre-flight footprint."""
    budget = budget_gb(reading)
    if reading.pressure == "critical":
        raise InputError(
            f"Memory pressure is critical ({reading.free_gb:.1f} GB free of {reading.limit_gb:.1f} GB): "
            "nothing new is loaded. Unload a model or close other programs first."
        )
    steps: list[str] = []
    tried: list[str] = []
    first = precisions_from(precision, device)[0]
    for model in models:
        for p in precisions_from(precision, device):
            need = estimate(model, p)
            if need.total_gb <= budget:
                return LoadPlan(
                    model=model,
                    precision=p,
                    footprint=need,
                    budget_gb=budget,
                    pressure=reading.pressure,
                    steps=tuple(steps),
                    asked_precision=first,
                )
            tried.append(f"{model} {p} {need.total_gb:.2f} GB")
            steps.append(
                f"{model} at {p} needs about {need.total_gb:.2f} GB, more than the {budget:.2f} GB budget "
                f"({reading.free_gb:.2f} GB free, pressure {reading.pressure})"
            )
    raise InputError(
        f"No model fits the {budget:.2f} GB memory budget (pressure {reading.pressure}); tried: {'; '.join(tried)}."
    )
