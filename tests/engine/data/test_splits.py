"""Document-grouped, topic-stratified splits of real HotpotQA records, and the leakage check."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace

import pytest

import engine.data.splits as splits_module
from engine.data.splits import SPLITS, SplitSpec, check_leakage, split_records
from engine.errors import InputError
from engine.qa.schema import QARecord

N_RECORDS = 300


@pytest.fixture(scope="module")
def records(hotpot_records) -> list[QARecord]:
    return hotpot_records(N_RECORDS)


def ids(split: dict[str, list[QARecord]]) -> dict[str, list[str]]:
    return {name: [r.id for r in rows] for name, rows in split.items()}


def home(split: dict[str, list[QARecord]], record_id: str) -> str:
    return next(name for name, rows in split.items() if any(r.id == record_id for r in rows))


def test_sizes_are_about_80_10_10_and_each_record_is_marked(records):
    split = split_records(records)
    assert list(split) == list(SPLITS)
    for name, share in (("train", 0.8), ("validation", 0.1), ("test", 0.1)):
        assert abs(len(split[name]) - share * len(records)) <= 3
        assert all(r.metadata["split"] == name for r in split[name])
    assert sorted(r.id for rows in split.values() for r in rows) == sorted(r.id for r in records)
    assert all("split" not in r.metadata for r in records)  # copies: the input is unchanged


def test_other_fractions_deal_folds_by_fraction(records):
    split = split_records(records, SplitSpec(train=0.7, validation=0.15, test=0.15))
    assert [len(split[name]) for name in SPLITS] == pytest.approx([210, 45, 45], abs=4)


def test_each_document_stays_in_one_split_even_through_chains(records):
    # HotpotQA questions share supporting paragraphs; plant a chain a-x, b-(x, y), c-y as well.
    x, y = records[0].doc_ids[0], records[1].doc_ids[0]
    chain = [replace(records[2], doc_ids=(x,)), replace(records[3], doc_ids=(x, y)), replace(records[4], doc_ids=(y,))]
    pool = records[5:] + chain
    assert any(n > 1 for n in Counter(d for r in records for d in r.doc_ids).values())
    for seed in range(3):
        split = split_records(pool, SplitSpec(seed=seed))
        homes: dict[str, set[str]] = {}
        for name, rows in split.items():
            for r in rows:
                for d in r.doc_ids:
                    homes.setdefault(d, set()).add(name)
        assert all(len(names) == 1 for names in homes.values())
        assert len({home(split, r.id) for r in chain}) == 1


def test_topic_shares_stay_close_across_splits(records):
    split = split_records(records)
    overall = sum(r.metadata["topic"] == "comparison" for r in records) / len(records)
    for rows in split.values():
        share = sum(r.metadata["topic"] == "comparison" for r in rows) / len(rows)
        assert abs(share - overall) < 0.04


def test_same_seed_same_split_whatever_the_order_and_another_seed_differs(records):
    split = split_records(records, SplitSpec(seed=7))
    shuffled = list(records)
    random.Random(1).shuffle(shuffled)
    assert ids(split_records(shuffled, SplitSpec(seed=7))) == ids(split)
    other = split_records(records, SplitSpec(seed=8))
    assert set(ids(other)["test"]) != set(ids(split)["test"])


def test_records_without_documents_are_their_own_groups(records):
    loose = [replace(r, doc_ids=()) for r in records[:3]]
    split = split_records(loose)
    assert [len(split[name]) for name in SPLITS] == [1, 1, 1]


def test_too_few_document_groups_is_an_input_error(records):
    one_document = [replace(r, doc_ids=("Same Book",)) for r in records[:20]]
    with pytest.raises(InputError, match="2 separate document group"):
        split_records(one_document + [replace(records[20], doc_ids=("Other",))])
    with pytest.raises(InputError, match="document group"):
        split_records([])


@pytest.mark.parametrize(
    "fractions", [(0.8, 0.1, 0.2), (1.0, 0.0, 0.0), (0.9, -0.1, 0.2), (0.5, 0.3, 0.3), (0.7, 0.2, 0.09)]
)
def test_bad_fractions_are_an_input_error(fractions):
    train, validation, test = fractions
    with pytest.raises(InputError):
        SplitSpec(train=train, validation=validation, test=test)


def never_embed(texts):
    pytest.fail("a bad threshold must be refused before anything is embedded")


@pytest.mark.parametrize("threshold", [0.0, -0.5, 1.5])
def test_bad_threshold_is_an_input_error(threshold):
    with pytest.raises(InputError, match="threshold"):
        check_leakage({"train": [], "test": []}, never_embed, threshold)


@pytest.mark.slow
def test_a_real_split_of_real_records_has_no_leaks(records, embed):
    report = check_leakage(split_records(records), embed)
    assert report.clean, report.counts()
    assert report.counts() == {"shared_documents": 0, "near_duplicates": 0, "identical_answer_context": 0}
    assert report.threshold == 0.95


@pytest.mark.slow
def test_planted_leaks_are_found(records, embed, monkeypatch):
    monkeypatch.setattr(splits_module, "CHUNK", 16)  # several chunks per split pair, edges included
    split = split_records(records)
    original, copied, documented = records[0], records[1], records[2]

    def elsewhere(record: QARecord) -> str:
        return next(name for name in SPLITS if name != home(split, record.id))

    # A copy under a new id, without its document ids (so grouping could not have caught it).
    copy = replace(copied, doc_ids=(), id="planted-copy")
    # A paraphrase of a real question, with another answer and no context.
    assert original.question == "Between Harvey Pekar and Denise Levertov who was born earlier?"
    paraphrase = QARecord("Between Denise Levertov and Harvey Pekar, who was born earlier?", "Harvey Pekar")
    # A new question on a document that another split already uses.
    doc = documented.doc_ids[0]
    sharing = QARecord("How many letters are in this document's title?", "seven", doc_ids=(doc,))
    planted = {name: list(rows) for name, rows in split.items()}
    planted[elsewhere(copied)].append(copy)
    planted[elsewhere(original)].append(paraphrase)
    planted[elsewhere(documented)].append(sharing)

    report = check_leakage(planted, embed)

    def ordered(a: QARecord, b: QARecord) -> tuple[str, str]:
        pair = (home(planted, a.id), home(planted, b.id))
        return (a.id, b.id) if SPLITS.index(pair[0]) < SPLITS.index(pair[1]) else (b.id, a.id)

    assert not report.clean
    homes = sorted([home(planted, documented.id), home(planted, sharing.id)], key=SPLITS.index)
    assert report.shared_documents == [(doc, *homes)]
    assert report.identical_answer_context == [ordered(copied, copy)]
    found = {(a, b): cosine for a, b, cosine in report.near_duplicates}
    assert set(found) == {ordered(copied, copy), ordered(original, paraphrase)}
    assert found[ordered(copied, copy)] == pytest.approx(1.0, abs=1e-5)
    assert 0.95 <= found[ordered(original, paraphrase)] < 1.0
    assert report.counts() == {"shared_documents": 1, "near_duplicates": 2, "identical_answer_context": 1}
    # A stricter threshold drops the paraphrase but keeps the exact copy.
    strict = check_leakage(planted, embed, threshold=0.999)
    assert [(a, b) for a, b, _ in strict.near_duplicates] == [ordered(copied, copy)]
