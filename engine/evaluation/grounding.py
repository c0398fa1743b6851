"""Groundedness: does an answer say only what its sources say? The local judge answers yes or no.

A question without a gold answer (a QA set imported as questions only) cannot be scored by F1. For
those, the evaluation asks the judge model whether the sources the answer was given support it, and
reports the share judged supported as its own metric, ``groundedness`` (0-100), never mixed with F1.

The model call (:func:`judge_grounding`) is kept apart from the prompt (:func:`grounding_messages`)
and the reading of a reply (:func:`read_support`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from engine.errors import InputError
from engine.evaluation.judge import generate_in_slices
from engine.models.generation import SamplingSpec

SYSTEM = "You are a strict grader. You check whether an answer is supported by the sources it was given."
TEMPLATE = (
    "Sources:\n{sources}\n\nQuestion: {question}\nAnswer: {answer}\n\n"
    "Do the sources say what the answer says? Reply yes or no."
)
_YES = {"yes", "supported", "true", "correct", "y"}
_NO = {"no", "not", "unsupported", "false", "incorrect", "n", "nothing", "neither"}
_WORD = re.compile(r"[a-z]+")


@dataclass(frozen=True)
class GroundingSpec:
    """How the judge is asked: its model as the Models page names it (empty: the bundled model), the
    sources' length in the prompt and the reply's length."""

    model: str = ""
    max_source_chars: int = 1500
    max_new_tokens: int = 4

    def __post_init__(self) -> None:
        if self.max_source_chars < 100 or self.max_new_tokens < 1:
            raise InputError("The groundedness judge needs at least 100 characters of sources and 1 new token.")


def grounding_messages(question: str, answer: str, sources: str, spec: GroundingSpec = GroundingSpec()) -> list[dict]:
    """The chat asking whether ``sources`` support ``answer`` to ``question``."""
    text = sources.strip()[: spec.max_source_chars] or "(no sources)"
    user = TEMPLATE.format(sources=text, question=question.strip(), answer=answer.strip())
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def read_support(text: str) -> float | None:
    """1.0 for a reply that says yes (supported), 0.0 for no (not supported), None when it says neither.
    The first yes- or no-word of the reply's first line with words decides ("Not supported." is no)."""
    line = next((s for s in (text or "").lower().splitlines() if _WORD.search(s)), "")
    for word in _WORD.findall(line):
        if word in _NO:
            return 0.0
        if word in _YES:
            return 1.0
    return None


def judge_grounding(
    generator,
    items: Sequence[tuple[str, str, str]],
    spec: GroundingSpec = GroundingSpec(),
    batch_size: int = 8,
    on_progress: Callable[[int, int], None] | None = None,
) -> tuple[list[float | None], list[str]]:
    """For each ``(question, answer, sources)``: 1.0 supported, 0.0 not, None unreadable; and the replies.
    An empty answer supports nothing: 0.0 without asking."""
    asked = [i for i, (_, answer, _) in enumerate(items) if answer.strip()]
    prompts = [grounding_messages(*items[i], spec=spec) for i in asked]
    sampling = SamplingSpec(max_new_tokens=spec.max_new_tokens, temperature=0.0)
    replies = generate_in_slices(generator, prompts, sampling, batch_size, on_progress)
    scores: list[float | None] = [0.0] * len(items)
    texts = [""] * len(items)
    for i, reply in zip(asked, replies, strict=True):
        scores[i], texts[i] = read_support(reply), reply
    return scores, texts
