"""What building preference pairs from one origin gives: the pairs, how many items gave none and why, the items
to review (both answers bad), and the source to name in the version's lineage."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from engine.qa.schema import QARecord

# Why an item gave no pair (the keys of Harvest.skipped, counted in the version's manifest).
SKIP_REASONS = {
    "tie": "the raters' majority, or the judge, found the answers equally good",
    "both_bad": "the raters' majority found both answers bad (the item is on the review list)",
    "split": "the raters had no majority",
    "unrated": "no one rated the item",
    "same_answer": "the two answers are the same text",
    "empty_answer": "one of the answers is empty (and the model's raw output is not known)",
    "missing": "the judged item is not in the experiment's rows",
    "duplicate": "a pair with the same question, answers and sources came from another origin or item",
}


@dataclass(frozen=True)
class ReviewItem:
    """An item the raters' majority found both answers bad for: a person should write its right answer (a
    correction in Human Eval turns it into a pair)."""

    session_id: str
    item_id: str
    question: str
    answers: dict[str, str]  # variant -> answer
    votes: dict[str, str]  # rater -> verdict (a variant, tie or both_bad)
    context: str = ""
    reference: str = ""

    @property
    def raters(self) -> list[str]:
        return list(self.votes)


@dataclass
class Harvest:
    """The pairs one origin gave (a session, an experiment's judgements, the corrections)."""

    pairs: list[QARecord] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)
    review: list[ReviewItem] = field(default_factory=list)
    sources: list[dict] = field(default_factory=list)  # the lineage entries of the version's manifest


def merge(harvests: Iterable[Harvest]) -> Harvest:
    """One harvest of many, in order; a pair whose id an earlier one has (same question, answers and sources)
    is kept once and counted as a ``duplicate``."""
    merged = Harvest()
    seen: set[str] = set()
    for h in harvests:
        for pair in h.pairs:
            if pair.id in seen:
                merged.skipped["duplicate"] += 1
                continue
            seen.add(pair.id)
            merged.pairs.append(pair)
        merged.skipped.update(h.skipped)
        merged.review.extend(h.review)
        merged.sources.extend(h.sources)
    return merged
