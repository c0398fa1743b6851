"""The Fine-tune page under AppTest: settings form, pre-flight plan, bad input, the adapters table."""

from streamlit.testing.v1 import AppTest

from engine.finetune.examples import RagExampleSpec
from engine.finetune.spec import TrainSpec
from engine.finetune.trainer import train
from engine.models.adapters import AdapterRegistry
from engine.models.catalog import default_spec
from engine.qa.versions import DatasetStore
from engine.settings import ROOT
from tests.engine.test_loop import saved_adapter

PAGE = str(ROOT / "pages" / "3_Fine-tune.py")


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def test_the_form_renders_with_defaults_and_no_adapters(app_env):
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception, at.exception
    labels = {w.label for w in at.number_input}
    assert {"Rank r", "Alpha", "Epochs", "Batch size", "Max length (tokens)", "Patience"} <= labels
    assert any("No adapter yet" in i.value for i in at.info)


def gold_sources(at: AppTest) -> None:
    """Gold sources: the plan needs no ranking of HotpotQA's 7,000 paragraphs (minutes on a fresh data dir)."""
    next(s for s in at.selectbox if s.label == "Training sources").set_value("gold")


def test_preflight_shows_examples_memory_time_and_trainable_share(app_env):
    at = AppTest.from_file(PAGE, default_timeout=300).run()
    gold_sources(at)
    button(at, "Pre-flight check").click().run()
    assert not at.exception, at.exception
    assert not at.error, [e.value for e in at.error]
    metrics = {m.label: m.value for m in at.metric}
    # the form starts from recipe 7: 600 HotpotQA questions and a 0.25 share of Dolly instructions
    assert metrics["Training examples"] == "800"
    assert metrics["Steps"] == "200"  # 800 examples, batch 4, one epoch
    assert metrics["Peak memory (est.)"].endswith("GB") and metrics["Time (est.)"].endswith("min")
    assert any("trainable" in i.value and "q_proj" not in i.value for i in at.info)


def start_from(at: AppTest) -> str:
    return next(s for s in at.selectbox if s.label == "Start from").value


def recipe(at: AppTest) -> str:
    return next(s for s in at.selectbox if s.label == "Recipe").value


def test_a_qa_set_of_ones_own_starts_from_the_collection_recipe(app_env, collection):
    at = AppTest.from_file(PAGE, default_timeout=300).run()
    assert not at.exception, at.exception
    assert at.selectbox(key="train-on").value == "notes-qa"  # the user's QA set is offered first
    assert at.selectbox(key="train-kb").value == "notes"  # its knowledge base, by name
    assert recipe(at) == "collection-recipe-3"
    assert at.text_input[0].value == "notes-qa-lora"
    assert next(w for w in at.number_input if w.label == "Epochs").value == 2.0
    button(at, "Pre-flight check").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    metrics = {m.label: m.value for m in at.metric}
    train_split = sum(1 for r in DatasetStore(app_env).load("notes-qa", collection) if r.metadata["split"] == "train")
    assert metrics["Training examples"] == str(2 * train_split)  # as many again from HotpotQA (the recipe)
    assert start_from(at) == ""  # a new adapter
    saved_adapter(app_env, "hotpotqa-v7", dict(vars(default_spec())), 29.1)
    at = AppTest.from_file(PAGE, default_timeout=300).run()
    next(s for s in at.selectbox if s.label == "Recipe").set_value("collection-recipe-4").run()
    assert not at.exception, at.exception
    assert start_from(at) == "hotpotqa-v7"  # recipe 4 continues the best HotpotQA adapter saved
    assert next(w for w in at.number_input if w.label == "Epochs").value == 1.0
    at.selectbox(key="train-on").set_value("hotpotqa").run()
    assert recipe(at) == "hotpotqa-recipe-7"
    assert "Sources from knowledge base" not in {s.label for s in at.selectbox}


def test_bad_input_is_a_message_not_a_traceback(app_env):
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    at.text_input[0].input("../escape")
    button(at, "Start training").click().run()
    assert not at.exception
    assert any("Invalid adapter name" in e.value for e in at.error), [e.value for e in at.error]
    at.text_input[0].input("fine")
    at.text_input[1].input("/no/such/model")
    button(at, "Pre-flight check").click().run()
    assert not at.exception
    assert any("does not exist" in e.value for e in at.error)
    at.text_input[1].input("")
    gold_sources(at)
    max_length = next(w for w in at.number_input if w.label == "Max length (tokens)")
    max_length.set_value(64)
    button(at, "Pre-flight check").click().run()
    assert any("max length 64 is below the prompt length" in e.value for e in at.error)


def test_a_trained_adapter_is_listed_renamed_and_offered_on_the_query_page(app_env):
    spec = TrainSpec(adapter="listed", rag=RagExampleSpec(distractors=1, max_source_chars=120), train_limit=4,
                     batch_size=4, max_length=512, val_limit=2, val_f1=False, stop_on="none")  # fmt: skip
    train(spec, app_env, None, lambda f, m: None)
    at = AppTest.from_file(PAGE, default_timeout=120).run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    assert list(table["name"]) == ["listed"]
    at.text_input(key="adapter-new-name").input("renamed")
    button(at, "Rename").click().run()
    assert AdapterRegistry(app_env).names() == ["renamed"]
    query = AppTest.from_file(str(ROOT / "pages" / "1_Query.py"), default_timeout=120).run()
    assert "renamed" in query.selectbox(key="query-adapter").options


def test_a_preference_method_needs_pairs_and_plans_on_them(app_env):
    from engine.qa.preference import make_pair

    at = AppTest.from_file(PAGE, default_timeout=300).run()
    next(s for s in at.selectbox if s.label == "Method").set_value("dpo")
    button(at, "Pre-flight check").click().run()
    assert not at.exception
    assert any("DPO trains on preference pairs" in e.value for e in at.error), [e.value for e in at.error]
    pairs = [make_pair(f"Who wrote book {n}?", f"Author {n}", "Nobody", "human") for n in range(12)]
    DatasetStore(app_env).save("prefs", pairs)
    at = AppTest.from_file(PAGE, default_timeout=300).run()
    next(s for s in at.selectbox if s.label == "Method").set_value("dpo")
    preferences = next(s for s in at.selectbox if s.label == "Preference dataset")
    assert preferences.options == ["none (SFT)", "prefs"]  # only datasets of pairs are offered
    preferences.set_value("prefs")
    gold_sources(at)
    button(at, "Pre-flight check").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert {m.label: m.value for m in at.metric}["Training examples"] == "11"  # one of 12 held out
