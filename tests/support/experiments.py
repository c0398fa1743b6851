"""A saved A/B experiment of two variants, ``base`` and ``tuned``, written as the runner writes one: per item the
question, gold, the two passages shown, and each variant's shown answer and raw output (and, unless asked for
rows made before pairs existed, the chat messages both were asked in)."""

from __future__ import annotations

from engine.ab.results import ExperimentResult, VariantResult, save_result

EXPERIMENT = "20261201-120000-prefs"


def messages(k: int) -> list[dict]:
    return [
        {"role": "system", "content": "Answer the question from the sources with a short answer."},
        {"role": "user", "content": f"Sources:\n[1] One: passage one {k}\n[2] Two: passage two {k}\n\nQuestion: "
                                    f"Question {k}?"},
    ]  # fmt: skip


def row(k: int, variant: str, with_prompts: bool) -> dict:
    shown = f"{variant} answer {k}"
    found = {
        "item_id": f"q{k:03d}",
        "question": f"Question {k}?",
        "gold": f"gold {k}",
        "prediction": shown,
        "em": 0.0,
        "f1": 0.0,
        "latency_s": 0.1,
        "prompt_tokens": 50,
        "new_tokens": 4,
        "context": f"passage one {k}\npassage two {k}",
    }
    if with_prompts:  # the base model writes "Answer: ... ." around its answer, the tuned one the answer alone
        found |= {"raw": f"Answer: {shown}." if variant == "base" else shown, "messages": messages(k)}
    return found


def save_experiment(settings, n: int, with_prompts: bool = True, experiment_id: str = EXPERIMENT) -> str:
    """Save the experiment of ``n`` items; returns its id."""
    variants = {
        v: VariantResult(v, {"name": v}, [row(k, v, with_prompts) for k in range(n)]) for v in ("base", "tuned")
    }
    save_result(ExperimentResult(experiment_id, {"name": "prefs"}, variants), settings)
    return experiment_id
