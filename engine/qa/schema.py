"""One record schema for QA items, whatever their origin (Dolly, HotpotQA, generated, augmented).

A record's id is a hash of its content (question, answer, contexts), so the same item has the
same id in every dataset and version, and an edited item gets a new one.

Metadata keys used across the Studio (all optional):

- ``source``: where the item came from (``dolly``, ``hotpotqa``, ``generated``, a file name).
- ``category``: the original dataset's category (Dolly) or question type (HotpotQA).
- ``topic`` / ``topic_label``: the topic cluster (see :mod:`engine.data.topics`).
- ``split``: ``train`` / ``validation`` / ``test`` (see :mod:`engine.data.splits`).
- ``origin`` / ``augmentation``: the id of the record this one was derived from, and how (an edit in the
  review queue sets ``origin`` too).
- ``review``: ``accepted`` or ``edited`` by a person in the review queue (see :mod:`engine.data.review`).
- ``scores``: filter name -> score, from QA generation (see :mod:`engine.data.filters`).
- ``no_gold``: True for a question without a gold answer (its answer is empty): a file of questions only,
  e.g. written by people. Evaluations judge its answers for groundedness, never F1; training skips it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from engine.errors import InputError

NO_GOLD = "no_gold"  # the metadata key of a question without a gold answer


@dataclass(frozen=True)
class Context:
    """A passage shown with the question: its title, text, and the document it belongs to."""

    title: str
    text: str
    doc_id: str = ""


@dataclass(frozen=True)
class QARecord:
    question: str
    answer: str
    contexts: tuple[Context, ...] = ()
    doc_ids: tuple[str, ...] = ()  # the source documents: splits keep a document's items together
    metadata: dict = field(default_factory=dict, compare=False, hash=False)
    id: str = ""  # empty: the content hash (see record_id)

    def __post_init__(self) -> None:
        if not isinstance(self.question, str) or not self.question.strip():
            raise InputError("A QA record needs a non-empty question.")
        if not isinstance(self.answer, str) or not (self.answer.strip() or self.metadata.get(NO_GOLD) is True):
            raise InputError(f"The record {self.question[:60]!r} has an empty answer.")
        if not self.id:
            object.__setattr__(self, "id", record_id(self.question, self.answer, self.contexts))

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "question": self.question,
            "answer": self.answer,
            "contexts": [{"title": c.title, "text": c.text, "doc_id": c.doc_id} for c in self.contexts],
            "doc_ids": list(self.doc_ids),
            "metadata": self.metadata,
        }

    @classmethod
    def from_dict(cls, data: dict) -> QARecord:
        """A record from :meth:`to_dict`'s form; an InputError says what is missing or wrong."""
        if not isinstance(data, dict):
            raise InputError("A QA record is a JSON object.")
        no_gold = isinstance(data.get("metadata"), dict) and data["metadata"].get(NO_GOLD) is True
        needed = ("question",) if no_gold else ("question", "answer")
        missing = [k for k in needed if not str(data.get(k) or "").strip()]
        if missing:
            raise InputError(f"missing or empty {', '.join(missing)}")
        contexts = []
        for c in data.get("contexts") or []:
            if isinstance(c, str):
                contexts.append(Context("", c))
            elif isinstance(c, dict) and str(c.get("text") or "").strip():
                contexts.append(Context(str(c.get("title") or ""), str(c["text"]), str(c.get("doc_id") or "")))
            else:
                raise InputError("each context is a text or an object with a non-empty text")
        metadata = data.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise InputError("metadata is a JSON object")
        return cls(
            question=str(data["question"]).strip(),
            answer=str(data.get("answer") or "").strip(),
            contexts=tuple(contexts),
            doc_ids=tuple(str(d) for d in data.get("doc_ids") or ()),
            metadata=dict(metadata),
            id=str(data.get("id") or ""),
        )

    @property
    def has_gold(self) -> bool:
        """Whether the record has a gold answer (see ``no_gold``)."""
        return bool(self.answer.strip())

    def with_metadata(self, **values) -> QARecord:
        """A copy with metadata keys set (the id stays: metadata is not content)."""
        return replace(self, metadata={**self.metadata, **values})


def record_id(question: str, answer: str, contexts: Iterable[Context] = ()) -> str:
    payload = json.dumps([question, answer, [[c.title, c.text] for c in contexts]], ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def content_hash(records: Iterable[QARecord]) -> str:
    """A hash of a dataset's content (records in id order, metadata included): its version id."""
    lines = sorted(json.dumps(r.to_dict(), sort_keys=True, ensure_ascii=False) for r in records)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()[:16]
