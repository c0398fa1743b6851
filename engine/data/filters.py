"""Quality filters for generated QA pairs: pure functions of a candidate's evidence, in a registry.

Each filter gives a candidate a score and passes it against a threshold of :class:`FilterSpec`.
Model and retriever calls happen in :mod:`engine.data.generation`, which stores what they found
(the retrieval rank of the source passage, the answer the model gave) as evidence; scoring
here only reads it, so thresholds can be changed and re-applied without generating again.
The filters run in registry order, each on what the ones before it kept: the funnel.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from engine.errors import InputError, check_choice
from engine.evaluation.metrics import f1_precision_recall, normalize_answer
from engine.knobs import knob

LEFTOVER = re.compile(r"\b(passage|answer)\s*:", re.IGNORECASE)


@dataclass(frozen=True)
class FilterSpec:
    """The thresholds; each filter's help text says what it measures."""

    min_question_words: int = knob(5, "shortest question kept, in words", min=1)
    max_question_words: int = knob(30, "longest question kept, in words", min=1)
    max_answer_words: int = knob(5, "longest short answer kept, in words (answers are spans of the passage)", min=1)
    max_sentence_words: int = knob(60, "longest descriptive answer kept (one sentence of the passage), in words", min=1)
    # The longest run of passage words in the question, as a share of the question.
    max_copy: float = knob(
        0.6,
        "largest share of the question copied word for word from the passage (0-1)",
        min=0.0,
        max=1.0,
    )
    max_similarity: float = knob(
        0.9,
        "questions more similar than this (embedding cosine) to one kept before are duplicates",
        min=0.0,
        max=1.0,
    )
    retrieval_k: int = knob(
        5,
        "round trip 1: retrieving with the question must find the source passage in the top k",
        min=1,
    )
    min_answer_f1: float = knob(
        0.5,
        "round trip 2: the model's answer from the source passage must hold this share of the span",
        min=0.0,
        max=1.0,
    )

    def __post_init__(self) -> None:
        if not 1 <= self.min_question_words <= self.max_question_words:
            raise InputError("Question length bounds must satisfy 1 <= min <= max.")
        if self.max_answer_words < 1 or self.retrieval_k < 1:
            raise InputError("The answer length and retrieval k must be at least 1.")
        if not (0 < self.max_copy <= 1 and 0 < self.max_similarity <= 1 and 0 <= self.min_answer_f1 <= 1):
            raise InputError("Copy share and similarity are in (0, 1], the answer F1 in [0, 1].")


@dataclass
class Candidate:
    """A passage, an answer span of it, the generated question, and what the checks found."""

    key: str
    passage_id: str
    title: str
    passage: str
    answer: str
    kind: str
    question: str = ""
    evidence: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Filter:
    name: str
    help: str
    score: Callable[[Candidate], float]
    passes: Callable[[float, FilterSpec, Candidate], bool]
    needs: str = ""  # evidence key that must be present (made by generation); missing: the candidate fails


def words(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def well_formed(c: Candidate) -> float:
    q = c.question.strip()
    ok = (
        q.endswith("?")
        and q[:1].isupper()
        and "\n" not in q
        and not LEFTOVER.search(q)
        and normalize_answer(c.answer) not in normalize_answer(q)
        and q.count("?") == 1
    )
    return 1.0 if ok else 0.0


def copy_share(c: Candidate) -> float:
    """The longest run of consecutive question words found in the passage, over the question's words."""
    q, p = words(c.question), words(c.passage)
    if not q:
        return 1.0
    text = " " + " ".join(p) + " "
    best = 0
    for i in range(len(q)):
        for j in range(len(q), i + best, -1):  # longest first; stop when it cannot beat the best
            if f" {' '.join(q[i:j])} " in text:
                best = j - i
                break
    return best / len(q)


DESCRIPTION = "description"  # a whole sentence as the answer (see engine.data.spans.description)


MIN_PRECISION = 0.1  # a model's answer that holds the span among at most ten times as many words


def round_trip_score(c: Candidate) -> float:
    """How well the model's answer from the source passage gives the answer back: the share of the span's words
    it holds (the small model answers in a sentence: "X was released by Apple Records in 1969"), unless it
    rambles (F1 then); for a descriptive answer (a sentence), the share of the model's answer the sentence holds."""
    _, precision, recall = f1_precision_recall(c.evidence["model_answer"], c.answer)
    if c.kind == DESCRIPTION:
        return precision
    return recall if precision >= MIN_PRECISION else f1_precision_recall(c.evidence["model_answer"], c.answer)[0]


FILTERS: tuple[Filter, ...] = (
    Filter(
        name="well_formed",
        help="One question ending in '?', capitalized, without the answer in it or prompt leftovers.",
        score=well_formed,
        passes=lambda s, spec, c: s == 1.0,
    ),
    Filter(
        name="question_length",
        help="Question length in words, within the bounds.",
        score=lambda c: float(len(words(c.question))),
        passes=lambda s, spec, c: spec.min_question_words <= s <= spec.max_question_words or c.kind == DESCRIPTION,
    ),
    Filter(
        name="answer_length",
        help="Answer length in words, at most the maximum (a descriptive answer: its sentence's).",
        score=lambda c: float(len(words(c.answer))),
        passes=lambda s, spec, c: (
            1 <= s <= (spec.max_sentence_words if c.kind == DESCRIPTION else spec.max_answer_words)
        ),
    ),
    Filter(
        name="not_copy",
        help="Share of the question copied verbatim from the passage (longest run), at most the maximum "
        "(a descriptive question is made by rule from the title).",
        score=copy_share,
        passes=lambda s, spec, c: s <= spec.max_copy or c.kind == DESCRIPTION,
    ),
    Filter(
        name="near_duplicate",
        help="Cosine similarity to a question kept before, below the maximum.",
        score=lambda c: c.evidence["max_cosine"],
        passes=lambda s, spec, c: s < spec.max_similarity,
        needs="max_cosine",
    ),
    Filter(
        name="round_trip_retrieval",
        help="Rank of the source passage when retrieving with the question (0: not found).",
        score=lambda c: float(c.evidence["retrieval_rank"]),
        passes=lambda s, spec, c: 1 <= s <= spec.retrieval_k,
        needs="retrieval_rank",
    ),
    Filter(
        name="round_trip_answer",
        help="Share of the answer span's words in the model's answer from the source passage (a "
        "descriptive answer: the share of the model's answer found in its sentence).",
        score=round_trip_score,
        passes=lambda s, spec, c: s >= spec.min_answer_f1,
        needs="model_answer",
    ),
)
NAMES = tuple(f.name for f in FILTERS)


@dataclass(frozen=True)
class FunnelStep:
    name: str
    entered: int
    passed: int

    @property
    def rate(self) -> float:
        return self.passed / self.entered if self.entered else 0.0


def run_filter(f: Filter, candidates: Sequence[Candidate], spec: FilterSpec) -> tuple[list, list]:
    """(kept, rejected) by one filter; each candidate's score is written to ``evidence["scores"]``."""
    kept, rejected = [], []
    for c in candidates:
        ok = not f.needs or f.needs in c.evidence
        score = f.score(c) if ok else float("nan")
        c.evidence.setdefault("scores", {})[f.name] = score
        (kept if ok and f.passes(score, spec, c) else rejected).append(c)
    for c in rejected:
        c.evidence["rejected_by"] = f.name
    return kept, rejected


def duplicate_scores(vectors, threshold: float) -> list[float]:
    """For each unit vector in order, its highest cosine to the earlier ones kept (below ``threshold``)."""
    matrix = np.asarray(vectors, dtype=np.float32)
    kept: list[int] = []
    scores = []
    for i in range(len(matrix)):
        best = float((matrix[kept] @ matrix[i]).max()) if kept else 0.0
        scores.append(best)
        if best < threshold:
            kept.append(i)
    return scores


def apply_filters(
    candidates: Sequence[Candidate], spec: FilterSpec, vectors: dict | None = None, upto: str | None = None
):
    """Run the filters in order (all, or up to and including ``upto``): the survivors and the funnel.

    ``vectors`` (candidate key -> unit vector of its question) feed the near-duplicate filter,
    which compares each survivor with the earlier survivors it kept.
    """
    if upto is not None:
        check_choice(upto, NAMES, "filter")
    alive, funnel = list(candidates), []
    for c in alive:
        c.evidence.pop("rejected_by", None)
    for f in FILTERS:
        if f.name == "near_duplicate" and vectors is not None:
            for c, score in zip(
                alive, duplicate_scores([vectors[c.key] for c in alive], spec.max_similarity), strict=True
            ):
                c.evidence["max_cosine"] = score
        kept, _ = run_filter(f, alive, spec)
        funnel.append(FunnelStep(f.name, len(alive), len(kept)))
        alive = kept
        if f.name == upto:
            break
    return alive, funnel
