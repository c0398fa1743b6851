"""Questions without a gold answer: imported as questions only, never trained on, judged for
groundedness by the local judge, reported apart from F1."""

from __future__ import annotations

import json

import pytest

from engine.data.steps import import_source
from engine.errors import InputError
from engine.evaluation.grounding import grounding_messages, judge_grounding, read_support
from engine.evaluation.qa_sets import load_qa_set
from engine.evaluation.runner import EvalSpec, aggregate, format_table, run_evaluation
from engine.qa.records import read_records
from engine.qa.schema import NO_GOLD, QARecord
from engine.qa.versions import DatasetStore


def test_replies_read_as_supported_or_not() -> None:
    assert read_support("Yes.") == 1.0 and read_support(" yes, the sources say so") == 1.0
    assert read_support("No") == 0.0 and read_support("Not supported.") == 0.0
    assert read_support("\n\nSupported") == 1.0 and read_support("The answer is unsupported") == 0.0
    assert read_support("") is None and read_support("Paris is the capital") is None
    messages = grounding_messages("Who?", "Ann", "[1] Ann wrote it.")
    assert messages[0]["role"] == "system" and "[1] Ann wrote it." in messages[1]["content"]
    assert "Answer: Ann" in messages[1]["content"] and "(no sources)" in grounding_messages("Q?", "A", "")[1]["content"]


def test_a_questions_only_file_imports_without_answers_but_one_missing_answer_is_still_an_error() -> None:
    lines = [json.dumps({"question": f"What does part {i} do?"}) for i in range(3)]
    result = read_records("\n".join(lines).encode(), name="people.jsonl")
    assert result.format == "questions" and [r.answer for r in result.records] == ["", "", ""]
    assert all(r.metadata[NO_GOLD] is True and not r.has_gold for r in result.records)
    csv = "question,context\nWhat is it for?,The tool is for notes.\n"
    (record,) = read_records(csv.encode(), name="people.csv").records
    assert record.metadata[NO_GOLD] and record.contexts[0].text == "The tool is for notes."
    # stored and read back (versions are read as studio records)
    assert QARecord.from_dict(record.to_dict()) == record
    mixed = [json.dumps({"question": "Fine?", "answer": "Yes"}), json.dumps({"question": "Forgotten?"})]
    with pytest.raises(InputError, match='line 2: missing or empty "answer"'):
        read_records("\n".join(mixed).encode(), name="mixed.jsonl")
    with pytest.raises(InputError, match="empty answer"):
        QARecord("A question?", "")


@pytest.mark.slow
def test_the_judge_answers_for_each_answer_and_skips_empty_ones(generator) -> None:
    items = [("Who wrote it?", "Ann", "[1] Ann wrote the book."), ("Who wrote it?", "", "[1] Ann wrote it.")]
    scores, replies = judge_grounding(generator, items, batch_size=2)
    assert scores[1] == 0.0 and replies[1] == ""  # an empty answer supports nothing: not asked
    assert scores[0] in (0.0, 1.0, None) and replies[0].strip()
    assert read_support(replies[0]) == scores[0]


@pytest.mark.slow
def test_questions_without_gold_are_judged_apart_from_f1(collection, settings, generator, embedder, store, tmp_path):
    qa = load_qa_set(settings, "notes-qa", "")  # all 24 questions
    people = tmp_path / "people.jsonl"
    people.write_text("".join(json.dumps({"question": i.question}) + "\n" for i in qa.items[:3]), encoding="utf-8")
    graded = tmp_path / "graded.jsonl"
    graded.write_text("".join(json.dumps({"question": i.question, "answer": i.answer}) + "\n" for i in qa.items[3:5]),
                      encoding="utf-8")  # fmt: skip
    import_source(settings, "asked", str(people))
    version = DatasetStore(settings).versions("asked")[0].id
    records = DatasetStore(settings).load("asked", version) + read_records(graded).records
    DatasetStore(settings).save("asked", records, parent=version)

    spec = EvalSpec(dataset="asked", mode="kb", kb="notes", k=3, batch_size=4, max_new_tokens=12)
    result = run_evaluation(spec, generator, embedder, store, settings, judge=generator)
    ungraded = [r for r in result.rows if not r["gold"]]
    assert len(ungraded) == 3 and result.metrics["questions_without_gold"] == 3
    assert all(r["f1"] is None and r["em"] is None and r["recall@5"] is None for r in ungraded)
    assert all(r["groundedness"] in (0.0, 100.0, None) and "judge_reply" in r for r in ungraded)
    graded_rows = [r for r in result.rows if r["gold"]]
    assert all(r["groundedness"] is None and isinstance(r["f1"], float) for r in graded_rows)
    # F1 is the mean over the two graded questions only, groundedness over the judged ones only
    assert result.metrics["f1"] == pytest.approx(sum(r["f1"] for r in graded_rows) / 2)
    judged = [r["groundedness"] for r in ungraded if r["groundedness"] is not None]
    assert result.metrics.get("groundedness") == (pytest.approx(sum(judged) / len(judged)) if judged else None)
    assert "3 of 5 questions have no gold answer" in format_table(result)


def test_training_leaves_out_questions_without_gold(settings, collection_records) -> None:
    from engine.finetune.inputs import qa_splits
    from engine.finetune.presets import COLLECTION, preset_spec

    records, _ = collection_records(6)
    asked = [QARecord(r.question, "", r.contexts, r.doc_ids, {NO_GOLD: True, "split": "train"}) for r in records[:3]]
    graded = [r.with_metadata(split=s) for r, s in zip(records[3:], ("train", "validation", "validation"), strict=True)]
    DatasetStore(settings).save("mixed", asked + graded)
    train, val = qa_splits(preset_spec(COLLECTION.name, dataset="mixed"), settings)
    assert [i.id for i in train.items] == [graded[0].id] and len(val.items) == 2
    DatasetStore(settings).save("only-asked", asked + graded[1:])
    with pytest.raises(InputError, match="no question with a gold answer"):
        qa_splits(preset_spec(COLLECTION.name, dataset="only-asked"), settings)


def test_means_leave_out_questions_without_the_metric() -> None:
    rows = [{"f1": 50.0, "groundedness": None}, {"f1": None, "groundedness": 100.0}, {"f1": 0.0, "groundedness": None}]
    assert aggregate(rows) == {"f1": 25.0, "groundedness": 100.0}
    assert aggregate([{"f1": None}]) == {}
