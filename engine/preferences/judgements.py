"""Preference pairs from the local judge on an A/B experiment: on each item where the judge picked the same
answer in both orders (a verdict of A or B), that answer is chosen and the other rejected. Ties, which include
the judgements that flipped with the answers' order, give no pair."""

from __future__ import annotations

from engine.ab.judging import load_judges
from engine.ab.results import list_results, load_result
from engine.errors import InputError, StudioError
from engine.evaluation.judge import JudgeResult
from engine.preferences.harvest import Harvest
from engine.preferences.prompts import contexts_of, frame_pair, text_of
from engine.preferences.rows import experiment_rows
from engine.qa.preference import make_pair
from engine.settings import Settings


def judge_pairs(experiment_id: str, settings: Settings) -> Harvest:
    """The pairs of every judgement saved with the experiment (one per judged pair of variants). Each pair's
    ``detail`` names the experiment, the item, the two variants, the judge model, its verdicts and replies in
    both orders, and how its prompt was found; ties and items whose rows are missing are counted."""
    result = load_result(experiment_id, settings)
    judges = load_judges(experiment_id, settings)
    if not judges:
        raise InputError(
            f"Experiment {experiment_id!r} has not been judged: run the local judge on two of its variants first "
            "(A/B Test page, or `python -m engine judge`)."
        )
    rows = experiment_rows(result)
    source = {"description": f"the local judge on A/B experiment {experiment_id!r}", "experiment": experiment_id}
    harvest = Harvest(sources=[source | {"judged": [f"{j.a} vs {j.b}" for j in judges]}])
    for judge in judges:
        ids = judge.item_ids or result.item_ids()  # a judgement saved without ids names the items by position
        for k, (item_id, verdict) in enumerate(zip(ids, judge.verdicts, strict=True)):
            if verdict not in ("A", "B"):
                harvest.skipped["tie"] += 1
                continue
            chosen, rejected = (judge.a, judge.b) if verdict == "A" else (judge.b, judge.a)
            found = (rows.get(chosen, {}).get(str(item_id)), rows.get(rejected, {}).get(str(item_id)))
            if None in found:
                harvest.skipped["missing"] += 1
                continue
            pair = judged_pair(experiment_id, judge, k, chosen, rejected, found)
            if isinstance(pair, str):
                harvest.skipped[pair] += 1
            else:
                harvest.pairs.append(pair)
    return harvest


def judged_pair(experiment_id: str, judge: JudgeResult, k: int, chosen: str, rejected: str, rows):
    """The pair of item ``k`` of a judgement, or why it makes none ('same_answer', 'empty_answer')."""
    row = rows[0]
    # The judge read the shown answers (the rows' predictions), as raters do.
    shown = text_of(row.get("prediction")).strip(), text_of(rows[1].get("prediction")).strip()
    if shown[0] == shown[1]:
        return "same_answer"
    context = text_of(row.get("context"))
    framing = frame_pair(*shown, rows)
    if framing.problem:
        return framing.problem
    detail = {
        "experiment": experiment_id,
        "item_id": str(row["item_id"]),
        "chosen_variant": chosen,
        "rejected_variant": rejected,
        "judge": judge.model,
        # "1" / "2" / "tie": the pick with judge.a's answer in position 1, then with judge.b's in position 1
        "verdict_a_first": judge.first_verdicts[k],
        "verdict_b_first": judge.second_verdicts[k],
        "reply_a_first": judge.first_texts[k],
        "reply_b_first": judge.second_texts[k],
        "prompt": framing.prompt,
        "text": framing.text,
    }
    extra = {"reference": text_of(row.get("gold"))} if text_of(row.get("gold")) else {}
    contexts = contexts_of(context)
    question, messages = row["question"], framing.messages
    return make_pair(question, framing.chosen, framing.rejected, "judge", contexts, messages, detail, **extra)


def judged_experiments(settings: Settings) -> list[str]:
    """The saved A/B experiments the local judge has been run on, newest first."""
    found = []
    for experiment in list_results(settings):
        try:
            if load_judges(experiment, settings):
                found.append(experiment)
        except StudioError:  # a folder whose name is no longer a valid experiment id
            continue
    return found
