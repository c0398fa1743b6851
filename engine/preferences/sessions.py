"""Preference pairs from a Human Eval session: on each item the raters' majority preferred one answer (chosen)
over the other (rejected). Ties give no pair; items the majority found both bad go on a review list, for a
person to write their right answer."""

from __future__ import annotations

from engine.preferences.harvest import Harvest, ReviewItem
from engine.preferences.prompts import contexts_of, frame_pair, text_of
from engine.preferences.rows import session_rows
from engine.preferences.votes import SPLIT, Verdict, session_verdicts
from engine.qa.preference import make_pair
from engine.ratings.sessions import RatingItem
from engine.ratings.store import RatingStore
from engine.settings import Settings


def answers_of(item: RatingItem) -> dict[str, str]:
    """Variant -> its answer on an item, as the raters saw it."""
    return {item.left_variant: item.left_answer, item.right_variant: item.right_answer}


def review_item(item: RatingItem, verdict: Verdict) -> ReviewItem:
    return ReviewItem(
        item.session_id, item.item_id, item.question, answers_of(item), verdict.votes, item.context, item.reference
    )


def review_items(store: RatingStore, session_id: str) -> list[ReviewItem]:
    """The items of a session whose raters' majority found both answers bad, in rating order."""
    verdicts = session_verdicts(store.ratings(session_id))
    return [
        review_item(item, verdicts[item.item_id])
        for item in store.items(session_id)
        if item.item_id in verdicts and verdicts[item.item_id].outcome == "both_bad"
    ]


def human_pairs(store: RatingStore, session_id: str, settings: Settings, tracker=None) -> Harvest:
    """The pairs of a session's items where the raters' majority preferred a variant (see
    :func:`engine.preferences.votes.majority`). Each pair's ``detail`` names the session, the item, the two
    variants, the raters with their votes and their agreement, and how its prompt was found; items giving no
    pair are counted by why (tie, both_bad, split, unrated, same_answer) and both_bad ones are on the review
    list. ``tracker`` reads evaluation runs' tables (a session built from two runs)."""
    session = store.session(session_id)
    verdicts = session_verdicts(store.ratings(session_id))
    rows = session_rows(session, settings, tracker) if verdicts else {}
    source = {"description": f"Human Eval session {session.name!r}", "session": session.id}
    harvest = Harvest(sources=[source | {"variants": list(session.variants)}])
    for item in store.items(session_id):
        verdict = verdicts.get(item.item_id)
        outcome = verdict.outcome if verdict else "unrated"
        if outcome == "both_bad":
            harvest.review.append(review_item(item, verdict))
        if outcome in ("unrated", "tie", "both_bad", SPLIT):
            harvest.skipped[outcome] += 1
            continue
        answers = answers_of(item)
        rejected_variant = next(v for v in answers if v != outcome)
        if answers[outcome].strip() == answers[rejected_variant].strip():
            harvest.skipped["same_answer"] += 1
            continue
        found = (rows.get(outcome, {}).get(item.item_id), rows.get(rejected_variant, {}).get(item.item_id))
        context = item.context or text_of((found[0] or {}).get("context"))
        framing = frame_pair(answers[outcome], answers[rejected_variant], found)
        if framing.problem:
            harvest.skipped[framing.problem] += 1
            continue
        detail = {
            "session": session.id,
            "item_id": item.item_id,
            "chosen_variant": outcome,
            "rejected_variant": rejected_variant,
            **verdict.to_detail(),
            "prompt": framing.prompt,
            "text": framing.text,
        }
        extra = {"reference": item.reference} if item.reference else {}
        harvest.pairs.append(
            make_pair(
                item.question,
                framing.chosen,
                framing.rejected,
                "human",
                contexts_of(context),
                framing.messages,
                detail,
                **extra,
            )
        )
    return harvest
