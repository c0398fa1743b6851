"""Corrections: a person's right answer written in place of a model's, on the Query page or beside a rating in
Human Eval. Each is a preference pair waiting to be built (the correction chosen, the model's answer rejected);
they are stored with the ratings, in the same file (:class:`CorrectionBook`, a ``RatingStore``'s ``corrections``).
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass

from engine.errors import InputError
from engine.ratings.database import RatingsDatabase, item_row

PLACES = ("query", "human_eval")  # where a correction was written


@dataclass(frozen=True)
class Correction:
    """A model's answer (rejected) and the answer a person wrote for the same question (chosen).

    ``context`` is the sources text shown with the answer; ``sources`` the same sources as ``{title, text}``
    where their titles are known; ``messages`` the chat messages the model answered, where known (the Query
    page's answers carry them; a Human Eval item's are found from its session when pairs are built).
    """

    place: str
    question: str
    answer: str  # the model's answer, as shown
    correction: str  # the right answer, as the person wrote it
    rater: str = ""
    context: str = ""
    model: str = ""  # the model, or the Human Eval variant, that wrote the answer
    session_id: str = ""  # Human Eval only
    item_id: str = ""  # Human Eval only
    sources: tuple[dict, ...] = ()
    messages: tuple[dict, ...] = ()
    id: int = 0  # given by the store
    created: float = 0.0  # given by the store


def same_text(a: str, b: str) -> bool:
    """Whether two answers say the same words (blanks and case aside)."""
    return " ".join(a.split()).casefold() == " ".join(b.split()).casefold()


def check_correction(correction: Correction) -> Correction:
    """The correction with its texts stripped, or an InputError saying what is wrong with it."""
    c = correction
    if c.place not in PLACES:
        raise InputError(f"A correction is made in one of {', '.join(PLACES)}, not {c.place!r}.")
    if not (c.question or "").strip():
        raise InputError("A correction needs the question it answers.")
    if not (c.answer or "").strip():
        raise InputError("The model gave no answer here: there is nothing to correct (write a QA record instead).")
    if not (c.correction or "").strip():
        raise InputError("Write the right answer before saving the correction.")
    if same_text(c.answer, c.correction):
        raise InputError("The correction is the model's answer as it is: change it to the right answer first.")
    if c.place == "human_eval" and not (c.session_id and c.item_id):
        raise InputError("A correction made in Human Eval needs its session and item.")
    for what, values in (("sources", c.sources), ("messages", c.messages)):
        if any(not isinstance(v, dict) for v in values):
            raise InputError(f"A correction's {what} are JSON objects.")
    return Correction(
        **{**c.__dict__, "question": c.question.strip(), "answer": c.answer.strip(), "correction": c.correction.strip()}
    )


def answer_correction(answer, text: str, rater: str = "", model: str = "") -> Correction:
    """A correction of a Query page answer (a :class:`engine.rag.pipeline.RagAnswer`): its question, the
    sources retrieved for it, the answer shown and the messages the model answered."""
    hits = tuple(answer.hits or ())
    return Correction(
        place="query",
        question=answer.question,
        answer=answer.answer,
        correction=text,
        rater=(rater or "").strip(),
        context="\n\n".join(f"[{n}] {h.title}: {h.text}" for n, h in enumerate(hits, start=1)),
        model=model,
        sources=tuple({"title": h.title, "text": h.text} for h in hits),
        messages=tuple(dict(m) for m in answer.messages or ()),
    )


def item_correction(item, variants: dict[str, str], side: str, text: str, rater: str) -> Correction:
    """A correction of one answer of a Human Eval item (a :class:`engine.ratings.sessions.RatingItem`):
    ``side`` (``left`` or ``right``) says which answer it corrects, ``variants`` (the store's
    :meth:`reveal`) which variant wrote it."""
    if side not in ("left", "right"):
        raise InputError(f"Say which answer the correction is for (left or right), not {side!r}.")
    return Correction(
        place="human_eval",
        question=item.question,
        answer=item.left_answer if side == "left" else item.right_answer,
        correction=text,
        rater=(rater or "").strip(),
        context=item.context,
        model=variants.get(side, ""),
        session_id=item.session_id,
        item_id=item.item_id,
    )


class CorrectionBook:
    """The corrections table of a ratings file."""

    def __init__(self, db: RatingsDatabase):
        self.db = db

    def add(self, correction: Correction) -> int:
        """Store a correction (an InputError if it is empty or the model's answer as it is); returns its id."""
        c = check_correction(correction)
        with self.db.write() as con:
            if c.place == "human_eval":
                item_row(con, c.session_id, c.item_id)
            cursor = con.execute(
                """INSERT INTO corrections (place, session_id, item_id, rater, question, context, answer, correction,
                                            model, sources, messages, created)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                (c.place, c.session_id, c.item_id, c.rater, c.question, c.context or "", c.answer, c.correction,
                 c.model or "", json.dumps(list(c.sources), ensure_ascii=False),
                 json.dumps(list(c.messages), ensure_ascii=False), time.time()),
            )  # fmt: skip
            return int(cursor.lastrowid)

    def find(self, place: str = "", session_id: str = "") -> list[Correction]:
        """The stored corrections, oldest first: all, or those made in one place, or in one session."""
        where, args = [], []
        for column, value in (("place", place), ("session_id", session_id)):
            if value:
                where.append(f"{column} = ?")
                args.append(value)
        sql = "SELECT * FROM corrections" + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY created, id"
        with self.db.read() as con:
            rows = con.execute(sql, args).fetchall()
        return [_correction(r) for r in rows]

    def delete(self, correction_id: int) -> None:
        """Delete a correction; an InputError if there is none by that id."""
        with self.db.write() as con:
            if con.execute("DELETE FROM corrections WHERE id = ?", (int(correction_id),)).rowcount != 1:
                raise InputError(f"there is no correction {correction_id!r}")


def _correction(row: sqlite3.Row) -> Correction:
    values = dict(row)
    values["sources"], values["messages"] = tuple(json.loads(values["sources"])), tuple(json.loads(values["messages"]))
    return Correction(**values)
