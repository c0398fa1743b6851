"""Aggregating blind ratings: Bradley-Terry and Elo on a known tournament, Wilson win rates, textbook kappa
and alpha values, judge agreement, and the MLflow run of a session."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from engine.errors import InputError
from engine.ratings.aggregate import (
    agreement,
    bradley_terry,
    elo,
    judge_agreement,
    leaderboard,
    mean_scores,
    win_rates,
)

TRUE = {"a": 1.2, "b": 0.4, "c": -0.3, "d": -1.3}  # log-strengths, summing to 0


def tournament(games: int = 2000, seed: int = 7) -> pd.DataFrame:
    """Games between random pairs, each won with the Bradley-Terry probability of the true strengths."""
    rng = np.random.default_rng(seed)
    names = list(TRUE)
    rows = []
    for n in range(games):
        i, j = rng.choice(len(names), 2, replace=False)
        p = 1 / (1 + math.exp(TRUE[names[j]] - TRUE[names[i]]))
        winner = names[i] if rng.random() < p else names[j]
        rows.append({"item_id": f"g{n}", "rater": "sim", "left_variant": names[i], "right_variant": names[j],
                     "winner": winner})  # fmt: skip
    return pd.DataFrame(rows)


def pairwise(winners: list[str], left: str = "base", right: str = "tuned", rater: str = "ann") -> pd.DataFrame:
    return pd.DataFrame(
        {"item_id": [f"q{k}" for k in range(len(winners))], "rater": rater, "left_variant": left,
         "right_variant": right, "winner": winners}
    )  # fmt: skip


def test_bradley_terry_and_elo_recover_a_known_tournament():
    games = tournament()
    bt = bradley_terry(games, resamples=200, seed=0)
    assert list(bt["variant"]) == ["a", "b", "c", "d"]
    assert bt["bt"].sum() == pytest.approx(0, abs=1e-6)
    strength = dict(zip(bt["variant"], bt["bt"], strict=True))
    for x, y in itertools.combinations(TRUE, 2):
        assert strength[x] - strength[y] == pytest.approx(TRUE[x] - TRUE[y], abs=0.2)
    for row in bt.itertuples():
        assert row.bt_low < TRUE[row.variant] < row.bt_high
    ratings = elo(games, resamples=200, seed=0)
    assert list(ratings["variant"]) == ["a", "b", "c", "d"]
    assert ratings["elo"].mean() == pytest.approx(1000)  # Elo only moves points between players
    assert (ratings["elo_low"] < ratings["elo"]).all() and (ratings["elo"] < ratings["elo_high"]).all()
    # the same seed gives the same intervals
    pd.testing.assert_frame_equal(ratings, elo(games, resamples=200, seed=0))


def test_bradley_terry_stays_finite_when_one_variant_wins_everything():
    bt = bradley_terry(pairwise(["tuned"] * 12), resamples=20)
    assert list(bt["variant"]) == ["tuned", "base"]
    assert np.isfinite(bt[["bt", "bt_low", "bt_high"]].to_numpy()).all() and bt["bt"].iloc[0] > 1
    # ties are half a win each way: equal records give equal strengths
    even = bradley_terry(pairwise(["tie", "both_bad", "base", "tuned"]), resamples=0)
    assert even["bt"].abs().max() < 1e-6


def test_win_rates_with_wilson_intervals():
    from statsmodels.stats.proportion import proportion_confint

    df = pairwise(["tuned"] * 30 + ["tie"] * 10 + ["both_bad"] * 4 + ["base"] * 16)
    table = win_rates(df).set_index("variant")
    tuned = table.loc["tuned"]
    counts = tuned[["comparisons", "wins", "ties", "both_bad", "losses"]].tolist()
    assert counts == [60, 30, 10, 4, 16]
    assert tuned["win_rate"] == pytest.approx(37 / 60)  # ties and both-bad count half
    assert (tuned["win_rate_low"], tuned["win_rate_high"]) == pytest.approx(proportion_confint(37, 60, method="wilson"))
    base = table.loc["base"]
    assert base["win_rate"] == pytest.approx(23 / 60)
    assert (base["win_rate_low"], base["win_rate_high"]) == pytest.approx(proportion_confint(23, 60, method="wilson"))
    assert list(win_rates(df)["variant"]) == ["tuned", "base"]


def test_leaderboard_and_scores_join_per_variant():
    df = pairwise(["tuned", "tuned", "base", "tie"])
    df["correctness_left"] = [5, 4, None, 3]
    df["correctness_right"] = [2, 2, 2, None]
    for col in ("groundedness_left", "groundedness_right", "fluency_left", "fluency_right"):
        df[col] = None
    board = leaderboard(df, resamples=30)
    assert list(board["variant"]) == ["tuned", "base"] and list(board["rank"]) == [1, 2]
    for col in ("win_rate", "bt", "elo"):
        assert {col, f"{col}_low", f"{col}_high"} <= set(board.columns)
    scores = mean_scores(df).set_index("variant")
    assert scores.loc["base", "correctness"] == pytest.approx(4) and scores.loc["tuned", "correctness_n"] == 3
    with pytest.raises(InputError, match="no ratings"):
        leaderboard(df.iloc[:0])
    with pytest.raises(InputError, match="neither"):
        win_rates(pairwise(["someone"]))


def test_cohen_kappa_on_the_textbook_example():
    # Wikipedia, "Cohen's kappa": 50 proposals, both readers yes 20, both no 15, 5 and 10 disagree -> 0.4.
    pairs = [("yes", "yes")] * 20 + [("no", "no")] * 15 + [("yes", "no")] * 5 + [("no", "yes")] * 10
    rows = [{"item_id": n, "rater": r, "winner": w} for n, p in enumerate(pairs) for r, w in zip("AB", p, strict=True)]
    result = agreement(pd.DataFrame(rows))
    assert result.cohen_kappa == pytest.approx(0.4)
    assert result.percent == pytest.approx(70.0)
    assert (result.raters, result.items_shared) == (2, 50)


def test_fleiss_kappa_on_the_textbook_example():
    # Wikipedia, "Fleiss' kappa": 10 subjects, 14 raters, 5 categories -> kappa = 0.210.
    table = [[0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
             [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7]]  # fmt: skip
    rows = []
    for subject, counts in enumerate(table):
        labels = [f"cat{c}" for c, k in enumerate(counts) for _ in range(k)]
        rows += [{"item_id": f"s{subject}", "rater": f"r{j}", "winner": w} for j, w in enumerate(labels)]
    result = agreement(pd.DataFrame(rows))
    assert result.fleiss_kappa == pytest.approx(0.210, abs=5e-4)
    assert (result.items_shared, result.fleiss_items, result.raters) == (10, 10, 14)
    assert math.isnan(result.cohen_kappa)  # more than two raters


def test_krippendorff_alpha_on_the_published_example():
    # Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: 4 observers, 12 units,
    # values 1-5 with missing data -> nominal alpha = 0.743.
    n = None
    data = [[1, 2, 3, 3, 2, 1, 4, 1, 2, n, n, n], [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, n, 3],
            [n, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, n], [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, n]]  # fmt: skip
    rows = [
        {"item_id": f"u{u}", "rater": f"o{o}", "winner": str(v)}
        for o, values in enumerate(data) for u, v in enumerate(values) if v is not None
    ]  # fmt: skip
    result = agreement(pd.DataFrame(rows))
    assert result.krippendorff_alpha == pytest.approx(0.743, abs=5e-4)
    assert result.items_shared == 11  # unit 12 was coded once: nothing to agree on
    assert result.fleiss_items == 8  # the units all four coded: Fleiss needs the same number per unit


def test_agreement_is_undefined_without_shared_items_or_variety():
    alone = agreement(pairwise(["base", "tuned"]))
    assert alone.items_shared == 0 and math.isnan(alone.percent) and math.isnan(alone.krippendorff_alpha)
    same = agreement(pd.concat([pairwise(["base"] * 3, rater="ann"), pairwise(["base"] * 3, rater="bob")]))
    assert same.percent == 100.0 and math.isnan(same.cohen_kappa) and math.isnan(same.fleiss_kappa)


def test_judge_agreement_with_the_human_majority():
    from sklearn.metrics import cohen_kappa_score

    votes = {  # three raters per item
        **{f"q{k}": ["base", "base", "tuned"] for k in range(6)},
        "q6": ["tuned"] * 3, "q7": ["tuned", "tuned", "tie"],
        "q8": ["base", "tuned", "tie"],  # split: a tie
        "q9": ["both_bad", "both_bad", "base"],  # both bad counts as a tie
    }  # fmt: skip
    rows = [
        {"item_id": item, "rater": f"r{j}", "left_variant": "base", "right_variant": "tuned", "winner": w}
        for item, ws in votes.items() for j, w in enumerate(ws)
    ]  # fmt: skip
    judge = {**{f"q{k}": "base" for k in range(5)}, "q5": "tuned", "q6": "tuned", "q7": "tuned", "q8": "tie",
             "q9": "base", "extra": "base"}  # fmt: skip
    result = judge_agreement(pd.DataFrame(rows), judge)
    humans = ["base"] * 6 + ["tuned", "tuned", "tie", "tie"]
    judged = [judge[f"q{k}"] for k in range(10)]
    assert result.items == 10
    assert result.percent == pytest.approx(80.0)
    assert result.cohen_kappa == pytest.approx(cohen_kappa_score(humans, judged))
    with pytest.raises(InputError, match="not a variant"):
        judge_agreement(pd.DataFrame(rows), {"q0": "gpt"})


def test_log_session_records_a_run(tmp_path):
    from engine.ratings import Rating, RatingStore, SessionItem
    from engine.ratings.tracking import log_session
    from engine.settings import Settings
    from engine.tracking import HUMAN_EVAL, Tracker

    store = RatingStore(tmp_path / "ratings.db")
    items = [SessionItem(f"q{k}", f"q{k}?", answers={"base": "b", "tuned/v2": "t"}) for k in range(8)]
    sid = store.create_session("pilot", ("base", "tuned/v2"), items, source={"experiment": "e1"}, seed=3)
    tracker = Tracker(Settings(data_dir=tmp_path, shared_data_dir=tmp_path))
    with pytest.raises(InputError, match="no ratings"):
        log_session(tracker, store, sid)
    for item in store.items(sid):
        tuned_side = "left" if item.left_variant == "tuned/v2" else "right"
        for rater in ("ann", "bob"):
            preference = tuned_side if item.position < 6 or rater == "ann" else "tie"
            store.submit(Rating(sid, item.item_id, rater, preference, correctness_left=4))
    run_id = log_session(tracker, store, sid, judge={"q0": "tuned/v2", "q1": "base"}, resamples=50)

    [run] = tracker.recent(HUMAN_EVAL)
    assert run.run_id == run_id and run.status == "FINISHED" and run.params["session_id"] == sid
    metrics = run.metrics
    assert metrics["tuned/v2.win_rate"] == pytest.approx(15 / 16)
    assert metrics["tuned/v2.bt"] > 0 > metrics["base.bt"]
    assert metrics["tuned/v2.elo"] > 1000 > metrics["base.elo"]
    assert metrics["agreement.percent"] == pytest.approx(75.0) and metrics["agreement.items_shared"] == 8
    assert metrics["judge.percent"] == pytest.approx(50.0) and metrics["ratings"] == 16
    board = tracker.load_table(run_id, "leaderboard.json")
    assert list(board["variant"]) == ["tuned/v2", "base"]
