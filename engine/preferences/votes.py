"""Several raters on one item: the verdict of their majority, and how far they agreed."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

SPLIT = "split"  # no verdict has more than half of the votes


@dataclass(frozen=True)
class Verdict:
    """The raters' verdict on one item: a variant, ``tie``, ``both_bad`` or :data:`SPLIT`; each rater's vote
    (a variant, ``tie`` or ``both_bad``); and the share of the votes the most voted verdict got."""

    outcome: str
    votes: dict[str, str]
    agreement: float

    def to_detail(self) -> dict:
        return {"raters": sorted(self.votes), "votes": dict(sorted(self.votes.items())), "agreement": self.agreement}


def majority(votes: Mapping[str, str]) -> Verdict:
    """The verdict more than half of the raters gave (one rater: theirs), else :data:`SPLIT`. Each vote counts
    alike: two raters for A and one for B is A's, with agreement 2/3; one for A and one for B is split."""
    if not votes:
        raise ValueError("a verdict needs at least one vote")
    counts = Counter(votes.values()).most_common()
    top, n = counts[0]
    outcome = top if 2 * n > len(votes) else SPLIT
    return Verdict(outcome, dict(votes), round(n / len(votes), 4))


def session_verdicts(ratings) -> dict[str, Verdict]:
    """Item id -> the raters' verdict, from a session's ratings (the store's :meth:`ratings` frame, whose
    ``winner`` is the variant a rater preferred, or ``tie`` / ``both_bad``)."""
    votes: dict[str, dict[str, str]] = {}
    for row in ratings.itertuples():
        votes.setdefault(str(row.item_id), {})[str(row.rater)] = str(row.winner)
    return {item: majority(found) for item, found in votes.items()}
