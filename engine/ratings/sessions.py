"""What a blind rating session is made of: its items and ratings (the records and their checks), and the
builders that pair two sets of answers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from numbers import Integral
from typing import NamedTuple

from engine.errors import InputError

# Outcomes that are not a variant: a variant may not be named like one, or a winner would be ambiguous.
RESERVED = ("tie", "both_bad")
PREFERENCES = ("left", "right", "tie", "both_bad")
SCORES = ("correctness", "groundedness", "fluency")
SCORE_COLUMNS = tuple(f"{s}_{side}" for side in ("left", "right") for s in SCORES)


@dataclass(frozen=True)
class SessionItem:
    """One question with the answers of each variant (``answers``: variant name -> answer)."""

    item_id: str
    question: str
    reference: str = ""  # the gold answer, if there is one
    context: str = ""  # the sources the answers were written from, if any
    answers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RatingSession:
    """A stored session: its two variants and where their answers came from."""

    id: str
    name: str
    created: float
    variants: tuple[str, ...]
    source: dict
    seed: int | None


@dataclass(frozen=True)
class RatingItem:
    """A stored item as a rater sees it: the answers on the left and right (which variant is which stays
    hidden until the rating is submitted)."""

    session_id: str
    item_id: str
    position: int
    question: str
    reference: str
    context: str
    left_variant: str
    right_variant: str
    left_answer: str
    right_answer: str


@dataclass(frozen=True)
class Rating:
    """One rater's verdict on one item: the preferred side and optional 1-5 scores of each answer."""

    session_id: str
    item_id: str
    rater: str
    preference: str  # left, right, tie or both_bad
    correctness_left: int | None = None
    groundedness_left: int | None = None
    fluency_left: int | None = None
    correctness_right: int | None = None
    groundedness_right: int | None = None
    fluency_right: int | None = None
    comment: str = ""


class Progress(NamedTuple):
    rated: int
    skipped: int
    total: int


def check_variants(names: Sequence[str]) -> tuple[str, str]:
    """The two variant names of a pairwise session, or an InputError saying what is wrong with them."""
    names = tuple(names)
    if len(names) != 2:
        raise InputError(f"a rating session compares exactly two variants, got {len(names)}: {list(names)}")
    for name in names:
        if not isinstance(name, str) or not name.strip():
            raise InputError(f"a variant needs a non-empty name, got {name!r}")
        if name in RESERVED:
            raise InputError(f"a variant may not be called {name!r}: that word is a rating outcome")
    if names[0] == names[1]:
        raise InputError(f"the two variants need different names, both are called {names[0]!r}")
    return names[0], names[1]


def items_from_answers(
    questions: Sequence[str],
    references: Sequence[str] | None,
    contexts: Sequence[str | Sequence[str]] | None,
    answers_a: Sequence[str],
    answers_b: Sequence[str],
    names: Sequence[str],
    item_ids: Sequence[str] | None = None,
) -> list[SessionItem]:
    """Session items from the answers of any two runs to the same questions, in the same order.

    ``references`` (gold answers) and ``contexts`` (the sources shown; a list of passages is joined with
    blank lines) may be None. ``item_ids`` default to ``q0001``, ``q0002``, ...
    """
    name_a, name_b = check_variants(names)
    n = len(questions)
    if n < 1:
        raise InputError("a rating session needs at least one question")
    columns = {"answers of " + name_a: answers_a, "answers of " + name_b: answers_b}
    if references is not None:
        columns["references"] = references
    if contexts is not None:
        columns["contexts"] = contexts
    if item_ids is not None:
        columns["item ids"] = item_ids
    for label, values in columns.items():
        if len(values) != n:
            raise InputError(f"there are {n} questions but {len(values)} {label}: they must match one to one")
    ids = [str(i) for i in item_ids] if item_ids is not None else [f"q{k + 1:04d}" for k in range(n)]
    if len(set(ids)) != n:
        seen: set[str] = set()
        dup = next(i for i in ids if i in seen or seen.add(i))
        raise InputError(f"item ids must be unique, {dup!r} appears more than once")
    items = []
    for k in range(n):
        context = contexts[k] if contexts is not None else ""
        if not isinstance(context, str):
            context = "\n\n".join(str(p) for p in context)
        items.append(
            SessionItem(
                item_id=ids[k],
                question=str(questions[k]),
                reference="" if references is None or references[k] is None else str(references[k]),
                context=context or "",
                answers={name_a: str(answers_a[k] or ""), name_b: str(answers_b[k] or "")},
            )
        )
    return items


def check_rater(rater) -> str:
    """The rater's name without surrounding blanks; an InputError if there is none."""
    if not isinstance(rater, str) or not rater.strip():
        raise InputError("a rater needs a non-empty name")
    return rater.strip()


def check_rating(rating: Rating) -> None:
    """An InputError naming the first thing wrong with a rating: its rater, preference, a score, the comment."""
    check_rater(rating.rater)
    if rating.preference not in PREFERENCES:
        raise InputError(f"unknown preference {rating.preference!r}: use one of {', '.join(PREFERENCES)}")
    for f in fields(rating):
        if f.name in SCORE_COLUMNS:
            value = getattr(rating, f.name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, Integral) or not 1 <= value <= 5:
                raise InputError(f"{f.name.replace('_', ' of the ')} answer must be a whole number 1-5, got {value!r}")
    if rating.comment is not None and not isinstance(rating.comment, str):
        raise InputError("a rating's comment must be text")
