"""How far the raters agree on which answer is better, with each other and with a local judge model.

Agreement is measured on the ``winner`` column (a variant name, ``tie`` or ``both_bad``) rather than the
side, so it does not matter which side each variant was shown on.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

import krippendorff
import numpy as np
import pandas as pd

from engine.errors import InputError

NAN = float("nan")


@dataclass(frozen=True)
class Agreement:
    """Inter-rater agreement over the items rated by two raters or more (NaN where undefined)."""

    raters: int  # raters who rated at least one shared item
    items_shared: int  # items rated by two raters or more
    percent: float  # agreeing rater pairs per shared item, averaged over the items (0-100)
    cohen_kappa: float  # only with exactly two raters, on the items both rated
    fleiss_kappa: float  # on the shared items with the most common number of ratings (Fleiss needs it constant)
    fleiss_items: int
    krippendorff_alpha: float  # nominal, missing ratings allowed


@dataclass(frozen=True)
class JudgeAgreement:
    """Agreement between the humans' majority verdict per item and a judge model's verdict."""

    items: int  # items with both a human majority and a judge verdict
    percent: float  # 0-100
    cohen_kappa: float


def _labels(df: pd.DataFrame) -> pd.DataFrame:
    missing = {"item_id", "rater", "winner"} - set(df.columns)
    if missing:
        raise InputError(f"the ratings table lacks the column(s) {', '.join(sorted(missing))}")
    labels = df[["item_id", "rater", "winner"]].astype(str)
    return labels.drop_duplicates(["item_id", "rater"], keep="last")  # a rater's last word on an item counts


def _quiet(compute) -> float:
    """A statistic, or NaN where it is undefined (every rating in one category: chance agreement is 1)."""
    with warnings.catch_warnings(), np.errstate(divide="ignore", invalid="ignore"):
        warnings.simplefilter("ignore")
        try:
            value = float(compute())
        except (ValueError, ZeroDivisionError):
            return NAN
    return value if math.isfinite(value) else NAN


def agreement(df: pd.DataFrame) -> Agreement:
    """Inter-rater agreement on the preferred variant: percent agreement, Cohen's kappa (exactly two raters,
    sklearn), Fleiss' kappa (statsmodels) and Krippendorff's alpha (nominal, the krippendorff package)."""
    from sklearn.metrics import cohen_kappa_score
    from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

    labels = _labels(df)
    per_item = labels.groupby("item_id")["rater"].transform("size")
    shared = labels[per_item >= 2]
    if shared.empty:
        return Agreement(
            raters=labels["rater"].nunique() if len(labels) else 0,
            items_shared=0,
            percent=NAN,
            cohen_kappa=NAN,
            fleiss_kappa=NAN,
            fleiss_items=0,
            krippendorff_alpha=NAN,
        )
    categories = sorted(shared["winner"].unique())
    code = {c: i for i, c in enumerate(categories)}
    wide = shared.pivot(index="item_id", columns="rater", values="winner")  # items x raters, NaN where unrated

    pairs = []
    for _, row in wide.iterrows():
        counts = np.array(list(Counter(row.dropna()).values()))
        n = counts.sum()
        pairs.append((counts * (counts - 1)).sum() / (n * (n - 1)))
    percent = 100.0 * float(np.mean(pairs))

    cohen = NAN
    if labels["rater"].nunique() == 2 and wide.shape[1] == 2:
        both = wide.dropna()
        cohen = _quiet(lambda: cohen_kappa_score(both.iloc[:, 0], both.iloc[:, 1]))

    sizes = wide.notna().sum(axis=1)
    modal = max(Counter(sizes).items(), key=lambda kv: (kv[1], kv[0]))[0]  # ties: the larger count
    rows = [[code[v] for v in row.dropna()] for (_, row), size in zip(wide.iterrows(), sizes, strict=True)]
    rows = [r for r, size in zip(rows, sizes, strict=True) if size == modal]
    table, _ = aggregate_raters(np.array(rows), n_cat=len(categories))
    fleiss = _quiet(lambda: fleiss_kappa(table, method="fleiss"))

    codes = wide.apply(lambda col: col.map(code)).to_numpy(dtype=float).T  # raters x items
    alpha = _quiet(lambda: krippendorff.alpha(reliability_data=codes, level_of_measurement="nominal"))
    return Agreement(
        raters=wide.shape[1],
        items_shared=len(wide),
        percent=percent,
        cohen_kappa=cohen,
        fleiss_kappa=fleiss,
        fleiss_items=len(rows),
        krippendorff_alpha=alpha,
    )


def judge_agreement(df: pd.DataFrame, judge: Mapping[str, str]) -> JudgeAgreement:
    """Agreement between the humans' majority verdict per item and a judge's (item id -> a variant or 'tie').

    The human verdict of an item is the winner most of its raters chose; both-bad counts as a tie, and so
    does a split vote with no single most common verdict.
    """
    from sklearn.metrics import cohen_kappa_score

    labels = _labels(df)
    sides = [c for c in ("left_variant", "right_variant") if c in df.columns]
    variants = set(df[sides].astype(str).to_numpy().ravel()) if sides else set(labels["winner"]) - {"tie", "both_bad"}
    allowed = variants | {"tie", "both_bad"}
    bad = {str(k): v for k, v in judge.items() if str(v) not in allowed}
    if bad:
        item, verdict = next(iter(bad.items()))
        raise InputError(
            f"the judge's verdict {verdict!r} on item {item!r} is not a variant of these ratings "
            f"({', '.join(sorted(variants))}) or 'tie'"
        )
    humans = {}
    for item, group in labels.groupby("item_id"):
        top = Counter("tie" if w == "both_bad" else w for w in group["winner"]).most_common()
        humans[item] = top[0][0] if len(top) == 1 or top[0][1] > top[1][1] else "tie"
    verdicts = {str(k): "tie" if str(v) == "both_bad" else str(v) for k, v in judge.items()}
    items = sorted(set(humans) & set(verdicts))
    if not items:
        return JudgeAgreement(0, NAN, NAN)
    h = [humans[i] for i in items]
    j = [verdicts[i] for i in items]
    percent = 100.0 * float(np.mean([a == b for a, b in zip(h, j, strict=True)]))
    return JudgeAgreement(len(items), percent, _quiet(lambda: cohen_kappa_score(h, j)))
