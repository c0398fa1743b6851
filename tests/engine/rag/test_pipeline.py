"""The RAG pipeline with the real model over a real Chroma knowledge base; prompts and answer cleaning."""

from __future__ import annotations

from itertools import islice
from pathlib import Path

import pytest

from engine.errors import InputError
from engine.models.generation import SamplingSpec
from engine.rag.chunking import chunk_documents
from engine.rag.documents import load_documents
from engine.rag.hits import Hit
from engine.rag.pipeline import RagAnswer, RagPipeline, find_citations, sampling_for
from engine.rag.prompt import (
    CLOSED_BOOK_SYSTEM,
    EVIDENCE_SYSTEM,
    SYSTEM,
    PromptTemplate,
    cited_numbers,
    clean_answer,
)
from engine.rag.retriever import KnowledgeBaseRetriever
from engine.rag.store import KnowledgeBaseStore
from engine.settings import Settings

KB = "wiki-20"
K = 2
SAMPLING = SamplingSpec(max_new_tokens=10, stop=("\n",))  # short: the tests run on a CPU
# (question, title of the passage that answers it); the passages are the first 20 wiki passages
QUESTIONS = [
    ("Who created the sitcom 'Allo 'Allo!?", "'Allo 'Allo!"),
    ("Which artist is featured on the song (I Can't Make It) Another Day?", "(I Can't Make It) Another Day"),
    ("Which band released the album (What's the Story) Morning Glory?", "(What's the Story) Morning Glory?"),
]


@pytest.fixture(scope="module")
def kb_store(shared_data: Path, tmp_path_factory, session_settings, embedder) -> KnowledgeBaseStore:
    folder = tmp_path_factory.mktemp("pipeline")
    with (shared_data / "wiki-passages.jsonl").open(encoding="utf-8") as f:
        (folder / "wiki-20.jsonl").write_text("".join(islice(f, 20)), encoding="utf-8")
    store = KnowledgeBaseStore(Settings(data_dir=folder / "data", shared_data_dir=shared_data), embedder)
    assert store.add(KB, chunk_documents(load_documents(folder / "wiki-20.jsonl"))) >= 20
    return store


@pytest.fixture(scope="module")
def pipeline(kb_store, generator) -> RagPipeline:
    return RagPipeline(KnowledgeBaseRetriever(kb_store, KB), generator, sampling=SAMPLING)


@pytest.fixture(scope="module")
def answered(pipeline) -> RagAnswer:
    return pipeline.answer(QUESTIONS[0][0], k=K)


# --------------------------------------------------------------------------- with the model


@pytest.mark.slow
def test_answer_is_grounded_in_the_retrieved_sources(answered, generator) -> None:
    question, title = QUESTIONS[0]
    assert answered.question == question
    assert answered.answer and answered.raw
    assert "Croft" in answered.answer  # the passage says it was created by David Croft
    assert answered.answer == clean_answer(answered.raw)
    assert len(answered.hits) == K
    assert answered.hits[0].title == title
    assert answered.citations and all(1 <= n <= K for n in answered.citations)
    assert 1 in answered.citations
    assert answered.retrieve_s > 0 and answered.generate_s > 0
    assert answered.prompt_tokens == generator.count_tokens(generator.render(list(answered.messages)))
    assert 0 < answered.new_tokens <= SAMPLING.max_new_tokens
    assert answered.tokens_per_s > 0
    assert answered.context == "\n".join(h.text for h in answered.hits)
    last = answered.messages[-1]["content"]
    assert f"[1] {title}: " in last and "[2] " in last and "[3] " not in last
    assert last.endswith(f"Question: {question}")


@pytest.mark.slow
def test_closed_book_has_no_sources(generator) -> None:
    closed = RagPipeline(None, generator, sampling=SAMPLING)
    result = closed.answer("What is the capital of France?", k=K)
    assert result.hits == () and result.citations == ()
    assert result.retrieve_s == 0.0
    assert "Paris" in result.answer
    assert result.messages[0]["content"] == CLOSED_BOOK_SYSTEM
    assert not any("Sources:" in m["content"] for m in result.messages)


@pytest.mark.slow
def test_stream_yields_the_answer_piece_by_piece(pipeline, answered) -> None:
    stream = pipeline.stream(QUESTIONS[0][0], k=K)
    assert stream.result is None
    pieces = list(stream)
    result = stream.result
    assert result is not None
    assert pieces and "".join(pieces) == result.raw
    assert clean_answer("".join(pieces)) == result.answer
    # the same greedy answer as answer() gives, from the same sources
    assert result.raw == answered.raw and result.answer == answered.answer
    assert [h.id for h in result.hits] == [h.id for h in answered.hits]
    assert result.citations == answered.citations
    assert result.retrieve_s > 0 and result.generate_s > 0
    assert result.prompt_tokens == answered.prompt_tokens
    assert 0 < result.new_tokens <= SAMPLING.max_new_tokens


@pytest.mark.slow
def test_answer_many_keeps_the_input_order(pipeline) -> None:
    progress: list[tuple[int, int]] = []
    questions = [q for q, _ in QUESTIONS]
    results = pipeline.answer_many(questions, k=1, batch_size=4, on_progress=lambda *a: progress.append(a))
    assert [r.question for r in results] == questions
    assert [r.hits[0].title for r in results] == [t for _, t in QUESTIONS]
    assert all(r.answer and len(r.hits) == 1 and set(r.citations) <= {1} for r in results)
    assert "Croft" in results[0].answer  # each answer is its own question's
    assert not any("Croft" in r.answer for r in results[1:])
    assert progress == [(3, 3)]
    # retrieval was one batched call, its time shared between the questions
    assert len({r.retrieve_s for r in results}) == 1 and results[0].retrieve_s > 0


@pytest.mark.slow
def test_given_hits_skip_retrieval_and_the_answer_comes_from_them(pipeline) -> None:
    hit = Hit(
        "florbia",
        "Florbia",
        "Florbia is a small island nation. Its capital is Zorblax City, a port.",
        "test",
        1.0,
    )
    (result,) = pipeline.answer_many(["What is the capital of Florbia?"], hits=[[hit]])
    assert result.retrieve_s == 0.0
    assert result.hits == (hit,)
    assert "Zorblax" in result.answer  # made up: the model can only know it from the source
    assert result.citations == (1,)


# --------------------------------------------------------------------------- bad input (no generation)


@pytest.mark.parametrize("question", ["", "   ", "\n\t", None])
def test_empty_question_is_an_input_error(pipeline, question) -> None:
    with pytest.raises(InputError, match="type a question"):
        pipeline.answer(question, k=K)
    with pytest.raises(InputError):
        pipeline.stream(question, k=K)
    with pytest.raises(InputError):
        pipeline.answer_many(["Who created 'Allo 'Allo!?", question], k=K)


@pytest.mark.parametrize("k", [0, -1])
def test_k_below_one_is_an_input_error(pipeline, k: int) -> None:
    with pytest.raises(InputError, match="at least 1"):
        pipeline.answer("Who created 'Allo 'Allo!?", k=k)
    with pytest.raises(InputError, match="at least 1"):
        pipeline.stream("Who created 'Allo 'Allo!?", k=k)


def test_links_over_a_knowledge_base_keep_the_best_chunk_and_give_k_distinct_ones(kb_store) -> None:
    from engine.rag.links import CANDIDATES, follow_links, with_links

    plain = KnowledgeBaseRetriever(kb_store, KB)
    assert with_links(plain, 0) is plain
    question = QUESTIONS[0][0]
    got = with_links(plain, 1).retrieve([question], 3)[0]
    candidates = plain.retrieve([question], 3 * CANDIDATES)[0]
    assert [h.id for h in got] == [h.id for h in follow_links(candidates, 3, 1)]
    assert got[0].id == candidates[0].id and len({h.id for h in got}) == 3


# --------------------------------------------------------------------------- the prompt


def hit(title: str, text: str) -> Hit:
    return Hit(id=title, title=title, text=text, source="test", score=0.9)


def test_messages_number_the_sources_with_their_titles() -> None:
    template = PromptTemplate()
    messages = template.messages("  Who wrote it?  ", [hit("Alpha", "Alpha was written by Ann."), hit("Beta", "B.")])
    assert messages[0] == {"role": "system", "content": SYSTEM}
    roles = [m["role"] for m in messages[1:]]
    assert roles == ["user", "assistant"] * len(template.examples) + ["user"]
    assert [m["content"] for m in messages[2:-1:2]] == [a for _, _, a in template.examples]
    assert (
        messages[-1]["content"]
        == "Sources:\n[1] Alpha: Alpha was written by Ann.\n[2] Beta: B.\n\nQuestion: Who wrote it?"
    )
    assert all(m["content"].startswith("Sources:\n[1] ") for m in messages[1:-1:2])  # examples show sources too


def test_sources_are_cut_to_max_source_chars() -> None:
    text = "abcdefghij" * 10
    messages = PromptTemplate(max_source_chars=25).messages("q?", [hit("Long", text), hit("Short", "tiny")])
    last = messages[-1]["content"]
    assert f"[1] Long: {text[:25]}\n[2] Short: tiny\n" in last
    assert text[:26] not in last
    default = PromptTemplate().messages("q?", [hit("Long", "x" * 2000)])[-1]["content"]
    assert "x" * 600 in default and "x" * 601 not in default


def test_closed_book_messages_have_no_sources() -> None:
    messages = PromptTemplate().messages("What is 2+2?", None)
    assert messages[0]["content"] == CLOSED_BOOK_SYSTEM
    assert messages[-1] == {"role": "user", "content": "Question: What is 2+2?"}
    assert not any("Sources" in m["content"] or "[1]" in m["content"] for m in messages)


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("Answer: Paris.", "Paris"),
        ('The answer is: "Achimenes"', "Achimenes"),
        ("the answer is Paris", "Paris"),
        ("Short answer - 1969", "1969"),
        ("Final answer: yes", "yes"),
        ("\n\n  July 20, 1969\nBecause the source says so.", "July 20, 1969"),
        ("Paris [1]", "Paris"),
        ("Paris [1][2].", "Paris"),
        ("[2] Lenny Kravitz", "Lenny Kravitz"),
        ("Michael Jackson [1] and Lenny Kravitz [3]", "Michael Jackson and Lenny Kravitz"),
        ("", ""),
        ("   \n  ", ""),
        ("Oasis", "Oasis"),
    ],
)
def test_clean_answer(raw: str, expected: str) -> None:
    assert clean_answer(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Evidence: Ann was born in Lyon. Answer: Lyon", "Lyon"),
        ("Evidence: The answer is in [2]. Answer: Lyon [2].", "Lyon"),
        ("Evidence: Answering machines are old. Answer: Answering machines", "Answering machines"),
        ("Evidence: Ann was born in Lyon and then", ""),  # cut off before the answer: none
        ("Lyon", "Lyon"),  # an adapter that skips the evidence still answers
        ("Answer: Lyon\nEvidence: later", "Lyon"),
    ],
)
def test_clean_answer_in_the_evidence_style(raw: str, expected: str) -> None:
    assert clean_answer(raw, "evidence") == expected


def test_evidence_template_asks_for_the_sentences_and_shows_it_in_the_examples() -> None:
    template = PromptTemplate(answer_style="evidence")
    messages = template.messages("Who wrote it?", [hit("Alpha", "Alpha was written by Ann.")])
    assert messages[0]["content"] == EVIDENCE_SYSTEM
    replies = [m["content"] for m in messages[2:-1:2]]
    assert replies[0] == "Evidence: Paris is the capital and most populous city of France. Answer: Paris"
    assert all(r.startswith("Evidence: ") and "\n" not in r for r in replies)
    assert [template.answer_from(r) for r in replies] == [a for _, _, a in template.examples]
    assert template.reply("Ann", ["Alpha was\nwritten by Ann."]) == "Evidence: Alpha was written by Ann. Answer: Ann"
    assert template.reply("Ann") == "Answer: Ann" and PromptTemplate().reply("Ann", ["x"]) == "Ann"
    assert sampling_for(template).max_new_tokens > sampling_for(PromptTemplate()).max_new_tokens
    assert sampling_for(template, 7).max_new_tokens == 7 and sampling_for(template).stop == ("\n",)
    with pytest.raises(InputError, match="answer style"):
        PromptTemplate(answer_style="essay")


@pytest.mark.parametrize("raw", ["Answering machines", "Answers.com"])
def test_clean_answer_keeps_answers_that_start_with_the_word_answer(raw: str) -> None:
    assert clean_answer(raw) == raw


def test_cited_numbers_in_order_without_repeats() -> None:
    assert cited_numbers("Ann [2], see [1] and [2]") == [2, 1]
    assert cited_numbers("no citations (1) here") == []


def test_find_citations_prefers_explicit_markers_within_range() -> None:
    hits = [hit("A", "Paris is the capital of France."), hit("B", "Berlin is in Germany."), hit("C", "Rome.")]
    # explicit [n] wins even where another source contains the answer
    assert find_citations("Paris [2]", "Paris", hits) == (2,)
    assert find_citations("Paris [3][1]", "Paris", hits) == (3, 1)
    # markers out of range are ignored; then the sources that contain the answer are cited
    assert find_citations("Paris [7]", "Paris", hits) == (1,)
    assert find_citations("[0] Berlin", "Berlin", hits) == (2,)
    assert find_citations("Madrid", "Madrid", hits) == ()
    # answer words that only repeat the question say nothing about the source
    assert find_citations("France", "France", hits, question="What is the capital of France?") == ()
    assert find_citations("Paris, France", "Paris, France", hits, question="Which city in France?") == (1,)
    assert find_citations("", "", hits) == ()
