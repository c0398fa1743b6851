"""The raters' majority on one item and their agreement."""

from __future__ import annotations

import pytest

from engine.preferences.votes import SPLIT, majority


@pytest.mark.parametrize(
    ("votes", "outcome", "agreement"),
    [
        ({"ann": "base"}, "base", 1.0),  # one rater: theirs
        ({"ann": "base", "bob": "base", "cy": "base"}, "base", 1.0),
        ({"ann": "tuned", "bob": "base", "cy": "tuned"}, "tuned", 0.6667),
        ({"ann": "tuned", "bob": "base"}, SPLIT, 0.5),  # half is no majority
        ({"ann": "tuned", "bob": "base", "cy": "tie"}, SPLIT, 0.3333),
        ({"ann": "tie", "bob": "tie", "cy": "base"}, "tie", 0.6667),
        ({"ann": "both_bad", "bob": "both_bad", "cy": "base", "dan": "tuned"}, SPLIT, 0.5),
        ({"ann": "both_bad", "bob": "both_bad", "cy": "base"}, "both_bad", 0.6667),
    ],
)
def test_more_than_half_of_the_votes_decide(votes, outcome, agreement):
    verdict = majority(votes)
    assert (verdict.outcome, verdict.agreement) == (outcome, agreement)
    assert verdict.to_detail()["raters"] == sorted(votes)


def test_no_vote_is_no_verdict():
    with pytest.raises(ValueError):
        majority({})
