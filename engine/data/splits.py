"""Leak-free train/validation/test splits, and a check that finds leaks between splits.

A split keeps each source document's records together (records sharing any document id are one
group, transitively) and keeps topic shares close across splits, with scikit-learn's
``StratifiedGroupKFold``: the folds are dealt out to the splits by their fractions.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from engine.errors import InputError
from engine.evaluation.metrics import normalize_answer
from engine.knobs import knob
from engine.qa.schema import QARecord

Embed = Callable[[list[str]], list[list[float]]]

SPLITS = ("train", "validation", "test")
MAX_FOLDS = 100  # finer fractions than 1% are not worth the fold search (its cost grows with folds x groups)
CHUNK = 2048  # rows of the similarity matrix computed at once: bounds memory to CHUNK x (split size) floats


@dataclass(frozen=True)
class SplitSpec:
    train: float = 0.8
    validation: float = 0.1
    test: float = 0.1
    seed: int = knob(0, "the seed of the split", min=0, max=10_000)

    def __post_init__(self) -> None:
        fractions = self.fractions()
        if any(not f > 0 for f in fractions.values()):
            raise InputError(f"Each split's fraction must be positive; got {fractions}.")
        if abs(sum(fractions.values()) - 1.0) > 1e-6:
            raise InputError(f"The split fractions must sum to 1; they sum to {sum(fractions.values()):g}.")

    def fractions(self) -> dict[str, float]:
        return {"train": self.train, "validation": self.validation, "test": self.test}


def split_records(records: Sequence[QARecord], spec: SplitSpec = SplitSpec()) -> dict[str, list[QARecord]]:
    """Records split into train/validation/test (each with metadata ``split``), grouped by document, by topic.

    The result depends only on the records' content and the seed, not on their order.
    """
    from sklearn.model_selection import StratifiedGroupKFold

    ordered = sorted(records, key=lambda r: r.id)
    groups = document_groups(ordered)
    n_groups = len(set(groups.tolist()))
    if n_groups < len(SPLITS):
        raise InputError(
            f"These {len(ordered)} records come from {n_groups} separate document group(s); three non-empty "
            "splits need at least 3. Add records from other documents."
        )
    allocation = fold_allocation(spec.fractions(), min(MAX_FOLDS, n_groups))
    n_folds = sum(allocation.values())
    strata = topic_strata(ordered, n_folds)
    folder = StratifiedGroupKFold(n_splits=n_folds, shuffle=True, random_state=spec.seed)
    with warnings.catch_warnings():
        # Small topics (fewer records than folds) cannot be spread over every fold; that is expected.
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        folds = [test for _, test in folder.split(np.zeros(len(ordered)), strata, groups)]
    result: dict[str, list[QARecord]] = {}
    start = 0
    for name in SPLITS:
        members = np.sort(np.concatenate(folds[start : start + allocation[name]]))
        start += allocation[name]
        result[name] = [ordered[i].with_metadata(split=name) for i in members]
    empty = [name for name, rows in result.items() if not rows]
    if empty:
        raise InputError(
            f"The {', '.join(empty)} split would be empty: too few document groups ({n_groups}) for these "
            "fractions. Add records from other documents or raise the small fractions."
        )
    return result


def document_groups(records: Sequence[QARecord]) -> np.ndarray:
    """A group number per record: records linked through shared document ids (transitively) share one.

    Copies of one record (same id) are linked too. The connected components of the bipartite
    record-document graph are exactly a union-find over document ids.
    """
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    keys: dict[str, int] = {}
    rows, cols = [], []
    for i, r in enumerate(records):
        for key in ("doc:" + d for d in r.doc_ids):
            rows.append(i)
            cols.append(keys.setdefault(key, len(keys)))
        rows.append(i)
        cols.append(keys.setdefault("id:" + r.id, len(keys)))
    n = len(records) + len(keys)
    links = coo_matrix((np.ones(len(rows)), (rows, [len(records) + c for c in cols])), shape=(n, n))
    _, components = connected_components(links, directed=False)
    return components[: len(records)]


def fold_allocation(fractions: dict[str, float], max_folds: int) -> dict[str, int]:
    """Folds per split: the fold count (3..max_folds) whose whole-fold shares best match the fractions.

    80/10/10 gives 10 folds dealt 8/1/1; 70/15/15 gives 20 folds dealt 14/3/3. Fewer folds win ties.
    """
    best, best_error = None, np.inf
    for n in range(len(fractions), max(max_folds, len(fractions)) + 1):
        counts = deal(fractions, n)
        error = max(abs(counts[k] / n - f) for k, f in fractions.items())
        if error < best_error - 1e-9:
            best, best_error = counts, error
    return best


def deal(fractions: dict[str, float], n: int) -> dict[str, int]:
    """``n`` folds dealt by largest remainder, each split getting at least one."""
    names = list(fractions)
    counts = {k: max(1, int(fractions[k] * n)) for k in names}
    while sum(counts.values()) < n:
        k = max(names, key=lambda k: fractions[k] * n - counts[k])
        counts[k] += 1
    while sum(counts.values()) > n:
        k = max((k for k in names if counts[k] > 1), key=lambda k: counts[k] - fractions[k] * n)
        counts[k] -= 1
    return counts


def topic_strata(records: Sequence[QARecord], n_folds: int) -> np.ndarray:
    """A stratum per record: its topic; topics with fewer records than folds share one stratum."""
    topics = [str(r.metadata.get("topic", "")) for r in records]
    counts: dict[str, int] = defaultdict(int)
    for t in topics:
        counts[t] += 1
    # A topic too small to reach every fold cannot be stratified alone; pooled, the small ones still spread.
    labels = [t if counts[t] >= n_folds else "\0rare" for t in topics]
    _, strata = np.unique(labels, return_inverse=True)
    return strata


@dataclass(frozen=True)
class LeakageReport:
    shared_documents: list[tuple[str, str, str]]  # (doc id, split a, split b)
    near_duplicates: list[tuple[str, str, float]]  # (record id a, record id b, question cosine)
    identical_answer_context: list[tuple[str, str]]  # (record id a, record id b)
    threshold: float

    @property
    def clean(self) -> bool:
        return not (self.shared_documents or self.near_duplicates or self.identical_answer_context)

    def counts(self) -> dict[str, int]:
        return {
            "shared_documents": len(self.shared_documents),
            "near_duplicates": len(self.near_duplicates),
            "identical_answer_context": len(self.identical_answer_context),
        }


def check_leakage(splits: dict[str, list[QARecord]], embed: Embed, threshold: float = 0.95) -> LeakageReport:
    """Leaks between different splits: shared documents, near-duplicate questions, identical answer and context."""
    if not 0 < threshold <= 1:
        raise InputError(f"The near-duplicate threshold is a cosine in (0, 1]; got {threshold}.")
    return LeakageReport(
        shared_documents=shared_documents(splits),
        near_duplicates=near_duplicates(splits, embed, threshold),
        identical_answer_context=identical_answer_context(splits),
        threshold=threshold,
    )


def shared_documents(splits: dict[str, list[QARecord]]) -> list[tuple[str, str, str]]:
    """(doc id, split a, split b) for each document with records in two splits (a before b in ``splits``)."""
    homes: dict[str, set[str]] = defaultdict(set)
    for name, records in splits.items():
        for r in records:
            for d in r.doc_ids:
                homes[d].add(name)
    order = {name: i for i, name in enumerate(splits)}
    found = []
    for doc in sorted(homes):
        for a, b in combinations(sorted(homes[doc], key=order.get), 2):
            found.append((doc, a, b))
    return found


def near_duplicates(splits: dict[str, list[QARecord]], embed: Embed, threshold: float) -> list[tuple[str, str, float]]:
    """(id a, id b, cosine) for question pairs in different splits with cosine >= ``threshold``, highest first."""
    records = [r for rows in splits.values() for r in rows]
    if not records:
        return []
    vectors = np.asarray(embed([r.question for r in records]), dtype=np.float32)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    bounds, start = {}, 0
    for name, rows in splits.items():
        bounds[name] = (start, start + len(rows))
        start += len(rows)
    found = []
    for a, b in combinations(splits, 2):
        (a0, a1), (b0, b1) = bounds[a], bounds[b]
        if a0 == a1 or b0 == b1:
            continue
        right = vectors[b0:b1].T
        for c0 in range(a0, a1, CHUNK):
            similarity = vectors[c0 : min(c0 + CHUNK, a1)] @ right
            # A little slack so a float32 rounding of an exact threshold is not missed.
            for i, j in zip(*np.nonzero(similarity >= threshold - 1e-6), strict=True):
                found.append((records[c0 + i].id, records[b0 + j].id, float(min(1.0, similarity[i, j]))))
    return sorted(found, key=lambda t: (-t[2], t[0], t[1]))


def identical_answer_context(splits: dict[str, list[QARecord]]) -> list[tuple[str, str]]:
    """(id a, id b) for records in different splits with the same normalized answer and the same context texts.

    Records without contexts are left out: a shared short answer alone ("yes") is no leak.
    """
    seen: dict[tuple, list[tuple[int, str]]] = defaultdict(list)
    for order, records in enumerate(splits.values()):
        for r in records:
            if r.contexts:
                key = (normalize_answer(r.answer), tuple(sorted(" ".join(c.text.split()) for c in r.contexts)))
                seen[key].append((order, r.id))
    found = set()
    for members in seen.values():
        for (sa, ia), (sb, ib) in combinations(sorted(members), 2):
            if sa != sb:
                found.add((ia, ib))
    return sorted(found)
