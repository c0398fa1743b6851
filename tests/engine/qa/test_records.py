"""Reading and writing QA datasets on the shared Dolly and HotpotQA files."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from engine.data.hub import load_hf, save_hf, to_hf_dataset
from engine.errors import InputError
from engine.qa.exports import to_frame, write_csv, write_jsonl
from engine.qa.records import NORMALIZERS, detect_format, normalize_dolly, normalize_hotpotqa, read_records
from engine.qa.schema import Context, QARecord


def raw(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def hotpot(shared_data) -> list[QARecord]:
    return read_records(shared_data / "hotpotqa-dev.jsonl").records


@pytest.fixture(scope="module")
def dolly(shared_data) -> list[QARecord]:
    return read_records(shared_data / "dolly-15k-mini.jsonl").records


def tricky() -> list[QARecord]:
    """Records with what breaks naive writers: quotes, commas, newlines, U+2028, non-ASCII, nested metadata."""
    return [
        QARecord(
            'Who said "yes, and"?\nTwice',
            "Zoë, née O'Brien",
            (Context("Line\u2028separator", 'a, "quoted"\r\nparagraph', "doc,1"), Context("", "second")),
            ("doc,1", "doc 2"),
            {"source": "generated", "scores": {"answer_f1": 0.75, "retrieval_rank": 2}, "tags": ["a", "b"]},
        ),
        QARecord("Plain?", "Plain.", metadata={}),
    ]


def dicts(records) -> list[dict]:
    return [r.to_dict() for r in records]


def test_all_dolly_records_load_with_their_fields_mapped(shared_data, dolly) -> None:
    source = raw(shared_data / "dolly-15k-mini.jsonl")
    assert len(dolly) == len(source) == 2995
    first = dolly[0]
    assert first.question == "How do I start running?" == source[0]["instruction"]
    assert first.answer == source[0]["response"].strip()
    assert (first.contexts, first.doc_ids) == ((), ("dolly-0",))
    assert first.metadata == {"source": "dolly", "category": "general_qa"}
    n = next(i for i, r in enumerate(source) if r["context"].strip())
    with_context = dolly[n]
    assert with_context.contexts == (Context("", source[n]["context"].strip(), f"dolly-{n}"),)
    assert with_context.metadata["category"] == source[n]["category"]
    assert sum(bool(r.contexts) for r in dolly) == sum(bool(r["context"].strip()) for r in source) == 434


def test_all_hotpotqa_records_load_with_paragraphs_and_supporting_titles(shared_data, hotpot) -> None:
    source = raw(shared_data / "hotpotqa-dev.jsonl")
    assert len(hotpot) == len(source) == 1000
    first = hotpot[0]
    assert first.question == "Between Harvey Pekar and Denise Levertov who was born earlier?"
    assert first.answer == "Denise Levertov"
    assert first.doc_ids == ("Harvey Pekar", "Denise Levertov")
    assert [c.title for c in first.contexts] == [title for title, _ in source[0]["context"]]
    assert first.contexts[0] == Context(
        "Gerry Shamray",
        first.contexts[0].text,
        "Gerry Shamray",
    )
    assert first.contexts[0].text.startswith(
        "Gerry Shamray is an American comic book artist. He illustrated many issues of"
    )
    assert first.metadata == {
        "source": "hotpotqa",
        "category": "comparison",
        "level": "hard",
        "hotpotqa_id": "5a7d5c175542991319bc93b1",
        "supporting": ["Harvey Pekar", "Denise Levertov"],
    }
    # supporting facts name a title once per sentence: the doc_ids keep each title once, in order
    repeated = next(
        i for i, r in enumerate(source) if len(r["supporting_facts"]) > len({t for t, _ in r["supporting_facts"]})
    )
    assert hotpot[repeated].doc_ids == tuple(dict.fromkeys(t for t, _ in source[repeated]["supporting_facts"]))
    assert {r.metadata["category"] for r in hotpot} == {"bridge", "comparison"}


def test_normalizers_are_registered_and_formats_detected(shared_data) -> None:
    dolly_raw = raw(shared_data / "dolly-15k-mini.jsonl")[0]
    hotpot_raw = raw(shared_data / "hotpotqa-dev.jsonl")[0]
    assert NORMALIZERS["dolly"] is normalize_dolly and NORMALIZERS["hotpotqa"] is normalize_hotpotqa
    assert detect_format(dolly_raw) == "dolly"
    assert detect_format(hotpot_raw) == "hotpotqa"
    assert detect_format(normalize_hotpotqa(hotpot_raw).to_dict()) == "studio"
    with pytest.raises(InputError, match="unknown record fields \\(body, title\\)"):
        detect_format({"title": "x", "body": "y"})


def test_jsonl_and_csv_round_trips_are_exact(tmp_path, hotpot, dolly) -> None:
    records = hotpot + dolly + tricky()
    for writer, name in ((write_jsonl, "data.jsonl"), (write_csv, "data.csv")):
        path = writer(records, tmp_path / name)
        result = read_records(path)
        assert (result.format, result.problems, result.skipped) == ("studio", (), 0)
        assert dicts(result.records) == dicts(records)
    # uploads are bytes: the format comes from the name, or from the content without one
    assert dicts(read_records((tmp_path / "data.csv").read_bytes()).records) == dicts(records)
    assert dicts(read_records((tmp_path / "data.jsonl").read_bytes(), name="up.jsonl").records) == dicts(records)
    assert not list(tmp_path.glob(".*.tmp"))  # the atomic writes left no temp files


def test_malformed_jsonl_lines_abort_with_their_numbers_or_are_skipped() -> None:
    good = [json.dumps({"question": f"Question {i}?", "answer": f"Answer {i}"}) for i in range(4)]
    lines = [good[0], good[1], '{"question": "broken', good[2], '{"question": "No answer?"}', "[1, 2]", "", good[3]]
    data = "\n".join(lines).encode()
    with pytest.raises(InputError) as error:
        read_records(data, name="planted.jsonl")
    message = str(error.value)
    assert "planted.jsonl has 3 malformed record(s)" in message
    assert "line 3: invalid JSON" in message
    assert 'line 5: missing or empty "answer"' in message
    assert "line 6: not a JSON object" in message
    assert "line 4" not in message and "line 8" not in message
    result = read_records(data, name="planted.jsonl", on_error="skip")
    assert [r.question for r in result.records] == [f"Question {i}?" for i in range(4)]
    assert result.skipped == 3 and [p.split(":")[0] for p in result.problems] == ["line 3", "line 5", "line 6"]


def test_many_bad_lines_list_the_first_ten_and_count_the_rest() -> None:
    lines = [json.dumps({"question": "Fine?", "answer": "Yes"})] + ["not json"] * 13
    with pytest.raises(InputError, match=r"line 11: invalid JSON .*; and 3 more\."):
        read_records("\n".join(lines).encode(), name="many.jsonl")


def test_csv_problems_name_the_file_line_and_plain_context_columns_work(tmp_path) -> None:
    text = (
        "question,answer,context,metadata\n"
        '"Where, exactly?","In the\nsecond line",Some passage,"{""source"": ""csv""}"\n'
        "No answer?,,,\n"
        'Bad metadata?,Yes,,"{not json"\n'
        "Short row?\n"
        "Fine?,Yes,,\n"
    )
    path = tmp_path / "upload.csv"
    path.write_text(text, encoding="utf-8")
    result = read_records(path, on_error="skip")
    assert [p.split(":")[0] for p in result.problems] == ["line 4", "line 5", "line 6"]
    assert 'the "metadata" column is not valid JSON' in result.problems[1]
    first, second = result.records
    assert (first.question, first.answer, first.contexts) == (
        "Where, exactly?",
        "In the\nsecond line",
        (Context("", "Some passage"),),
    )
    assert first.metadata == {"source": "csv"} and second.question == "Fine?"
    with pytest.raises(InputError, match='line 4: missing or empty "answer"'):
        read_records(path)


def test_unreadable_input_gives_a_clear_error(tmp_path) -> None:
    with pytest.raises(InputError, match="latin.jsonl is not UTF-8 text \\(byte 18\\)"):
        read_records('{"question": "Caf\xe9?", "answer": "Oui"}'.encode("latin-1"), name="latin.jsonl")
    with pytest.raises(InputError, match="empty.jsonl is empty"):
        read_records(b" \n\n", name="empty.jsonl")
    with pytest.raises(InputError, match="has no valid record: line 1: invalid JSON"):
        read_records(b"{oops\n", name="bad.jsonl", on_error="skip")
    with pytest.raises(InputError, match="does not exist"):
        read_records(tmp_path / "missing.jsonl")
    with pytest.raises(InputError, match="Unknown record kind 'squad'"):
        read_records(b'{"question": "Q?", "answer": "A"}', kind="squad")
    with pytest.raises(InputError, match="no records to write"):
        write_jsonl([], tmp_path / "none.jsonl")


def test_frame_has_one_row_per_record_and_flattened_metadata(hotpot) -> None:
    records = hotpot[:3] + [tricky()[0].with_metadata(split="train", topic=2, topic_label="Music")]
    frame = to_frame(records)
    assert list(frame.columns[:5]) == ["id", "question", "answer", "n_contexts", "doc_ids"]
    assert {"source", "category", "level", "scores.answer_f1", "split", "topic", "topic_label"} <= set(frame.columns)
    assert frame["id"].tolist() == [r.id for r in records]
    assert frame["n_contexts"].tolist() == [len(r.contexts) for r in records]
    assert frame.loc[0, "doc_ids"] == "Harvey Pekar, Denise Levertov"
    assert frame.loc[3, "scores.answer_f1"] == 0.75 and frame.loc[3, "split"] == "train"


def test_hugging_face_folder_round_trip_is_exact(tmp_path, hotpot, dolly) -> None:
    records = hotpot[:100] + dolly[:100] + tricky()
    dataset = to_hf_dataset(records)
    assert dataset.column_names == ["id", "question", "answer", "contexts", "doc_ids", "metadata"]
    assert dataset[0]["contexts"][0] == {
        "title": "Gerry Shamray",
        "text": hotpot[0].contexts[0].text,
        "doc_id": "Gerry Shamray",
    }
    folder = save_hf(records, tmp_path / "hf")
    result = load_hf(str(folder))
    assert result.format == "studio" and dicts(result.records) == dicts(records)
    with pytest.raises(InputError, match="already exists"):  # an existing export is never replaced unasked
        save_hf(dolly[:5], folder)
    assert dicts(load_hf(str(folder)).records) == dicts(records)
    save_hf(dolly[:5], folder, overwrite=True)  # over the Studio's own export: replaces the folder as a whole
    assert dicts(load_hf(str(folder)).records) == dicts(dolly[:5])
    assert [p.name for p in tmp_path.iterdir()] == ["hf"]


def test_unknown_hub_dataset_offline_is_an_input_error(offline_hub) -> None:
    start = time.monotonic()
    with pytest.raises(
        InputError, match="Could not load the Hugging Face dataset 'studio-tests/no-such-qa' \\(train\\): "
    ):
        load_hf("studio-tests/no-such-qa")
    assert time.monotonic() - start < 20


def test_several_gold_answers_are_kept_and_any_of_them_scores(tmp_path) -> None:
    from engine.evaluation.qa_sets import record_item
    from engine.evaluation.runner import score
    from engine.rag.pipeline import RagAnswer

    lines = [
        {"question": "Who designed the tower?", "title": "Eiffel Tower",
         "answers": {"text": ["Gustave Eiffel", "Eiffel"], "answer_start": [0, 8]},
         "context": "Gustave Eiffel's company designed the tower."},
        {"question": "When was it finished?", "answers": ["1889"]},
        {"question": "Is it tall?", "answers": []},
    ]  # fmt: skip
    found = read_records("\n".join(json.dumps(r) for r in lines).encode(), "squad.jsonl")
    assert found.format == "answers"
    first, second, third = found.records
    assert (first.answer, first.metadata["answers"]) == ("Gustave Eiffel", ["Gustave Eiffel", "Eiffel"])
    assert first.contexts[0].text.startswith("Gustave") and "answers" not in second.metadata
    assert (second.answer, third.answer) == ("1889", "") and third.metadata["no_gold"]  # none: no gold answer
    csv_file = tmp_path / "people.csv"
    csv_file.write_text('question,answers\nWho designed it?,"[""Gustave Eiffel"", ""Eiffel""]"\nWhen?,1889\n')
    assert [r.metadata.get("answers") for r in read_records(csv_file).records] == [["Gustave Eiffel", "Eiffel"], None]
    with pytest.raises(InputError, match="not a list of texts"):
        read_records(json.dumps({"question": "Q?", "answers": [{"a": 1}]}).encode(), "bad.jsonl")

    def answered(text: str) -> RagAnswer:
        return RagAnswer("", text, text, (), (), ())

    rows = score([record_item(first), record_item(second)], [answered("Eiffel"), answered("1889")], False)
    assert [(r["em"], r["f1"]) for r in rows] == [(100.0, 100.0), (100.0, 100.0)]  # the second gold of the first
    alone = score([record_item(QARecord(first.question, first.answer))], [answered("Eiffel")], False)[0]
    assert alone["em"] == 0.0 and alone["f1"] < 100  # against the first gold alone it would not
