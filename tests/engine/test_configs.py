"""Settings files: YAML round trips of the five job specs, what a bad file says, saving into the data dir, the
equivalent command line (parsed back by the real parsers) and the commands' --config."""

from __future__ import annotations

import shlex
from dataclasses import replace

import pytest

from engine.ab.spec import ExperimentSpec, VariantSpec
from engine.benchmark.matrix import BenchSpec
from engine.cli.commands import cli_command
from engine.cli.data import generation_spec
from engine.cli.data import parser as data_parser
from engine.cli.finetune import train_spec
from engine.cli.main import eval_spec
from engine.cli.main import parser as main_parser
from engine.cli.measure import ab_spec, bench_spec
from engine.configs import from_yaml, list_configs, load_config, parse_args, save_config, to_yaml
from engine.data.filters import FilterSpec
from engine.data.generation import GenerationSpec
from engine.errors import InputError, NotFoundError
from engine.evaluation.runner import EvalSpec
from engine.finetune.examples import MixSpec, RagExampleSpec
from engine.finetune.lora import LoraSpec
from engine.finetune.presets import preset_spec
from engine.finetune.spec import TrainSpec

# Each kind with settings away from the defaults, as a form makes them.
SPECS = {
    "train": replace(
        preset_spec("collection-recipe-3", dataset="notes-qa", kb="notes", adapter="notes-v2"),
        epochs=2.5,
        learning_rate=5e-4,
        lora=LoraSpec(r=4, alpha=8, include_mlp=True, targets=("q_proj", "v_proj")),
        rag=RagExampleSpec(sources="gold", distractors=3, answer_style="evidence"),
        mix=MixSpec.with_shares(dolly=0.1, primary="dataset", hotpotqa=0.3),
        val_f1=False,
        stop_on="loss",
        train_limit=50,
    ),
    "eval": EvalSpec(dataset="notes-qa", split="test", mode="kb", kb="notes", limit=30, k=3, adapter="my adapter"),
    "generate": GenerationSpec(kb="manuals", dataset="manuals-qa", passages=40, filters=FilterSpec(max_copy=0.5)),
    "ab": ExperimentSpec(
        "base-vs-int4",
        (VariantSpec("base", dtype="float32"), VariantSpec("int4", quantization="int4-weight", temperature=0.7)),
        split="",
        limit=20,
        mode="closed-book",
    ),
    "bench": BenchSpec(precisions=("float32", "int4-weight"), questions=0, llama_cpp=False, thresholds="f1=2"),
}
BUILDERS = {"train": train_spec, "eval": eval_spec, "ab": ab_spec, "bench": bench_spec}


def parsed(line: str):
    """The spec the command line runs, through the command's own parser and spec builder."""
    words = shlex.split(line, comments=True)
    assert words[:3] == ["python", "-m", "engine"], line
    if words[3] == "data":
        return generation_spec(parse_args(data_parser(), words[4:]))
    a = parse_args(main_parser(), words[3:])
    return BUILDERS[a.command](a)


@pytest.mark.parametrize("kind", SPECS)
def test_a_spec_survives_yaml(kind):
    spec = SPECS[kind]
    text = to_yaml(spec)
    assert f"\nkind: {kind}\n" in text
    assert from_yaml(type(spec), text) == spec
    assert from_yaml(type(spec), text.replace(f"kind: {kind}\n", "")) == spec  # the kind line is optional


def test_missing_keys_take_the_class_defaults():
    assert from_yaml(EvalSpec, "kind: eval\nk: 3\n") == EvalSpec(k=3)
    assert from_yaml(TrainSpec, "lora: {r: 4}\nlearning_rate: 3e-4\n") == TrainSpec(lora=LoraSpec(r=4))
    assert from_yaml(BenchSpec, "") == BenchSpec()


@pytest.mark.parametrize(
    ("spec_type", "text", "message"),
    [
        (EvalSpec, "k: [1, 2", "cannot be read"),
        (EvalSpec, "- k\n", "mapping"),
        (EvalSpec, "kind: train\n", "train settings, not eval"),
        (EvalSpec, "kk: 3\n", "Unknown setting kk"),
        (TrainSpec, "lora: {rank: 4}\n", "Unknown setting lora.rank"),
        (EvalSpec, "k: three\n", "'k' must be a whole number"),
        (EvalSpec, "k: true\n", "'k' must be a whole number"),
        (EvalSpec, "limit: 0\n", "'limit' must be at least 1"),
        (TrainSpec, "lora: {r: 999}\n", "'lora.r' must be at most 256"),
        (EvalSpec, "mode: fancy\n", "'mode' is 'fancy'"),
        (GenerationSpec, "filters: {max_copy: 1.5}\n", "'filters.max_copy' must be at most 1.0"),
        (ExperimentSpec, "variants: [{name: base}, {name: int4}]\n", "'name' is missing"),
        (ExperimentSpec, "name: x\nvariants: [{name: base}, {k: 2}]\n", r"'variants\[1\].name' is missing"),
        (ExperimentSpec, "name: x\nvariants: [{name: base}]\n", "at least 2 variants"),  # the spec's own check
    ],
)
def test_a_bad_file_is_an_input_error_naming_the_field(spec_type, text, message):
    with pytest.raises(InputError, match=message):
        from_yaml(spec_type, text)


def test_saved_settings_are_listed_loaded_and_never_replaced_unasked(settings):
    spec = SPECS["eval"]
    path = save_config(settings, "eval", "quick", spec)
    assert path == settings.data_dir / "configs" / "eval" / "quick.yaml"
    assert list_configs(settings, "eval") == ["quick"] and list_configs(settings, "bench") == []
    assert load_config(settings, "eval", "quick", EvalSpec) == spec
    with pytest.raises(InputError, match="already exist"):
        save_config(settings, "eval", "quick", EvalSpec())
    assert load_config(settings, "eval", "quick", EvalSpec) == spec
    save_config(settings, "eval", "quick", EvalSpec(), overwrite=True)
    assert load_config(settings, "eval", "quick", EvalSpec) == EvalSpec()
    with pytest.raises(InputError, match="Invalid settings name"):
        save_config(settings, "eval", "../escape", spec)
    with pytest.raises(InputError, match="not bench settings"):
        save_config(settings, "bench", "quick", spec)
    with pytest.raises(NotFoundError):
        load_config(settings, "eval", "nothing", EvalSpec)


@pytest.mark.parametrize("kind", SPECS)
def test_the_command_line_runs_the_same_spec(kind):
    spec = SPECS[kind]
    line = cli_command(kind, spec)
    assert "#" not in line, line  # every setting of these has a flag
    assert parsed(line) == spec, line
    default = type(spec)() if kind != "ab" else replace(spec, name="ab", split="test", limit=100, mode="distractor")
    assert parsed(cli_command(kind, default)) == default


def test_the_command_line_has_only_the_flags_that_change_a_default():
    assert cli_command("eval", EvalSpec()) == "python -m engine eval"
    quoted = "python -m engine eval --k=3 '--adapter=my adapter'"
    assert cli_command("eval", EvalSpec(k=3, adapter="my adapter")) == quoted
    assert cli_command("train", preset_spec("hotpotqa-recipe-7")) == "python -m engine train"
    recipe_1 = preset_spec("collection-recipe-1", dataset="notes-qa", kb="notes", adapter="notes-qa-lora")
    line = "python -m engine train --dataset=notes-qa --preset=collection-recipe-1 --kb=notes"
    assert cli_command("train", recipe_1) == line  # the recipe the form started from, named
    assert cli_command("bench", BenchSpec(llama_cpp=False)) == "python -m engine bench --no-llama-cpp"


def test_what_no_flag_sets_is_named_and_a_saved_file_says_it(settings):
    spec = EvalSpec(k=3, limit=None, max_source_chars=300)  # the command has no flag for either
    line = cli_command("eval", spec)
    assert line.startswith("python -m engine eval --k=3  # no flag sets limit, max_source_chars")
    path = save_config(settings, "eval", "long", spec)
    line = cli_command("eval", spec, path)
    assert line == f"python -m engine eval --config {path}"
    assert parsed(line) == spec
    assert cli_command("eval", EvalSpec(k=3), path) == "python -m engine eval --k=3"  # the flags say it all


@pytest.mark.parametrize("kind", SPECS)
def test_config_gives_the_defaults_and_the_flags_given_win(kind, settings):
    spec = SPECS[kind]
    path = save_config(settings, kind, "mine", spec)
    words = ["data", "generate"] if kind == "generate" else [kind]
    assert parsed(shlex.join(["python", "-m", "engine", *words, "--config", str(path)])) == spec
    flags, changes = {
        "train": (["--epochs=1.0"], {"epochs": 1.0}),
        "eval": (["--limit=200"], {"limit": 200}),  # given at its default value, it still wins
        "generate": (["--passages=1500"], {"passages": 1500}),
        "ab": (["--variant=name=solo", "--variant=name=duo"], {"variants": (VariantSpec("solo"), VariantSpec("duo"))}),
        "bench": (["--questions=100"], {"questions": 100}),
    }[kind]
    line = shlex.join(["python", "-m", "engine", *words, "--config", str(path), *flags])
    changed = replace(spec, **changes)
    assert parsed(line) == changed
    assert cli_command(kind, changed, path).startswith(f"python -m engine {' '.join(words)}")


def test_a_bad_config_file_is_one_error_line_and_status_2(tmp_path, capsys):
    from engine.cli.main import main

    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: eval\nk: 0\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", "--config", str(bad)])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err == f"error: {bad}: Setting 'k' must be at least 1, not 0.\n"
    with pytest.raises(SystemExit):
        main(["train", "--config", str(tmp_path / "missing.yaml")])
    assert "There is no settings file" in capsys.readouterr().err


@pytest.mark.slow
def test_an_evaluation_run_logs_its_settings_file(generator, embedder, settings, tracker, tmp_path):
    from engine.evaluation.runner import run_evaluation

    spec = EvalSpec(mode="closed-book", limit=2, batch_size=2, max_new_tokens=8)
    result = run_evaluation(spec, generator, embedder, None, settings, tracker)
    local = tracker.client.download_artifacts(result.run_id, "config.yaml", str(tmp_path))
    with open(local, encoding="utf-8") as f:
        assert from_yaml(EvalSpec, f.read()) == spec
