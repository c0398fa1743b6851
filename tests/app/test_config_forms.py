"""Settings files in the job forms under AppTest: save a form's values, load them back into its widgets, and the
command line shown below each form."""

from __future__ import annotations

from dataclasses import replace

from streamlit.testing.v1 import AppTest

from engine import jobs
from engine.ab.spec import ExperimentSpec, VariantSpec
from engine.benchmark.matrix import BenchSpec
from engine.configs import list_configs, load_config, save_config
from engine.data.generation import GenerationSpec
from engine.evaluation.runner import EvalSpec
from engine.finetune.presets import preset_spec
from engine.finetune.spec import TrainSpec
from engine.settings import ROOT

TIMEOUT = 300


def page(name: str) -> AppTest:
    at = AppTest.from_file(str(ROOT / "pages" / name), default_timeout=TIMEOUT).run()
    assert not at.exception, at.exception
    return at


def commands(at: AppTest, words: str) -> list[str]:
    """The shell commands shown for ``python -m engine <words>``."""
    return [c.value for c in at.code if c.value.startswith(f"python -m engine {words}")]


def save(at: AppTest, key: str, name: str, overwrite: bool = False) -> None:
    at.text_input(key=f"{key}-config-name").input(name)
    at.checkbox(key=f"{key}-config-overwrite").set_value(overwrite)
    at.button(key=f"{key}-config-save").click().run()
    assert not at.exception, at.exception


def load(at: AppTest, key: str, name: str) -> None:
    at.selectbox(key=f"{key}-config-pick").set_value(name)
    at.button(key=f"{key}-config-load").click().run()
    assert not at.exception, at.exception
    assert not [e.value for e in at.error if not e.value.startswith("The job")]  # (a cancelled job's is)


def test_the_evaluation_form_saves_loads_and_shows_its_command(app_env):
    at = page("5_Benchmarks.py")
    assert commands(at, "eval") == ["python -m engine eval --split=test"]  # the form's own default split
    at.number_input(key="eval-limit").set_value(7)
    at.number_input(key="eval-k").set_value(3)  # in a form: set, and submitted with the job in one run
    next(b for b in at.button if b.label == "Start evaluation").click().run()
    assert not at.exception and not at.error, at.exception or [e.value for e in at.error]
    jobs.cancel_job(at.session_state["eval-job"], app_env)
    assert commands(at, "eval") == ["python -m engine eval --limit=7 --k=3 --split=test"]

    save(at, "eval", "quick")
    assert any("Saved the settings" in s.value for s in at.success), [s.value for s in at.success]
    assert load_config(app_env, "eval", "quick", EvalSpec) == EvalSpec(limit=7, k=3, split="test")
    save(at, "eval", "quick")  # the name is taken: said, not replaced
    assert any("already exist" in e.value for e in at.error), [e.value for e in at.error]

    save_config(app_env, "eval", "other", EvalSpec(mode="closed-book", max_source_chars=300))
    at = page("5_Benchmarks.py")
    assert at.selectbox(key="eval-config-pick").options == ["other", "quick"]
    load(at, "eval", "other")
    assert (at.number_input(key="eval-k").value, at.selectbox(key="eval-mode").value) == (5, "closed-book")
    assert at.selectbox(key="eval-split").value == ""
    # no flag sets max_source_chars: the command reads the file instead
    assert commands(at, "eval") == [f"python -m engine eval --config {app_env.data_dir}/configs/eval/other.yaml"]
    load(at, "eval", "quick")
    assert (at.number_input(key="eval-k").value, at.number_input(key="eval-limit").value) == (3, 7)
    assert at.selectbox(key="eval-mode").value == "distractor"
    # the form keeps a loaded setting it has no widget for until other settings are loaded
    assert commands(at, "eval") == ["python -m engine eval --limit=7 --k=3 --split=test"]


def test_the_matrix_form_loads_saved_settings(app_env):
    spec = BenchSpec(precisions=("float32", "int4-weight"), questions=20, thresholds="f1=2", llama_cpp=False)
    save_config(app_env, "bench", "small", spec)
    at = page("5_Benchmarks.py")
    load(at, "bench", "small")
    assert at.multiselect(key="bench-prec").value == ["float32", "int4-weight"]
    assert (at.number_input(key="bench-n").value, at.text_input(key="bench-thr").value) == (20, "f1=2")
    assert commands(at, "bench") == [
        "python -m engine bench --precisions=float32,int4-weight --questions=20 --no-llama-cpp --thresholds=f1=2"
    ]
    save_config(app_env, "bench", "odd", BenchSpec(baseline="no-such-run"))
    at = page("5_Benchmarks.py")
    at.selectbox(key="bench-config-pick").set_value("odd")
    at.button(key="bench-config-load").click().run()
    assert any("baseline run 'no-such-run'" in e.value for e in at.error), [e.value for e in at.error]


def test_the_training_form_starts_from_loaded_settings(app_env):
    save_config(app_env, "train", "two-epochs", replace(preset_spec("hotpotqa-recipe-7"), epochs=2.0, patience=3))
    at = page("3_Fine-tune.py")
    assert commands(at, "train") == ["python -m engine train"]  # recipe 7, as the command line starts
    load(at, "train", "two-epochs")
    assert next(w for w in at.number_input if w.label == "Epochs").value == 2.0
    assert next(w for w in at.number_input if w.label == "Patience").value == 3
    assert next(w for w in at.number_input if w.label == "Rank r").value == 16  # recipe 7's, as saved
    assert any("loaded settings" in c.value for c in at.caption)
    assert commands(at, "train") == ["python -m engine train --epochs=2.0 --patience=3"]
    save(at, "train", "copy")
    assert load_config(app_env, "train", "copy", TrainSpec) == load_config(app_env, "train", "two-epochs", TrainSpec)
    next(s for s in at.selectbox if s.label == "Recipe").set_value("collection-recipe-1").run()
    assert next(w for w in at.number_input if w.label == "Epochs").value == 3.0  # a recipe chosen: its values


def test_the_ab_form_loads_its_variants(app_env):
    variants = (VariantSpec("base", dtype="float32"), VariantSpec("fast", quantization="int8-dynamic", k=3))
    save_config(app_env, "ab", "int8", ExperimentSpec("base-vs-int8", variants, limit=40, mode="closed-book"))
    at = page("6_AB_Test.py")
    load(at, "ab", "int8")
    assert at.text_input(key="ab-name").value == "base-vs-int8"
    assert (at.number_input(key="ab-limit").value, at.selectbox(key="ab-mode").value) == (40, "closed-book")
    assert commands(at, "ab") == [
        "python -m engine ab --variant=name=base,dtype=float32 --variant=name=fast,quantization=int8-dynamic,k=3 "
        "--name=base-vs-int8 --limit=40 --mode=closed-book"
    ]
    save(at, "ab", "int8-copy")
    assert list_configs(app_env, "ab") == ["int8", "int8-copy"]
    assert load_config(app_env, "ab", "int8-copy", ExperimentSpec).variants == variants


def test_the_generation_form_saves_and_loads(app_env):
    save_config(app_env, "generate", "tiny", GenerationSpec(passages=10, seed=3))
    at = page("4_Datasets.py")
    load(at, "generate", "tiny")
    assert at.number_input(key="generate-passages").value == 10
    assert commands(at, "data generate") == ["python -m engine data generate --passages=10 --seed=3"]
    save(at, "generate", "tiny")
    assert any("already exist" in e.value for e in at.error), [e.value for e in at.error]
    save(at, "generate", "tiny", overwrite=True)
    assert not at.error, [e.value for e in at.error]
    assert load_config(app_env, "generate", "tiny", GenerationSpec) == GenerationSpec(passages=10, seed=3)
