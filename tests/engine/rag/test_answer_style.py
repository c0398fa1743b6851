"""Answer styles: the per-question choice, the sentences prompt, focused and grounded sources, and one
set of defaults for `engine ask` and the Query page; with the real model on a small real knowledge base."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.errors import InputError, NotFoundError
from engine.rag.ask import AskSpec, ask, ask_template
from engine.rag.documents import Document
from engine.rag.focus import SentenceFocus, focus, ground, units
from engine.rag.hits import Hit
from engine.rag.ingest import DOCS_KB, ingest_documents
from engine.rag.prompt import (
    DOCS_EXAMPLES,
    EXAMPLES,
    SENTENCE_EXAMPLES,
    SENTENCES_SYSTEM,
    SYSTEM,
    PromptTemplate,
    clean_answer,
    plain_text,
)
from engine.rag.styles import resolve_style, style_for, trained_style

QUESTIONS = Path(__file__).resolve().parents[2] / "data" / "studio-docs-questions.jsonl"


@pytest.mark.parametrize(
    ("question", "style"),
    [
        ("Who created the sitcom 'Allo 'Allo!?", "short"),
        ("When did humans first land on the Moon?", "short"),
        ("Where are the MLflow runs stored?", "short"),
        ("Which port does the app use?", "short"),
        ("On which port does the app listen?", "short"),
        ("In what year was the Studio released?", "short"),
        ("How many chunks does the knowledge base hold?", "short"),
        ("How long does the first start take?", "short"),
        ("What year did Apollo 11 land?", "short"),
        ("What is the capital of France?", "short"),
        ("What is the default chunk size?", "short"),
        ("What are chunk ids made of?", "short"),
        ("What does RAG stand for?", "short"),
        ("Is the lion a cat?", "short"),
        ("Are the lion and the tiger both cats?", "short"),
        ("What is the Studio for?", "sentences"),
        ("What's the Studio for?", "sentences"),
        ("What is a knowledge base?", "sentences"),
        ("What is LoRA?", "sentences"),
        ("What is the purpose of the Benchmarks page?", "sentences"),
        ("Why does a knowledge base say incomplete?", "sentences"),
        ("How does retrieval work?", "sentences"),
        ("How do I add my own documents?", "sentences"),
        ("What does the A/B Test page do?", "sentences"),
        ("What happens when a model does not fit in memory?", "sentences"),
        ("Explain the evidence answer style.", "sentences"),
        ("Describe the Fine-tune page", "sentences"),
        ("Tell me about adapters", "sentences"),
    ],
)
def test_style_for_follows_the_form_of_the_question(question: str, style: str) -> None:
    assert style_for(question) == style


def test_style_for_agrees_with_the_form_of_every_docs_question() -> None:
    items = [json.loads(line) for line in QUESTIONS.read_text(encoding="utf-8").splitlines()]
    assert len(items) >= 20 and {i["form"] for i in items} == {"short", "sentences"}
    assert all(i["key_facts"] and all(isinstance(f, str) and f for f in i["key_facts"]) for i in items)
    assert [style_for(i["question"]) for i in items] == [i["form"] for i in items]


def test_a_forced_style_wins_and_auto_follows_the_adapter_else_the_question() -> None:
    descriptive = "What is the Studio for?"
    assert resolve_style(descriptive) == "sentences"
    assert resolve_style(descriptive, "short") == "short"
    assert resolve_style("Who wrote it?", "sentences") == "sentences"
    assert resolve_style(descriptive, "auto", trained="short") == "short"  # trained for short answers
    assert resolve_style(descriptive, "auto", trained="evidence") == "evidence"
    assert resolve_style(descriptive, "sentences", trained="short") == "sentences"  # the user's choice
    with pytest.raises(InputError, match="answer style"):
        resolve_style(descriptive, "essay")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"style": "essay"}, "answer style"), ({"k": 0}, "at least 1"), ({"follow_links": -1}, "0 or more")],
)
def test_ask_spec_rejects_bad_settings_with_a_message(kwargs: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        AskSpec(**kwargs)


def test_ask_and_the_query_page_share_their_defaults() -> None:
    from engine.cli import parser

    a = parser().parse_args(["ask", "What is the Studio for?"])
    d = AskSpec()
    assert (a.kb, a.k, a.style, a.follow_links, a.adapter) == (d.kb, d.k, d.style, d.follow_links, d.adapter)
    assert d.kb == DOCS_KB and d.style == "auto"
    root = Path(__file__).resolve().parents[3]
    page = (root / "pages" / "1_Query.py").read_text(encoding="utf-8")
    panel = (root / "ui" / "query.py").read_text(encoding="utf-8")  # the page's side panel (ask_controls)
    # the page's widgets start at AskSpec's defaults and it answers through the same engine function
    assert "D = AskSpec()" in panel and "D.k" in panel and "ask_controls(" in page and "ask_pipeline(" in page


def test_the_sentences_prompt_has_its_own_instruction_examples_and_room() -> None:
    hits = [Hit("a", "Alpha", "Alpha is a tool. It sorts files by date.", "test", 0.9)]
    short = PromptTemplate()
    sentences = short.styled("sentences")
    messages = sentences.messages("What does Alpha do?", hits)
    assert messages[0]["content"] == SENTENCES_SYSTEM
    assert [m["content"] for m in messages[2:-1:2]] == [a for _, _, a in SENTENCE_EXAMPLES]
    assert sentences.max_new_tokens > short.max_new_tokens
    assert short.styled("short").messages("Who?", hits)[0]["content"] == SYSTEM
    # short answers over documents are shown paths, names and sizes; evidence keeps the examples it is trained on
    assert short.styled("short").examples == DOCS_EXAMPLES and short.styled("evidence").examples == EXAMPLES
    assert PromptTemplate().examples == EXAMPLES  # what the HotpotQA evaluation asks with, unchanged
    assert PromptTemplate(examples=()).styled("sentences").examples == ()  # zero-shot stays zero-shot


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("It sorts files by date. It is fast.", "It sorts files by date. It is fast."),
        ("Answer: It sorts files by date. It is", "It sorts files by date."),  # cut off at the token limit
        ("It sorts files", "It sorts files"),  # the only sentence, unfinished: kept
        ("It sorts files [1].\nMore.", "It sorts files."),
    ],
)
def test_clean_answer_keeps_whole_sentences(raw: str, expected: str) -> None:
    assert clean_answer(raw, "sentences") == expected


def test_plain_text_flattens_markdown_and_leaves_prose_alone() -> None:
    prose = "Paris is the capital of France. It has 2.1 million people; see [1]."
    assert plain_text(prose) == prose
    markdown = "## Set-up\n\nStart it:\n\n```bash\nmake run\n```\n\n| a | b |\n| --- | --- |\n| **x** | `y` |\n- one"
    assert plain_text(markdown) == "Set-up. Start it: make run a; b x; y one"


def test_units_name_each_sentence_by_its_heading_and_join_code_and_table_rows() -> None:
    text = (
        "Intro sentence here. Second one here.\n\n## Set-up\n\nInstall and start the app:\n\n```bash\nmake run\n```\n\n"
        "### Configuration\n\n| variable | default |\n| --- | --- |\n| `STUDIO_DATA_DIR` | `./data` |\n"
    )
    assert units(text, "Guide") == [
        ("Guide", "Intro sentence here."),
        ("Guide", "Second one here."),
        ("Set-up", "Install and start the app: make run"),
        ("Configuration", "variable: STUDIO_DATA_DIR; default: ./data"),
    ]


def test_focus_puts_the_sentence_that_answers_first_and_ground_keeps_to_the_sources(embedder) -> None:
    hits = [
        Hit("c1", "Guide", "The weather was fine. Runs are stored in data/mlflow.db (SQLite).", "guide.md", 0.5),
        Hit("c2", "Guide", "## Models\n\nThe app answers with a small model. It loads in seconds.", "guide.md", 0.4),
    ]
    shown = focus("Where are the runs stored?", hits, embedder, 2)
    assert shown[0].text == "Runs are stored in data/mlflow.db (SQLite)." and shown[0].id == "c1"
    assert len(shown) == 2 and {h.id for h in shown} <= {"c1", "c2"}
    question = "Where are the runs stored?"
    best = shown[0].text
    assert ground(question, "The runs are stored in data/mlflow.db.", shown[:1]) == best
    # what no source says (or only restates the question) is left out; the best source comes first
    assert ground(question, "Nothing like any source.", shown[:1]) == best
    assert ground(question, "The runs are stored.", shown[:1]) == best
    two = [shown[0], Hit("c2", "Models", "It loads in seconds.", "guide.md", 0.4)]
    assert ground(question, "It loads in seconds. Runs: data/mlflow.db. Data/mlflow.db holds them.", two) == (
        f"{best} It loads in seconds."  # each once, at most three, at least two where there are two
    )
    assert ground(question, "Runs are in data/mlflow.db.", two) == f"{best} It loads in seconds."


def test_a_short_answer_with_a_number_no_source_holds_gives_way_to_the_source(embedder) -> None:
    shown = [Hit("c1", "Set-up", "Start the app (http://127.0.0.1:8501): make run", "README.md", 0.5)]
    focused = SentenceFocus(embedder)
    assert focused.finish("Which port?", "8501", shown, "short") == "8501"
    assert focused.finish("Which port?", "8080", shown, "short") == shown[0].text  # made up
    assert focused.finish("Which command?", "make run make run make run", shown, "short") == "make run"
    assert focused.finish("Which command?", "make run", shown, "short") == "make run"


# --------------------------------------------------------------------------- adapters


def save_adapter(settings, name: str, meta: dict) -> None:
    folder = settings.data_dir / "adapters" / name
    folder.mkdir(parents=True)
    (folder / "studio.json").write_text(json.dumps(meta), encoding="utf-8")


def test_an_adapter_answers_in_the_style_it_was_trained_for(settings) -> None:
    save_adapter(settings, "short-lora", {"prompt": "zero-shot", "train": {"rag": {"answer_style": "short"}}})
    evidence = {"rag": {"answer_style": "evidence", "max_source_chars": 400}}
    save_adapter(settings, "evidence-lora", {"prompt": "few-shot", "train": evidence})
    save_adapter(settings, "old-lora", {"prompt": "zero-shot"})  # saved before styles were recorded
    assert trained_style(settings, "") == ""
    assert trained_style(settings, "short-lora") == "short" and trained_style(settings, "old-lora") == "short"
    descriptive = "What is the Studio for?"
    template = ask_template(descriptive, AskSpec(adapter="short-lora"), settings)
    assert template.answer_style == "short" and template.examples == ()  # as trained: short, zero-shot
    template = ask_template(descriptive, AskSpec(adapter="evidence-lora"), settings)
    assert template.answer_style == "evidence" and template.max_source_chars == 400
    assert ask_template(descriptive, AskSpec(adapter="short-lora", style="sentences"), settings).answer_style == (
        "sentences"
    )
    assert ask_template(descriptive, AskSpec(), settings).answer_style == "sentences"  # no adapter: the question
    with pytest.raises(NotFoundError, match="No adapter named"):
        ask_template(descriptive, AskSpec(adapter="missing"), settings)


def test_an_adapter_trained_per_question_is_asked_per_question_everywhere(settings) -> None:
    """Trained ``auto``: the Query page, ``engine ask``, the evaluation and training all ask "What is X for?" for
    sentences and "Who ...?" for a short answer, in the same prompt."""
    from engine.evaluation.hotpotqa import QAItem
    from engine.evaluation.runner import EvalSpec, templates
    from engine.finetune.examples import RagExampleSpec, asked_in, template_for

    save_adapter(settings, "auto-lora", {"prompt": "zero-shot", "train": {"rag": {"answer_style": "auto"}}})
    save_adapter(settings, "short-lora", {"prompt": "zero-shot", "train": {"rag": {"answer_style": "short"}}})
    assert trained_style(settings, "auto-lora") == "auto"
    descriptive, factoid = "What is the Studio for?", "Who wrote the Studio's guide?"
    items = [QAItem("d", descriptive, "a", (), ()), QAItem("f", factoid, "b", (), ())]
    training = RagExampleSpec(answer_style="auto")
    for question, style in ((descriptive, "sentences"), (factoid, "short")):
        asked = ask_template(question, AskSpec(adapter="auto-lora"), settings)
        assert asked.answer_style == style and asked.examples == ()
        assert asked_in(template_for(training), training, question) == asked  # trained exactly as asked
    by_eval = templates(EvalSpec(dataset="x", adapter="auto-lora"), items, settings)  # its training style: auto
    assert [t.answer_style for t in by_eval] == ["sentences", "short"]
    assert by_eval == [ask_template(q, AskSpec(adapter="auto-lora"), settings) for q in (descriptive, factoid)]
    # The base asked "auto" (the loop's evaluation) as the Query page asks it; a short adapter stays short.
    base = templates(EvalSpec(dataset="x", answer_style="auto"), items, settings)
    assert base == [ask_template(q, AskSpec(), settings) for q in (descriptive, factoid)]
    short = templates(EvalSpec(dataset="x", adapter="short-lora", answer_style="auto"), items, settings)
    assert [t.answer_style for t in short] == ["short", "short"]


# --------------------------------------------------------------------------- with the model

TOOL_DOCS = [
    Document("sorter", "Sorter", "# Sorter\n\nSorter is a command-line tool for tidying folders. It moves every "
             "file into a folder named after the month the file was made, so that old photos and papers are easy "
             "to find.\n\n## Install\n\nInstall it with pipx:\n\n```bash\npipx install sorter\n```\n", "sorter.md"),
    Document("weather", "Weather", "The weather in Lyon is mild in spring. Summers are warm and dry.", "weather.md"),
]  # fmt: skip


@pytest.mark.slow
def test_a_descriptive_question_gets_grounded_sentences_and_a_factoid_one_a_span(store, generator, settings) -> None:
    ingest_documents(store, "tools", TOOL_DOCS)
    spec = AskSpec(kb="tools", k=3)
    described = ask("What is Sorter for?", spec, store, generator, settings)
    assert described.style == "sentences"
    assert len(described.answer.split()) >= 8 and "tidying folders" in described.answer  # a sentence, not a span
    source_sentences = [s for doc in TOOL_DOCS for _, s in units(doc.text, doc.title)]
    assert all(any(part.rstrip(".") in s for s in source_sentences) for part in described.answer.split(". "))
    assert described.hits and described.hits[0].source == "sorter.md"
    assert described.citations and described.hits[described.citations[0] - 1].source == "sorter.md"
    factoid = ask("Which command installs Sorter?", spec, store, generator, settings)
    assert factoid.style == "short"
    assert "pipx" in factoid.answer.lower() and len(factoid.answer.split()) <= 5  # the command, as a span
    forced = ask("What is Sorter for?", AskSpec(kb="tools", k=3, style="short"), store, generator, settings)
    assert forced.style == "short" and len(forced.answer.split()) < len(described.answer.split())


def test_the_measured_answers_are_not_part_of_the_docs_knowledge_base() -> None:
    from engine.rag.ingest import studio_documents

    names = {Path(d.source).name for d in studio_documents()}
    assert "guide.md" in names and "README.md" in names
    assert "answers.md" not in names  # it holds the docs questions' answers: the benchmark would read itself
