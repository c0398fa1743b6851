"""Preference pairs from corrections: the answer a person wrote (chosen) against the model's answer it replaces
(rejected), made on the Query page or beside a rating in Human Eval (see :mod:`engine.ratings.corrections`)."""

from __future__ import annotations

from engine.errors import StudioError
from engine.preferences.harvest import Harvest
from engine.preferences.prompts import EXACT, REBUILT, contexts_of, messages_of
from engine.preferences.rows import Rows, session_rows
from engine.qa.preference import make_pair
from engine.ratings.corrections import Correction
from engine.ratings.store import RatingStore
from engine.settings import Settings


def correction_prompt(correction: Correction, rows: Rows) -> tuple[list[dict] | None, str]:
    """The messages the corrected answer was written for, and how they were found: kept with the correction
    (a Query page answer), or from the row of the Human Eval item's answer; else None (rebuilt in training)."""
    found = messages_of({"messages": list(correction.messages)})
    if found is None and correction.place == "human_eval":
        found = messages_of(rows.get(correction.model, {}).get(correction.item_id))
    if found is not None:
        return found, EXACT
    return None, REBUILT


def correction_pairs(store: RatingStore, settings: Settings, tracker=None) -> Harvest:
    """A pair of every stored correction, oldest first. The rejected side is the model's answer as shown, not
    its raw output: the person corrected that text and wrote theirs in its form. Each pair's ``detail`` names
    where the correction was made, its id, the rater, the model (or variant), the session and item (Human
    Eval), and how the prompt was found."""
    corrections = store.corrections.find()
    rows: dict[str, Rows] = {}  # session id -> its rows, read once
    harvest = Harvest()
    for c in corrections:
        if c.place == "human_eval" and c.session_id not in rows:
            try:
                rows[c.session_id] = session_rows(store.session(c.session_id), settings, tracker)
            except StudioError:
                rows[c.session_id] = {}
        messages, prompt = correction_prompt(c, rows.get(c.session_id, {}))
        detail = {
            "place": c.place,
            "correction_id": c.id,
            "rater": c.rater,
            "model": c.model,
            **({"session": c.session_id, "item_id": c.item_id} if c.place == "human_eval" else {}),
            "prompt": prompt,
            "text": "shown",
        }
        contexts = contexts_of(c.context, c.sources)
        harvest.pairs.append(make_pair(c.question, c.correction, c.answer, "correction", contexts, messages, detail))
    if corrections:
        places = sorted({c.place for c in corrections})
        harvest.sources.append(
            {"description": f"{len(corrections)} corrections ({', '.join(places)})", "corrections": len(corrections)}
        )
    return harvest
