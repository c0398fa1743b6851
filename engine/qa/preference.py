"""Preference pairs: a question with its sources, a *chosen* answer and a *rejected* one, and where the pair
came from. They are QA records (the chosen answer is the record's answer), so preference datasets are
versions in the same store as QA sets, with the same lineage, reports and MLflow inputs.

Metadata keys of a pair (see :mod:`engine.qa.schema` for the shared ones):

- ``rejected``: the rejected answer (its presence makes a record a pair).
- ``source``: the pair's origin, one of :data:`ORIGINS` (so a version's counts by source are by origin).
- ``messages``: the chat messages the answers were written for (system, sources and question), when known:
  training then shows exactly that prompt. Without them the prompt is rebuilt from the question and contexts.
- ``detail``: how the pair was made: raters and their agreement, the judge's two verdicts, the samples' F1...
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from engine.errors import InputError
from engine.qa.schema import Context, QARecord

REJECTED = "rejected"
ORIGINS = ("human", "judge", "correction", "gold")
ORIGIN_HELP = {
    "human": "a rater preferred one of two answers in a Human Eval session (ties and 'both bad' give no pair)",
    "judge": "the local judge picked the same answer in both orders",
    "correction": "a person wrote the right answer (chosen) in place of the model's (rejected)",
    "gold": "sampled answers scored against the gold answer: the best against a clearly worse one",
}


def make_pair(
    question: str,
    chosen: str,
    rejected: str,
    origin: str,
    contexts: Sequence[Context] = (),
    messages: Sequence[dict] | None = None,
    detail: dict | None = None,
    **metadata,
) -> QARecord:
    """A preference pair as a QA record; its id hashes the question, both answers and the sources, so two
    pairs of one question differ when either answer does."""
    chosen, rejected = (chosen or "").strip(), (rejected or "").strip()
    if origin not in ORIGINS:
        raise InputError(f"A pair's origin is one of {', '.join(ORIGINS)}, not {origin!r}.")
    if not chosen or not rejected:
        raise InputError(f"The pair {question[:60]!r} needs both a chosen and a rejected answer.")
    if chosen == rejected:
        raise InputError(f"The pair {question[:60]!r} has the same answer chosen and rejected.")
    contexts = tuple(contexts)
    payload = json.dumps([question, chosen, rejected, [[c.title, c.text] for c in contexts]], ensure_ascii=False)
    meta = {REJECTED: rejected, "source": origin, "detail": dict(detail or {})} | metadata
    if messages:
        meta["messages"] = [dict(m) for m in messages]
    return QARecord(
        question=question.strip(),
        answer=chosen,
        contexts=contexts,
        metadata=meta,
        id=hashlib.sha256(payload.encode()).hexdigest()[:16],
    )


def is_pair(record: QARecord) -> bool:
    return bool(str(record.metadata.get(REJECTED) or "").strip())


def rejected_of(record: QARecord) -> str:
    return str(record.metadata.get(REJECTED) or "")


def origin_of(record: QARecord) -> str:
    return str(record.metadata.get("source") or "")


def check_pairs(records: Sequence[QARecord], name: str = "the dataset") -> list[QARecord]:
    """The records as pairs, or an InputError when any is not one (a QA set given where pairs are needed)."""
    records = list(records)
    if not records:
        raise InputError(f"{name} has no preference pairs.")
    if missing := sum(1 for r in records if not is_pair(r)):
        raise InputError(
            f"{name} is not a preference dataset: {missing} of {len(records)} records have no rejected answer. "
            "Build one on the Datasets page (Preferences) or with `engine preferences build`."
        )
    return records


def counts_by_origin(records: Sequence[QARecord]) -> dict[str, int]:
    """How many pairs come from each origin, in :data:`ORIGINS` order (origins with none left out)."""
    found = {o: sum(1 for r in records if origin_of(r) == o) for o in ORIGINS}
    return {o: n for o, n in found.items() if n}


def is_preference_version(manifest) -> bool:
    """Whether a dataset version (its :class:`~engine.qa.versions.Manifest`) holds preference pairs: its records'
    sources are all pair origins (a pair's ``source`` is its origin)."""
    sources = manifest.counts.get("sources") or {}
    return bool(sources) and set(sources) <= set(ORIGINS)


def preference_datasets(settings) -> list[str]:
    """The datasets whose newest version holds preference pairs, by name."""
    from engine.qa.versions import DatasetStore  # noqa: PLC0415 - versions imports the record schema this sits on

    datasets = DatasetStore(settings)
    return [n for n in datasets.datasets() if (found := datasets.versions(n)) and is_preference_version(found[0])]
