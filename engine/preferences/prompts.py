"""What a preference pair trains on: the prompt the two answers were written for, its sources, and the text of
each answer.

Evaluation and A/B rows made since preference pairs exist keep the chat messages the model answered (see
:func:`engine.evaluation.runner.score`); older rows keep only the sources' text, one passage a line, without
titles. A pair of those has no ``messages`` but the passages as its contexts, and says so (``detail["prompt"]
= "rebuilt"``): training rebuilds its prompt from the question and contexts in the prompt the adapter is
trained in (see :mod:`engine.qa.preference`). A prompt guessed here and stored as ``messages`` would be
trained on as if the model had been asked in it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from engine.qa.schema import Context

# How a pair's prompt was found: the one both answers were written for; the chosen answer's where the two were
# asked in different prompts; the one answer's whose prompt is known; not known (rebuilt when training).
EXACT, CHOSENS, ONE_KNOWN, REBUILT = "exact", "the chosen answer's", "known for one answer", "rebuilt"


def text_of(value) -> str:
    """A row's text value ('' for a missing one: None, or NaN from a table read back from MLflow)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def messages_of(row: dict | None) -> list[dict] | None:
    """The chat messages a row's answer was written for, or None for a row that does not keep them."""
    found = (row or {}).get("messages")
    if not isinstance(found, list | tuple) or not found or not all(isinstance(m, dict) for m in found):
        return None
    return [{"role": str(m.get("role", "")), "content": str(m.get("content", ""))} for m in found]


def context_lines(context: str) -> list[str]:
    """The passages of a row's or item's context (the retrieved texts, joined one a line)."""
    return [line.strip() for line in text_of(context).splitlines() if line.strip()]


def contexts_of(context: str = "", sources: Sequence[dict] = ()) -> tuple[Context, ...]:
    """A pair's contexts: the sources with their titles where known, else the context's passages untitled."""
    if sources:
        return tuple(Context(str(s.get("title") or ""), str(s["text"])) for s in sources if str(s.get("text") or ""))
    return tuple(Context("", line) for line in context_lines(context))


def answer_text(row: dict | None, shown: str) -> str:
    """The text the model wrote for an answer shown as ``shown``: its raw output where the row has it and it
    holds the shown answer (cleaning only took a prefix, a full stop or the evidence off it); else ''."""
    raw = text_of((row or {}).get("raw")).strip()
    if not raw or text_of(row.get("prediction")).strip() != shown.strip():
        return ""
    return raw if shown.strip() in raw else ""


@dataclass(frozen=True)
class Framing:
    """A pair's prompt (``messages``), how it was found (:data:`EXACT`, :data:`CHOSENS`, :data:`ONE_KNOWN`,
    :data:`REBUILT`) and its two answers' texts, with what they are (``raw``: as the model wrote them;
    ``shown``: as rated)."""

    messages: list[dict] | None  # None: not known (training rebuilds it)
    prompt: str
    chosen: str
    rejected: str
    text: str

    @property
    def problem(self) -> str:
        """Why the two texts make no pair ('empty_answer', 'same_answer'), or '' when they make one."""
        chosen, rejected = self.chosen.strip(), self.rejected.strip()
        if not chosen or not rejected:
            return "empty_answer"
        return "same_answer" if chosen == rejected else ""


def frame_pair(chosen: str, rejected: str, rows=(None, None)) -> Framing:
    """The prompt and texts a pair of two model answers (``chosen``, ``rejected``: as raters or the judge saw
    them) trains on; ``rows`` are the evaluation or A/B rows the answers came from (None where unknown).

    A pair trains the text the model writes after the prompt, and the raw output is that text: the shown
    answer is cleaned from it (the first line, without "Answer:", citations, a short answer's full stop, an
    evidence answer's quoted sentences), so training on the shown answer would teach a reply the model never
    writes in that prompt. The raw texts are used only when both answers were written for the same known
    prompt and each holds its shown answer: then the two differ in what was preferred, not in the format their
    prompts asked for (an adapter's evidence style against the base model's short answers). Otherwise both
    sides are the shown answers, as rated, and the prompt is the chosen answer's (or rebuilt).
    """
    first, second = messages_of(rows[0]), messages_of(rows[1])
    if first is not None and first == second:
        raw_chosen, raw_rejected = answer_text(rows[0], chosen), answer_text(rows[1], rejected)
        if raw_chosen and raw_rejected and raw_chosen != raw_rejected:
            return Framing(first, EXACT, raw_chosen, raw_rejected, "raw")
        return Framing(first, EXACT, chosen, rejected, "shown")
    if first is not None and second is not None:
        return Framing(first, CHOSENS, chosen, rejected, "shown")
    if known := first or second:
        return Framing(known, ONE_KNOWN, chosen, rejected, "shown")
    return Framing(None, REBUILT, chosen, rejected, "shown")
