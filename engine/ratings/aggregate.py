"""Who won a blind rating session: win rates with Wilson intervals, Bradley-Terry strengths and Elo ratings
with bootstrap intervals, mean scores, and one leaderboard joining them.

Every function takes the ratings table of :meth:`RatingStore.ratings` (one row per rating, with the columns
``left_variant``, ``right_variant`` and ``winner``: a variant name, ``tie`` or ``both_bad``), or any table
with those columns, so several sessions (or a synthetic tournament) can be pooled. "Both bad" counts as a
tie wherever a winner is needed: neither answer was preferred.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.errors import InputError
from engine.ratings.agreement import Agreement, JudgeAgreement, agreement, judge_agreement  # noqa: F401
from engine.ratings.sessions import SCORES

NO_WINNER = ("tie", "both_bad")
BT_L2 = 0.01  # the weak prior used only when the wins leave the strengths unbounded (see bradley_terry)


def comparisons(df: pd.DataFrame) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """The variants (sorted) and, per rating, the indices of the left and right variant and the left one's
    score: 1 for a win, 0.5 for a tie or both bad, 0 for a loss."""
    missing = {"left_variant", "right_variant", "winner"} - set(df.columns)
    if missing:
        raise InputError(f"the ratings table lacks the column(s) {', '.join(sorted(missing))}")
    if df.empty:
        raise InputError("there are no ratings yet")
    left, right, winner = (df[c].astype(str).to_numpy() for c in ("left_variant", "right_variant", "winner"))
    if (left == right).any():
        raise InputError("a rating compares a variant with itself")
    unknown = ~((winner == left) | (winner == right) | np.isin(winner, NO_WINNER))
    if unknown.any():
        raise InputError(f"winner {winner[unknown][0]!r} is neither of the two variants compared, nor a tie")
    variants = sorted(set(left) | set(right))
    index = {v: i for i, v in enumerate(variants)}
    li = np.array([index[v] for v in left])
    ri = np.array([index[v] for v in right])
    score = np.where(winner == left, 1.0, np.where(winner == right, 0.0, 0.5))
    return variants, li, ri, score


def win_rates(df: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
    """Per variant: comparisons, wins, ties, both-bad, losses and the win rate (ties and both-bad count half)
    with its Wilson interval (statsmodels), best first."""
    from statsmodels.stats.proportion import proportion_confint

    variants, li, ri, score = comparisons(df)
    winner = df["winner"].astype(str).to_numpy()
    rows = []
    for i, name in enumerate(variants):
        mine = (li == i) | (ri == i)
        mine_score = np.where(li == i, score, 1 - score)[mine]
        n = int(mine.sum())
        points = float(mine_score.sum())
        low, high = proportion_confint(points, n, alpha=alpha, method="wilson")
        rows.append(
            {
                "variant": name,
                "comparisons": n,
                "wins": int((mine_score == 1).sum()),
                "ties": int((winner[mine] == "tie").sum()),
                "both_bad": int((winner[mine] == "both_bad").sum()),
                "losses": int((mine_score == 0).sum()),
                "win_rate": points / n,
                "win_rate_low": float(low),
                "win_rate_high": float(high),
            }
        )
    return pd.DataFrame(rows).sort_values("win_rate", ascending=False, ignore_index=True)


def _win_matrix(n: int, li: np.ndarray, ri: np.ndarray, score: np.ndarray) -> np.ndarray:
    """``wins[i, j]``: the points of variant i against j (a tie is half a point each way)."""
    wins = np.bincount(li * n + ri, weights=score, minlength=n * n)
    wins += np.bincount(ri * n + li, weights=1 - score, minlength=n * n)
    return wins.reshape(n, n)


def _fit_bt(wins: np.ndarray) -> np.ndarray:
    """Maximum-likelihood log-strengths (summing to 0) of the win matrix."""
    from scipy.optimize import minimize
    from scipy.sparse.csgraph import connected_components
    from scipy.special import expit

    n = len(wins)
    # The maximum exists only if every variant can be reached from every other along "beat" edges; if one
    # variant won (or lost) everything it lies at infinity, and a weak L2 prior keeps it finite instead.
    strong, _ = connected_components(wins > 0, directed=True, connection="strong")
    l2 = 0.0 if strong == 1 else BT_L2

    def loss(x: np.ndarray) -> tuple[float, np.ndarray]:
        theta = x - x.mean()
        diff = theta[:, None] - theta[None, :]
        value = float(np.sum(wins * np.logaddexp(0.0, -diff)) + l2 * theta @ theta)
        g = -wins * expit(-diff)  # d/d(diff) of wins * -log(sigmoid(diff))
        grad = g.sum(axis=1) - g.sum(axis=0) + 2 * l2 * theta
        return value, grad - grad.mean()

    def hessian(x: np.ndarray) -> np.ndarray:
        theta = x - x.mean()
        p = expit(theta[:, None] - theta[None, :])
        c = (wins + wins.T) * p * (1 - p)  # games between i and j times the variance of one game
        h = np.diag(c.sum(axis=1)) - c + 2 * l2 * np.eye(n)
        centre = np.eye(n) - 1.0 / n
        return centre @ h @ centre

    # Newton steps with the exact Hessian: a few iterations, ~1 ms for a handful of variants (the bootstrap
    # refits hundreds of times).
    result = minimize(loss, np.zeros(n), jac=True, hess=hessian, method="Newton-CG")
    return result.x - result.x.mean()


def bradley_terry(df: pd.DataFrame, resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Bradley-Terry log-strengths ``bt`` (summing to 0; P(i beats j) = sigmoid(bt_i - bt_j)), strongest first,
    with percentile 95% intervals over ``resamples`` bootstrap resamples of the ratings.

    Fitted by maximum likelihood (scipy.optimize.minimize on the negative log-likelihood), ties and both-bad
    as half a win each way. Where one variant won or lost every comparison the maximum lies at infinity; only
    then is a tiny L2 term (``BT_L2`` times the squared log-strengths, worth about a hundredth of a
    comparison) added so the strengths stay finite (in a resample too).
    """
    variants, li, ri, score = comparisons(df)
    n, m = len(variants), len(li)
    point = _fit_bt(_win_matrix(n, li, ri, score))
    rng = np.random.default_rng(seed)
    boot = np.empty((resamples, n))
    for r in range(resamples):
        idx = rng.integers(0, m, m)
        boot[r] = _fit_bt(_win_matrix(n, li[idx], ri[idx], score[idx]))
    low, high = np.percentile(boot, [2.5, 97.5], axis=0) if resamples else (np.full(n, np.nan),) * 2
    counts = np.bincount(li, minlength=n) + np.bincount(ri, minlength=n)
    table = pd.DataFrame({"variant": variants, "comparisons": counts, "bt": point, "bt_low": low, "bt_high": high})
    return table.sort_values("bt", ascending=False, ignore_index=True)


def _elo_runs(n: int, li, ri, score, order: np.ndarray, k: float, base: float) -> np.ndarray:
    """Final Elo ratings of each row of ``order`` (the rating indices in the order they are played)."""
    ratings = np.full((len(order), n), float(base))
    rows = np.arange(len(order))
    for t in range(order.shape[1]):  # one step of every run at once: the games of a run are sequential
        c = order[:, t]
        a, b = li[c], ri[c]
        expected = 1.0 / (1.0 + 10.0 ** ((ratings[rows, b] - ratings[rows, a]) / 400.0))
        delta = k * (score[c] - expected)
        ratings[rows, a] += delta
        ratings[rows, b] -= delta
    return ratings


def elo(df: pd.DataFrame, k: float = 32, base: float = 1000, resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Elo ratings (every variant starts at ``base``, step ``k``), best first: the mean over ``resamples``
    bootstrap resamples of the ratings, each played in a random order, with 95% percentile intervals.

    Elo updates one game at a time, so a single pass depends on the order the ratings happened to come in
    (the last games weigh most); averaging over shuffled resamples removes that arbitrary order.
    """
    variants, li, ri, score = comparisons(df)
    n, m = len(variants), len(li)
    if resamples < 1:
        raise InputError("Elo needs at least one resample")
    order = np.random.default_rng(seed).integers(0, m, (resamples, m))
    runs = _elo_runs(n, li, ri, score, order, k, base)
    low, high = np.percentile(runs, [2.5, 97.5], axis=0)
    table = pd.DataFrame({"variant": variants, "elo": runs.mean(axis=0), "elo_low": low, "elo_high": high})
    return table.sort_values("elo", ascending=False, ignore_index=True)


def mean_scores(df: pd.DataFrame) -> pd.DataFrame:
    """Per variant the mean 1-5 correctness, groundedness and fluency of its answers (where scored)."""
    variants, *_ = comparisons(df)
    rows = []
    for name in variants:
        row: dict = {"variant": name}
        for s in SCORES:
            values = pd.concat(
                [df.loc[df["left_variant"] == name, f"{s}_left"], df.loc[df["right_variant"] == name, f"{s}_right"]]
            ).dropna()
            row[s] = float(values.mean()) if len(values) else float("nan")
            row[f"{s}_n"] = len(values)
        rows.append(row)
    return pd.DataFrame(rows)


def leaderboard(
    df: pd.DataFrame, resamples: int = 1000, seed: int = 0, k: float = 32, base: float = 1000
) -> pd.DataFrame:
    """One row per variant, strongest first: rank, win rate, Bradley-Terry strength and Elo, each with its
    95% interval."""
    wins = win_rates(df)
    bt = bradley_terry(df, resamples=resamples, seed=seed).drop(columns="comparisons")
    ratings = elo(df, k=k, base=base, resamples=max(resamples, 1), seed=seed)
    table = wins.merge(bt, on="variant").merge(ratings, on="variant")
    table = table.sort_values(["bt", "win_rate"], ascending=False, ignore_index=True)
    table.insert(0, "rank", range(1, len(table) + 1))
    return table
