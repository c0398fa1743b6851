"""Descriptive answers found anywhere in a passage (manuals and notes), and the questions made for them."""

from __future__ import annotations

from engine.data.definitions import definitions, descriptive_question, subject_of
from engine.data.questions import without_headings
from engine.rag.ingest import studio_documents

NOTES = """Some text first. The Studio is a local-first dashboard for one person with a laptop.
It is fast. Adapters are small files that change how the model answers; adapters are
listed on the Models page. Runs are stored in a SQLite file, which MLflow reads.
The Trainer reads the rows one block at a time, as training reaches them.
The figures therefore show the pipeline working on real answers.

- **Review queue**: accept, edit or reject each generated pair; the decisions save a new version.
- end to end, 300+64 tokens: 0.87 s against 1.79 s in the other program.

| a table | is not prose |
"""


def test_definitions_are_sentences_and_list_items_that_say_what_a_thing_is_or_does():
    found = definitions(NOTES)
    assert all(NOTES[s.start :].startswith(s.text) and s.kind == "description" for s in found)
    questions = {descriptive_question("Notes", s.text, NOTES): " ".join(s.text.split()) for s in found}
    assert questions == {
        "What is the Studio?": "The Studio is a local-first dashboard for one person with a laptop.",
        "What are adapters?": "Adapters are small files that change how the model answers; adapters are listed on "
        "the Models page.",
        "What does the Trainer do?": "The Trainer reads the rows one block at a time, as training reaches them.",
        "What is Review queue?": "accept, edit or reject each generated pair; the decisions save a new version.",
    }  # a pronoun, a passive ("are stored"), a plural noun ("figures"), a figure as a term and a table: none


def test_a_subject_is_a_short_noun_phrase_not_a_pronoun_or_a_clause():
    assert subject_of("Gradient checkpointing is a switch on the Fine-tune page.") == ("Gradient checkpointing", "is")
    assert subject_of("Merge-and-export writes a standalone model folder.") == ("Merge-and-export", "does")
    for sentence in ("It is a switch.", "There are three kinds.", "The split is written once to a file.",
                     "In a folder every bad file is listed.", "Prompts of 32 tokens or more go through a copy.",
                     "the Studio is lower case here."):  # fmt: skip
        assert subject_of(sentence) == ("", ""), sentence


def test_the_studio_docs_give_descriptive_answers():
    texts = [without_headings(d.text) for d in studio_documents()]
    found = [(t, s) for t in texts for s in definitions(t)]
    assert len(found) >= 50  # the docs define and describe; tables, code and lists of figures are left out
    assert all(descriptive_question("Docs", s.text, t).endswith("?") for t, s in found)
