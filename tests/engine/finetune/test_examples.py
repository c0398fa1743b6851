"""Training examples: grounded and Dolly examples, evidence targets, mixing."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from engine.errors import InputError
from engine.evaluation.hotpotqa import QAItem, load_hotpotqa
from engine.evaluation.instructions import DOLLY_SYSTEM, dolly_examples
from engine.finetune.examples import (
    Example,
    MixSpec,
    RagExampleSpec,
    mix,
    rag_examples,
    shown_evidence,
    top_with_gold,
    without_gold,
)
from engine.rag.hits import Hit
from engine.rag.retriever import PoolRetriever

SOURCE_LINE = re.compile(r"^\[(\d+)\] ", re.MULTILINE)


@pytest.fixture(scope="module")
def hotpot_path(shared_data):
    return shared_data / "hotpotqa-dev.jsonl"


@pytest.fixture(scope="module")
def items(hotpot_path) -> list[QAItem]:
    return load_hotpotqa(hotpot_path, limit=40)


def source_titles(example: Example, item: QAItem) -> list[str]:
    """The paragraph title of each numbered source of the example's last user turn, in order."""
    lines = [line for line in example.messages[-1]["content"].splitlines() if SOURCE_LINE.match(line)]
    titles = sorted({t for t, _ in item.paragraphs}, key=len, reverse=True)
    return [next(t for t in titles if SOURCE_LINE.sub("", line).startswith(f"{t}: ")) for line in lines]


# --- grounded HotpotQA examples ---


def test_rag_examples_hold_gold_and_distractors(items):
    for distractors in (0, 2, 3):
        examples = rag_examples(items, RagExampleSpec(distractors=distractors))
        assert len(examples) == len(items)
        for example, item in zip(examples, items, strict=True):
            titles = source_titles(example, item)
            gold = [t for t in titles if t in item.supporting_titles]
            others = len(item.paragraphs) - len([p for p in item.paragraphs if p[0] in item.supporting_titles])
            assert set(gold) == set(item.supporting_titles)
            assert len(titles) - len(gold) == min(distractors, others)
            assert example.answer == item.answer and example.id == item.id and example.source == "hotpotqa"
            assert example.messages[-1]["role"] == "user" and example.messages[-1]["content"].endswith(
                item.question.strip()
            )


def test_rag_examples_are_reproducible_and_order_independent(items):
    first = rag_examples(items)
    assert rag_examples(items) == first
    assert rag_examples(items[::-1])[::-1] == first
    other = rag_examples(items, RagExampleSpec(seed=1))
    orders = [(source_titles(a, i), source_titles(b, i)) for a, b, i in zip(first, other, items, strict=True)]
    assert any(x != y for x, y in orders)


def test_rag_examples_prompt_shape(items):
    closed = rag_examples(items[:1])[0]
    assert [m["role"] for m in closed.messages] == ["system", "user"]
    few = rag_examples(items[:1], RagExampleSpec(few_shot=True))[0]
    assert [m["role"] for m in few.messages] == ["system"] + ["user", "assistant"] * 3 + ["user"]
    short = rag_examples(items[:1], RagExampleSpec(max_source_chars=20))[0]
    assert all(len(SOURCE_LINE.sub("", line)) < 200 for line in short.messages[-1]["content"].splitlines()[1:-2])


def test_retrieved_sources_follow_the_retriever_and_keep_the_gold(items, embedder):
    items = items[:12]
    retriever = PoolRetriever(embedder, {it.question: it.paragraphs for it in items})
    ranked = retriever.retrieve([it.question for it in items], 10)
    examples = rag_examples(items, RagExampleSpec(sources="retrieved", k=5), retriever)
    assert [e.id for e in examples] == [it.id for it in items]
    missed = 0
    for example, item, hits in zip(examples, items, ranked, strict=True):
        titles = source_titles(example, item)
        order = [h.title for h in hits]
        assert len(titles) == 5 and set(item.supporting_titles) <= set(titles)
        assert titles == sorted(titles, key=order.index)  # the retriever's order
        others = [t for t in titles if t not in item.supporting_titles]
        assert others == [t for t in order if t not in item.supporting_titles][: len(others)]  # its best others
        missed += not set(item.supporting_titles) <= set(order[:5])
    assert missed, "some questions have a gold paragraph ranked below 5 (the case the swap is for)"


def test_top_with_gold_swaps_the_weakest_distractors():
    item = QAItem("q", "question?", "a", ("G1", "G2"))
    ranked = [Hit(t, t, f"text of {t}", "context", 1.0) for t in ("D1", "G1", "D2", "D3", "D4", "G2")]
    assert [t for t, _ in top_with_gold(item, ranked, 3)] == ["D1", "G1", "G2"]
    assert [t for t, _ in top_with_gold(item, ranked, 6)] == ["D1", "G1", "D2", "D3", "D4", "G2"]
    assert [t for t, _ in top_with_gold(item, ranked, 1)] == ["G1", "G2"]  # never fewer than the gold


def test_retrieved_sources_need_a_retriever_and_a_known_kind(items):
    with pytest.raises(ValueError, match="retriever"):
        rag_examples(items[:1], RagExampleSpec(sources="retrieved"))
    with pytest.raises(InputError, match="Unknown training sources"):
        RagExampleSpec(sources="random")
    with pytest.raises(InputError, match="k"):
        RagExampleSpec(sources="retrieved", k=0)


def test_rag_examples_skip_items_without_gold(items):
    item = items[0]
    lost = QAItem("lost", item.question, item.answer, ("No Such Title",), item.paragraphs)
    assert without_gold([lost, item]) == ["lost"]
    assert [e.id for e in rag_examples([lost, item])] == [item.id]
    with pytest.raises(InputError):
        RagExampleSpec(distractors=-1)


def test_supporting_sentences_are_hotpotqas_marked_facts(items, hotpot_path):
    records = [json.loads(line) for line in hotpot_path.read_text(encoding="utf-8").splitlines()[: len(items)]]
    for item, record in zip(items, records, strict=True):
        sentences = {title: s for title, s in record["context"]}
        expected = [(t, sentences[t][i].strip()) for t, i in record["supporting_facts"]]
        assert list(item.supporting_sentences) == list(dict.fromkeys(expected))
        for title, sentence in item.supporting_sentences:
            assert sentence and sentence in dict(item.paragraphs)[title]


def test_evidence_targets_quote_the_shown_supporting_sentences_then_answer(items):
    spec = RagExampleSpec(answer_style="evidence", max_source_chars=450)
    examples = rag_examples(items, spec)
    quoted = 0
    for example, item in zip(examples, items, strict=True):
        evidence, _, answer = example.answer.rpartition("Answer: ")
        assert answer == item.answer and "\n" not in example.answer  # one line: the newline stop ends it
        assert example.messages[0]["content"].startswith("Quote the sentences")
        prompt = example.messages[-1]["content"]
        if evidence:
            quoted += 1
            assert evidence.startswith("Evidence: ")
            sentences = [s for t, s in item.supporting_sentences if s in evidence]
            assert sentences and all(s in prompt for s in sentences)  # only what the sources show
        else:
            assert example.answer == f"Answer: {item.answer}"
    assert quoted >= 0.9 * len(items)


def test_shown_evidence_leaves_out_cut_sentences_and_puts_the_answer_last():
    item = QAItem(
        "q", "Where was the director of Film born?", "Lyon", ("Film", "Ann"),
        (("Film", "Film is a film by Ann. It is long."), ("Ann", "Ann was born in Lyon. She has a cat.")),
        supporting_sentences=(("Ann", "Ann was born in Lyon."), ("Film", "Film is a film by Ann."),
                              ("Film", "It is long.")),
    )  # fmt: skip
    chosen = [item.paragraphs[1], item.paragraphs[0]]
    assert shown_evidence(item, chosen, 400) == ["Film is a film by Ann.", "It is long.", "Ann was born in Lyon."]
    assert shown_evidence(item, chosen, 22) == ["Film is a film by Ann.", "Ann was born in Lyon."]
    assert shown_evidence(item, chosen, 5) == []
    with pytest.raises(InputError, match="answer style"):
        RagExampleSpec(answer_style="essay")


# --- Dolly ---


def test_dolly_examples_context_only_when_there_is_one(shared_data):
    path = shared_data / "dolly-15k-mini.jsonl"
    examples = dolly_examples(path)
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    assert len(examples) == len(records) == 2995
    for n in range(0, len(records), 97):
        example, record = examples[n], records[n]
        assert example.id == f"dolly-{n}" and example.source == "dolly"
        assert example.messages[0] == {"role": "system", "content": DOLLY_SYSTEM}
        user = example.messages[1]["content"]
        if record["context"].strip():
            assert user == f"{record['instruction'].strip()}\n\nContext:\n{record['context'].strip()}"
        else:
            assert user == record["instruction"].strip() and "Context:" not in user
        assert example.answer == record["response"].strip()
    closed = dolly_examples(path, categories=("closed_qa",))
    assert len(closed) == 147 and all(e.id in {x.id for x in examples} for e in closed)
    kept = dolly_examples(path, categories=("closed_qa",), exclude_ids=[e.id for e in closed[:47]])
    assert [e.id for e in kept] == [e.id for e in closed[47:]]
    with pytest.raises(InputError, match="no category"):
        dolly_examples(path, categories=("poetry",))


# --- mixing ---


def pool(name: str, n: int) -> list[Example]:
    return [Example(({"role": "user", "content": f"{name} {i}"},), str(i), name, f"{name}-{i}") for i in range(n)]


POOLS = {"a": pool("a", 600), "b": pool("b", 500), "c": pool("c", 50)}


def test_mix_ratios_without_repeats():
    examples, report = mix(POOLS, MixSpec((("a", 3.0), ("b", 1.0)), total=400, seed=5))
    assert Counter(e.source for e in examples) == {"a": 300, "b": 100}
    assert len({e.id for e in examples}) == 400 and report.counts == {"a": 300, "b": 100} and not report.notes
    assert mix(POOLS, MixSpec((("a", 3.0), ("b", 1.0)), total=400, seed=5))[0] == examples
    assert [e.source for e in examples[:20]] != sorted(e.source for e in examples[:20])  # shuffled
    odd, _ = mix(POOLS, MixSpec((("a", 1.0), ("b", 1.0), ("c", 1.0)), total=100))
    assert sorted(Counter(e.source for e in odd).values()) == [33, 33, 34]


def test_mix_default_total_keeps_the_ratio():
    examples, report = mix(POOLS, MixSpec((("a", 0.75), ("b", 0.25))))
    assert report.counts == {"a": 600, "b": 200} and len({e.id for e in examples}) == 800
    everything, _ = mix(POOLS, MixSpec((("a", 1.0), ("c", 0.0))))
    assert len(everything) == 600 and {e.source for e in everything} == {"a"}
    assert len(mix({"hotpotqa": POOLS["a"] + POOLS["a"][:10]})[0]) == 600  # repeated ids count once


def test_mix_small_pool_gives_all_it_has():
    examples, report = mix(POOLS, MixSpec((("a", 0.5), ("c", 0.5)), total=200))
    assert report.counts == {"a": 100, "c": 50} and len(examples) == 150
    assert "c has only 50 of the 100" in report.notes[0]


def test_mix_errors():
    with pytest.raises(InputError, match="Unknown pool"):
        mix(POOLS, MixSpec((("hotpotqa", 1.0),)))
    with pytest.raises(InputError, match="0 or more"):
        mix(POOLS, MixSpec((("a", 1.0), ("b", -0.5))))
    with pytest.raises(InputError, match="zero"):
        mix(POOLS, MixSpec((("a", 0.0), ("b", 0))))
    with pytest.raises(InputError, match="training set is empty"):
        mix({"a": []}, MixSpec((("a", 1.0),)))
    with pytest.raises(InputError, match="Pool d has no examples"):
        mix({**POOLS, "d": []}, MixSpec((("a", 1.0), ("d", 1.0))))
    with pytest.raises(InputError, match="only once"):
        mix(POOLS, MixSpec((("a", 1.0), ("a", 2.0))))
    with pytest.raises(InputError, match="at least 1"):
        mix(POOLS, MixSpec((("a", 1.0),), total=0))


def test_training_sources_survive_the_stored_spec():
    from engine.finetune.spec import TrainSpec

    spec = TrainSpec(rag=RagExampleSpec(max_source_chars=450, sources="retrieved", k=4), mix=MixSpec.with_shares(0.25))
    assert TrainSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec  # as a run stores and resumes it


def test_trained_per_question_a_descriptive_question_gets_the_sentences_prompt(items):
    from engine.rag.prompt import SENTENCES_SYSTEM, SYSTEM

    text = "The Eiffel Tower is a lattice tower in Paris."
    described = QAItem("d", "What is the Eiffel Tower?", text, ("Eiffel Tower",), (("Eiffel Tower", text),))
    auto, short = RagExampleSpec(answer_style="auto"), RagExampleSpec()
    examples = rag_examples([described, *items[:5]], auto)
    assert [e.messages[0]["content"] for e in examples] == [SENTENCES_SYSTEM] + [SYSTEM] * 5
    assert examples[0].answer == described.answer
    # The factoid questions are made exactly as a short adapter's are.
    assert examples[1:] == rag_examples(items[:5], short)


def test_trained_for_sentences_every_answer_is_the_sources_sentences_that_hold_it(items):
    from engine.finetune.examples import record_examples
    from engine.qa.schema import Context, QARecord
    from engine.rag.prompt import SENTENCES_SYSTEM

    spec = RagExampleSpec(answer_style="sentences")
    examples = rag_examples(items[:8], spec)
    assert {e.messages[0]["content"] for e in examples} == {SENTENCES_SYSTEM}
    quoted = 0
    for item, example in zip(items[:8], examples, strict=True):
        marked = [" ".join(s.split()) for _, s in item.supporting_sentences]
        # HotpotQA's marked facts as shown (at most three, those holding the answer last), else the answer alone
        used = [s for s in marked if s in example.answer]
        assert example.answer == " ".join(sorted(used, key=example.answer.index)) or example.answer == item.answer
        quoted += bool(used)
    assert quoted >= 6
    # A QA set's item has no marked facts: the sentences of its own paragraph that hold the answer.
    text = "Paris is large. The Eiffel Tower was completed in 1889 for the fair. It is tall."
    record = QARecord("When was the Eiffel Tower completed?", "1889", (Context("Eiffel Tower", text),))
    described = QARecord(
        "What is the Eiffel Tower?",
        "The Eiffel Tower is a lattice tower in Paris, France.",
        (Context("Eiffel Tower", "The Eiffel Tower is a lattice tower in Paris, France. Tall."),),
    )
    span, description = record_examples([record, described], spec)
    assert span.answer == "The Eiffel Tower was completed in 1889 for the fair."
    assert description.answer == described.answer  # a descriptive answer is a sentence already
