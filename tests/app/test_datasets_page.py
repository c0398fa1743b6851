"""The Datasets page under AppTest: import, browse, versions and diff, topics/split controls, bad input."""

from streamlit.testing.v1 import AppTest

from engine.qa.versions import DatasetStore
from engine.settings import ROOT

PAGE = str(ROOT / "pages" / "4_Datasets.py")


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def test_empty_then_import_browse_and_versions(app_env):
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception, at.exception
    assert [t.label for t in at.tabs][:3] == ["Import", "Generate", "Browse"]
    assert any("No dataset yet" in i.value for i in at.info)

    next(t for t in at.text_input if t.label == "Dataset name").input("hotpot")
    next(s for s in at.selectbox if s.label == "Shared file").select("hotpotqa-dev.jsonl")
    button(at, "Import").click().run()
    assert not at.exception, at.exception
    assert any("1000 records (hotpotqa)" in s.value for s in at.success), [s.value for s in at.success]
    (version,) = [m.id for m in DatasetStore(app_env).versions("hotpot")]
    assert any("1000 of 1000 records" in c.value for c in at.caption)  # the browser shows the new version
    assert any(version in str(s.options) for s in at.selectbox if s.label == "Compare")


def test_bad_input_is_a_message(app_env, tmp_path):
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    next(t for t in at.text_input if t.label == "Dataset name").input("../escape")
    button(at, "Import").click().run()
    assert not at.exception
    assert at.error, "a bad dataset name must be reported"

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "Q1?", "answer": "A1"}\n{not json\n{"question": "Q3?"}\n')
    next(t for t in at.text_input if t.label == "Dataset name").input("mine")
    next(r for r in at.radio if r.label == "Source").set_value("Local path")
    next(t for t in at.text_input if t.label == "Local path").input(str(bad))
    button(at, "Import").click().run()
    assert not at.exception
    assert any("line 2" in e.value and "line 3" in e.value for e in at.error), [e.value for e in at.error]
    assert not DatasetStore(app_env).datasets()  # nothing saved when stopping on bad lines

    next(r for r in at.radio if r.label == "Malformed lines").set_value("skip them")
    button(at, "Import").click().run()
    assert any("1 records" in s.value for s in at.success), [s.value for s in at.success]
    assert any("2 malformed lines were skipped" in w.value for w in at.warning)


def test_generation_takes_a_knowledge_base_and_checks_the_teacher_first(app_env):
    from engine.rag.documents import Document
    from engine.rag.embedder import Embedder
    from engine.rag.ingest import ingest_documents
    from engine.rag.store import KnowledgeBaseStore

    store = KnowledgeBaseStore(app_env, Embedder.shared())
    ingest_documents(store, "manuals", [Document("m1", "Pump", "The pump runs at 40 litres a minute.", "m1.md")])
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception, at.exception
    source = next(s for s in at.selectbox if s.label == "Passages from")
    assert any("manuals" in str(o) for o in source.options)
    source.select("manuals")
    next(t for t in at.text_input if t.label == "Teacher model").input("/no/such/teacher.gguf")
    button(at, "Generate").click().run()
    assert not at.exception, at.exception
    assert any("does not exist" in e.value for e in at.error), [e.value for e in at.error]
    assert "generate-job" not in at.session_state  # nothing started
