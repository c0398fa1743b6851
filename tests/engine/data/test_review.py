"""The review queue on real HotpotQA records: decisions, applying them, drafts that survive a reload, saving."""

from __future__ import annotations

import json

import pytest

from engine.cli.data import main as data_main
from engine.data.review import (
    Decision,
    apply_review,
    decide,
    discard_decisions,
    draft_path,
    load_decisions,
    parse_decisions,
    record_decisions,
    review_counts,
    save_review,
    table_changes,
)
from engine.errors import InputError, NotFoundError
from engine.qa.schema import QARecord
from engine.qa.versions import DatasetStore


@pytest.fixture
def records(hotpot_records):
    return hotpot_records(6)


@pytest.fixture
def decisions(records) -> dict[str, Decision]:
    """Pair 0 accepted, 1 rejected, 2 a new answer, 3 a new question; 4 and 5 undecided."""
    return {
        records[0].id: decide(records[0], "accept", records[0].question, records[0].answer),
        records[1].id: decide(records[1], "reject"),
        records[2].id: decide(records[2], "accept", records[2].question, f"  {records[2].answer} (checked)  "),
        records[3].id: decide(records[3], "edit", "Which of them was born first?", records[3].answer),
    }


def test_apply_review_marks_replaces_and_drops(records, decisions) -> None:
    out = apply_review(records, decisions)
    assert [r.question for r in out] == [records[0].question, records[2].question, "Which of them was born first?",
                                         records[4].question, records[5].question]  # fmt: skip
    accepted, answer_edit, question_edit, *undecided = out
    assert accepted.id == records[0].id and accepted.metadata == {**records[0].metadata, "review": "accepted"}
    assert answer_edit.answer == f"{records[2].answer} (checked)" and answer_edit.id != records[2].id
    assert question_edit.answer == records[3].answer and question_edit.id != records[3].id
    for edited, old in ((answer_edit, records[2]), (question_edit, records[3])):
        assert (edited.contexts, edited.doc_ids) == (old.contexts, old.doc_ids)
        assert edited.metadata == {**old.metadata, "origin": old.id, "review": "edited"}
    assert undecided == records[4:] and [r.metadata for r in undecided] == [r.metadata for r in records[4:]]
    only = apply_review(records, decisions, keep_undecided=False)
    assert [r.id for r in only] == [r.id for r in out[:3]]
    assert review_counts(records, decisions) == {"accepted": 1, "edited": 2, "rejected": 1, "left": 2}


def test_decide_keeps_what_was_typed_and_refuses_empty_texts(records) -> None:
    r = records[0]
    assert decide(r, "edit", f" {r.question} ", r.answer) == Decision("accept")  # nothing really changed
    assert decide(r, "accept", r.question, "Yes") == Decision("edit", answer="Yes")  # a change is never lost
    assert decide(r, "reject", "", "") == Decision("reject")
    with pytest.raises(InputError, match="cannot leave the question empty"):
        decide(r, "edit", "   ", r.answer)
    with pytest.raises(InputError, match="cannot leave the answer empty"):
        decide(r, "accept", r.question, "")
    with pytest.raises(InputError, match="Unknown review decision 'maybe'"):
        decide(r, "maybe")
    with pytest.raises(InputError, match="a new question, a new answer, or both"):
        Decision("edit")
    with pytest.raises(InputError, match="Only an edit"):
        Decision("reject", answer="x")


def test_bad_decisions_are_clear_messages(records, decisions) -> None:
    assert parse_decisions({"decisions": {"abc": "Accept", "def": {"action": "edit", "answer": "B"}}}) == {
        "abc": Decision("accept"), "def": Decision("edit", answer="B")}  # fmt: skip
    with pytest.raises(InputError, match="Record abc: A decision is"):
        parse_decisions({"abc": 5})
    with pytest.raises(InputError, match="Record abc: An edit cannot leave the answer empty"):
        parse_decisions({"abc": {"action": "edit", "answer": ""}})
    with pytest.raises(InputError, match="1 decisions name records that are not in this version: nope"):
        apply_review(records, {**decisions, "nope": Decision("accept")})
    same = [records[4], QARecord(records[4].question + " really?", records[4].answer, records[4].contexts)]
    with pytest.raises(InputError, match="is now the same as another pair"):  # one id twice in a version
        apply_review(same, {same[1].id: Decision("edit", question=records[4].question)})


def test_a_reviewed_table_gives_only_what_changed(records, decisions) -> None:
    rows = [{"id": r.id, "decision": "undecided", "question": r.question, "answer": r.answer} for r in records]
    rows[0]["decision"] = "accept"  # as before: no change
    rows[1] |= {"decision": "undecided"}  # was rejected: undecided again
    rows[2] |= {"decision": "reject"}  # was edited: rejected, whatever its texts
    rows[3] |= {"decision": "edit", "question": "Which of them was born first?"}  # the edit, as the table shows it
    rows[4] |= {"answer": "Chicago"}  # undecided with a new answer: an edit
    rows[5] |= {"decision": "edit"}  # an edit that changes nothing: accepted
    changes = table_changes(records, decisions, rows)
    assert changes == {
        records[1].id: None,
        records[2].id: Decision("reject"),
        records[4].id: Decision("edit", answer="Chicago"),
        records[5].id: Decision("accept"),
    }
    rows[5] |= {"question": None}  # a cleared cell
    with pytest.raises(InputError, match="cannot leave the question empty"):
        table_changes(records, decisions, rows)


def test_decisions_survive_a_reload_and_save_a_child_version(settings, records, decisions) -> None:
    store = DatasetStore(settings)
    parent = store.save("hp-review", records, note="imported")
    with pytest.raises(InputError, match="No decision yet on hp-review@"):
        save_review(settings, "hp-review", parent.id)
    for record_id, decision in decisions.items():  # one at a time, as the page records them
        record_decisions(settings, "hp-review", parent.id, {record_id: decision})
    record_decisions(settings, "hp-review", parent.id, {records[4].id: Decision("accept")})
    record_decisions(settings, "hp-review", parent.id, {records[4].id: None})  # undecided again
    path = draft_path(settings, "hp-review", parent.id)
    assert path.parent == settings.data_dir / "datasets" / "hp-review" / ".reviews"
    assert load_decisions(settings, "hp-review", parent.id) == decisions  # what a reloaded page reads
    assert [m.id for m in store.versions("hp-review")] == [parent.id] and store.datasets() == ["hp-review"]

    manifest, counts = save_review(settings, "hp-review", parent.id)
    assert manifest.parent == parent.id and manifest.id != parent.id
    assert manifest.note == "review: 1 accepted, 2 edited, 1 rejected, 2 undecided kept"
    assert manifest.counts["records"] == 5 and manifest.counts["review"] == counts == review_counts(records, decisions)
    saved = store.load("hp-review", manifest.id)
    assert saved == apply_review(records, decisions)
    assert {r.metadata.get("origin") for r in saved if r.metadata.get("review") == "edited"} == {
        records[2].id, records[3].id}  # fmt: skip
    assert path.is_file()  # the draft stays: saving again from it gives the same version
    assert save_review(settings, "hp-review", parent.id)[0].id == manifest.id
    only, _ = save_review(settings, "hp-review", parent.id, keep_undecided=False)
    assert only.counts["records"] == 3 and only.note.endswith("2 undecided dropped")

    assert discard_decisions(settings, "hp-review", parent.id) and not path.exists()
    assert load_decisions(settings, "hp-review", parent.id) == {}
    assert not discard_decisions(settings, "hp-review", parent.id)


def test_drafts_of_unknown_versions_damaged_drafts_and_rejecting_everything(settings, records) -> None:
    store = DatasetStore(settings)
    version = store.save("hp-review", records[:2]).id
    with pytest.raises(NotFoundError, match="has no version 'nope'"):
        load_decisions(settings, "hp-review", "nope")
    with pytest.raises(InputError, match="Invalid dataset name"):
        record_decisions(settings, "../escape", version, {})
    path = draft_path(settings, "hp-review", version)
    path.parent.mkdir(parents=True)
    path.write_text("{half a file")
    with pytest.raises(InputError, match="cannot be read .*discard them to start again"):
        load_decisions(settings, "hp-review", version)
    assert discard_decisions(settings, "hp-review", version)
    record_decisions(settings, "hp-review", version, {r.id: Decision("reject") for r in records[:2]})
    with pytest.raises(InputError, match="Every pair was rejected or left undecided"):
        save_review(settings, "hp-review", version)


def test_the_review_command_line(settings, records, decisions, tmp_path, capsys) -> None:
    parent = DatasetStore(settings).save("hp-review", records).id
    file = tmp_path / "decisions.json"
    file.write_text(json.dumps({k: d.to_dict() for k, d in decisions.items()}))
    assert data_main(["review", f"hp-review@{parent}", "--decisions", str(file), "--only-reviewed"]) == 0
    out = capsys.readouterr().out
    assert f"(parent {parent}, 3 records): review: 1 accepted, 2 edited, 1 rejected, 2 undecided dropped" in out
    file.write_text('{"x": "maybe"}')
    assert data_main(["review", f"hp-review@{parent}", "--decisions", str(file)]) == 2
    assert "Record x: Unknown review decision 'maybe'" in capsys.readouterr().err
