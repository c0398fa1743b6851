"""What a pair trains on: the prompt both answers were written for, and each answer's text (the raw output only
where both were written for the same known prompt and it holds the rated answer)."""

from __future__ import annotations

import math

from engine.preferences.prompts import CHOSENS, EXACT, ONE_KNOWN, REBUILT, answer_text, contexts_of, frame_pair
from engine.qa.schema import Context

ASKED = [{"role": "system", "content": "S"}, {"role": "user", "content": "Sources:\n[1] T: x\n\nQuestion: Q?"}]
OTHER = [{"role": "system", "content": "Quote, then answer."}, ASKED[1]]


def row(prediction: str, raw, messages=ASKED) -> dict:
    return {"prediction": prediction, "raw": raw, "messages": messages}


def test_answers_written_for_one_prompt_train_on_the_raw_outputs():
    found = frame_pair("Paris", "Lyon", (row("Paris", "Answer: Paris."), row("Lyon", "Lyon [1]")))
    assert (found.chosen, found.rejected, found.text, found.prompt) == ("Answer: Paris.", "Lyon [1]", "raw", EXACT)
    assert found.messages == ASKED and not found.problem


def test_the_shown_answers_where_a_raw_output_does_not_hold_its_answer():
    # cleaning took a citation out of the middle: the raw text is not the rated one
    found = frame_pair("Paris and Lyon", "Rome", (row("Paris and Lyon", "Paris [1] and Lyon"), row("Rome", "Rome")))
    assert (found.chosen, found.rejected, found.text, found.prompt) == ("Paris and Lyon", "Rome", "shown", EXACT)
    # a row of another answer (the item's answer is not the row's prediction) gives no raw text either
    assert answer_text(row("Lyon", "Lyon"), "Paris") == ""
    assert answer_text({"prediction": "Paris", "raw": math.nan}, "Paris") == ""  # a gap in an MLflow table


def test_answers_asked_in_different_prompts_keep_the_chosen_ones_and_their_shown_texts():
    # an evidence-style adapter against short answers: the raw texts would differ in format, not in content
    found = frame_pair("Paris", "Lyon", (row("Paris", "Evidence: x Answer: Paris", OTHER), row("Lyon", "Lyon")))
    assert (found.chosen, found.rejected, found.text, found.prompt) == ("Paris", "Lyon", "shown", CHOSENS)
    assert found.messages == OTHER


def test_a_prompt_known_for_one_answer_only_is_kept_and_said():
    found = frame_pair("Paris", "Lyon", ({"prediction": "Paris"}, row("Lyon", "Lyon")))
    assert (found.prompt, found.messages, found.text) == (ONE_KNOWN, ASKED, "shown")


def test_rows_without_prompts_leave_the_prompt_to_training():
    old = {"prediction": "Paris", "raw": "Paris.", "context": "x"}
    for rows in ((old, {"prediction": "Lyon", "raw": "Lyon"}), (None, None)):
        found = frame_pair("Paris", "Lyon", rows)
        assert (found.messages, found.prompt, found.chosen, found.text) == (None, REBUILT, "Paris", "shown")


def test_an_empty_answer_makes_a_pair_only_through_its_raw_output():
    # the evidence answer cut off by the token limit cleans to nothing: the model's text is still a rejected reply
    found = frame_pair("Paris", "", (row("Paris", "Paris"), row("", "Evidence: the city")))
    assert (found.rejected, found.problem) == ("Evidence: the city", "")
    assert frame_pair("Paris", "", (None, None)).problem == "empty_answer"
    assert frame_pair("Paris", " Paris", (None, None)).problem == "same_answer"


def test_contexts_keep_titles_where_known_else_the_passages_untitled():
    assert contexts_of("one\n\n two \n") == (Context("", "one"), Context("", "two"))
    sources = [{"title": "A", "text": "one"}, {"title": "", "text": ""}, {"text": "two"}]
    assert contexts_of("ignored", sources) == (Context("A", "one"), Context("", "two"))
    assert contexts_of(math.nan) == ()
