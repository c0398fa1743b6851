"""Batch evaluation on real HotpotQA questions with the bundled model, logged to a temp MLflow."""

import json
import subprocess
import sys

import pytest

from engine.errors import InputError
from engine.evaluation.hotpotqa import load_hotpotqa
from engine.evaluation.runner import EvalSpec, format_table, run_evaluation
from engine.rag.documents import Document
from engine.rag.ingest import ingest_documents
from engine.settings import ROOT

N = 6


def test_load_hotpotqa(shared_data):
    items = load_hotpotqa(shared_data / "hotpotqa-dev.jsonl", limit=5)
    assert len(items) == 5
    first = items[0]
    assert first.question and first.answer
    assert len(first.paragraphs) == 10
    assert set(first.supporting_titles) <= {t for t, _ in first.paragraphs}


def test_malformed_questions_report_line_numbers(tmp_path):
    bad = tmp_path / "bad.jsonl"
    good = json.dumps({"question": "q?", "answer": "a", "context": []})
    bad.write_text("\n".join([good, "{not json", good, json.dumps({"question": "no answer"})]) + "\n")
    with pytest.raises(InputError, match=r"line 2 .*line 4"):
        load_hotpotqa(bad)


def test_each_row_keeps_the_prompt_its_answer_was_asked_in():
    from engine.evaluation.hotpotqa import QAItem
    from engine.evaluation.runner import score
    from engine.rag.pipeline import RagAnswer

    asked = ({"role": "system", "content": "S"}, {"role": "user", "content": "Sources:\n[1] T: x\n\nQuestion: Who?"})
    (row,) = score([QAItem("q1", "Who?", "Ann")], [RagAnswer("Who?", "Ann", "Answer: Ann.", (), (), asked)], False)
    assert row["messages"] == [dict(m) for m in asked] and row["raw"] == "Answer: Ann." and row["f1"] == 100.0


@pytest.mark.parametrize("mode", ["closed-book", "distractor"])
def test_evaluation_modes(mode, generator, embedder, settings, tracker):
    spec = EvalSpec(mode=mode, limit=N, batch_size=4, max_new_tokens=16)
    result = run_evaluation(spec, generator, embedder, None, settings, tracker)
    assert len(result.rows) == N
    assert 0 <= result.metrics["em"] <= 100 and 0 <= result.metrics["f1"] <= 100
    if mode == "distractor":
        # retrieval among the question's own 10 paragraphs finds some supporting paragraphs
        assert result.metrics["recall@5"] > 0.3
        assert all(len(r["retrieved"].split(" | ")) == 5 for r in result.rows)
    else:
        assert "recall@5" not in result.metrics
    run = tracker.recent("studio-evaluation")[0]
    assert run.run_id == result.run_id
    assert run.params["mode"] == mode and run.params["limit"] == str(N)
    assert run.metrics["f1"] == pytest.approx(result.metrics["f1"])
    table = tracker.load_table(result.run_id, "per_question.json")
    assert list(table["id"]) == [r["id"] for r in result.rows]
    assert "f1" in format_table(result)
    # each answer's prompt, as asked (a preference pair of it trains on it), comes back from MLflow
    assert list(table["messages"]) == [r["messages"] for r in result.rows]
    for row in result.rows:
        assert row["messages"][-1]["content"].endswith(f"Question: {row['question']}")
        assert ("Sources:" in row["messages"][-1]["content"]) == (mode == "distractor")


def test_kb_mode_uses_the_knowledge_base(generator, embedder, store, settings, shared_data):
    items = load_hotpotqa(shared_data / "hotpotqa-dev.jsonl", limit=N)
    docs = {title: Document(title, title, text, "hotpotqa") for it in items for title, text in it.paragraphs}
    ingest_documents(store, "mini-wiki", list(docs.values()))
    spec = EvalSpec(mode="kb", kb="mini-wiki", limit=N, batch_size=4, max_new_tokens=16)
    result = run_evaluation(spec, generator, embedder, store, settings)
    assert result.run_id is None  # no tracker given: nothing logged
    assert result.metrics["recall@5"] > 0.3
    with pytest.raises(Exception, match="does not exist"):
        run_evaluation(EvalSpec(mode="kb", kb="missing-kb", limit=2), generator, embedder, store, settings)


def test_bad_specs():
    with pytest.raises(InputError, match="Unknown mode"):
        EvalSpec(mode="open-book")
    with pytest.raises(InputError, match="limit"):
        EvalSpec(limit=0)
    with pytest.raises(InputError, match="Unknown answer style 'essay'"):
        EvalSpec(answer_style="essay")
    assert EvalSpec(answer_style="sentences").answer_style == "sentences"  # every style a question can be asked in


def cli(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "engine", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def test_cli_eval_prints_table(settings, session_settings):
    import os

    env = dict(os.environ, STUDIO_DATA_DIR=str(settings.data_dir))
    out = cli("eval", "--mode", "closed-book", "--limit", "3", "--max-new-tokens", "8", env=env)
    assert out.returncode == 0, out.stderr
    assert "closed-book" in out.stdout and "f1" in out.stdout and "MLflow run" in out.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["eval", "--data", "/no/such/file.jsonl"], "not found"),
        (["eval", "--limit", "0"], "limit must be at least 1"),
        (["eval", "--mode", "kb", "--kb", "no-such-kb"], "does not exist"),
        (["ingest", "--kb", "my-kb", "--path", "/no/such/folder"], "does not exist"),
        (["ingest", "--kb", "x", "--path", "README.md"], "invalid knowledge base name"),
        (["ask", "   ", "--kb", "studio-docs"], "type a question"),
        (["eval", "--model", "/no/such/model", "--limit", "2"], "does not exist"),
        (["eval", "--model", "/no/such/model.gguf", "--limit", "2"], "does not exist"),
    ],
)
def test_cli_bad_input_is_a_message_not_a_traceback(args, message, settings):
    import os

    out = cli(*args, env=dict(os.environ, STUDIO_DATA_DIR=str(settings.data_dir)))
    assert out.returncode == 2
    assert message in out.stderr.lower()
    assert "Traceback" not in out.stderr


def test_auto_asks_each_question_in_its_style_and_keeps_the_order(generator, embedder, settings, tmp_path):
    tower = "The Eiffel Tower is a wrought-iron lattice tower in Paris. It was completed in 1889."
    bridge = "The Golden Gate Bridge is a suspension bridge in San Francisco. It opened in 1937."
    rows = [("d", "What is the Eiffel Tower?", "a wrought-iron lattice tower in Paris", "Eiffel Tower"),
            ("f", "In what year did the Golden Gate Bridge open?", "1937", "Golden Gate Bridge"),
            ("g", "In what year was the Eiffel Tower completed?", "1889", "Eiffel Tower")]  # fmt: skip
    context = [["Eiffel Tower", tower.split(". ")], ["Golden Gate Bridge", bridge.split(". ")]]
    path = tmp_path / "styles.jsonl"
    path.write_text("".join(json.dumps({"_id": i, "question": q, "answer": a, "type": "bridge", "level": "easy",
                                        "supporting_facts": [[t, 0]], "context": context}) + "\n"
                            for i, q, a, t in rows))  # fmt: skip
    spec = EvalSpec(data=str(path), mode="given", limit=3, batch_size=2, answer_style="auto")
    result = run_evaluation(spec, generator, embedder, settings=settings)
    assert [r["question"] for r in result.rows] == [q for _, q, _, _ in rows]  # two groups, reported in order
    described, *factoids = result.rows
    assert len(described["prediction"].split()) > 4 and "tower" in described["prediction"].lower()  # sentences
    assert all(r["f1"] > 0 for r in factoids)
