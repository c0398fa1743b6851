"""The adapter registry: names, atomic saves, metadata, applying and merging a real LoRA adapter."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from engine.errors import InputError, NotFoundError
from engine.finetune.lora import LoraSpec
from engine.models.adapters import META_FILE, AdapterRegistry, check_name, read_info
from engine.models.export import merge_export
from engine.models.loader import LoadedModel, apply_adapter
from engine.models.spec import DEFAULT_MODEL, ModelSpec
from engine.settings import Settings
from tests.support.adapters import random_lora

PROMPT = "The capital of France is"
# full precision on CPU wherever the session model runs, so logits compare within 1e-4
CPU = dataclasses.replace(DEFAULT_MODEL, dtype="float32", device="cpu")
DATASET = {"name": "hotpotqa-train", "path": "/data/hotpotqa-train.jsonl", "sha256": "ab" * 32, "examples": 200}


def meta(**fields) -> dict:
    base = {
        "base": DEFAULT_MODEL,  # a ModelSpec: saved as a dict of its fields
        "datasets": [DATASET],
        "lora": LoraSpec(),
        "prompt": "few-shot",
        "metrics": {"f1": 0.25},
        "mlflow_run_id": "run123",
        "train": {"epochs": 1, "learning_rate": 2e-4},
    }
    return {**base, **fields}


class FakePeft:
    """Writes files as PEFT's save_pretrained does, without a model: for the registry's bookkeeping."""

    def __init__(self, payload: bytes = b"weights", fail: bool = False) -> None:
        self.payload, self.fail = payload, fail

    def save_pretrained(self, path: str, safe_serialization: bool = True) -> None:
        assert safe_serialization
        Path(path).mkdir(parents=True)
        (Path(path) / "adapter_config.json").write_text("{}")
        if self.fail:
            raise RuntimeError("disk full")
        (Path(path) / "adapter_model.safetensors").write_bytes(self.payload)


def logits(model, ids):
    import torch

    with torch.no_grad():
        return model(input_ids=ids).logits.float().cpu()


# -- names ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ada", "my-adapter_v1.2", "A" * 64, "0day", "smollm2.hotpot-r8"])
def test_check_name_accepts_good_names(name: str) -> None:
    assert check_name(name) == name
    assert check_name(f"  {name}\n") == name


@pytest.mark.parametrize(
    "name",
    ["../x", "a/b", "a\\b", "", " ", ".hidden", "a" * 65, "ab", "192.168.1.1", "has space", "a..b", "-x", "_x", "x\0y"],
)
def test_check_name_rejects_bad_names(name: str, settings) -> None:
    with pytest.raises(InputError, match="letters, digits"):
        check_name(name)
    registry = AdapterRegistry(settings)
    for call in (registry.get, registry.path, registry.exists, registry.delete):
        with pytest.raises(InputError):
            call(name)
    with pytest.raises(InputError):
        registry.save(FakePeft(), name, meta())


# -- bookkeeping (no model) -------------------------------------------------------------------


def test_empty_registry(settings) -> None:
    registry = AdapterRegistry(settings)
    assert registry.root == settings.data_dir / "adapters"
    assert registry.names() == [] and registry.list() == []
    with pytest.raises(NotFoundError, match="none saved yet"):
        registry.get("nothing")


def test_failed_save_leaves_no_trace_and_keeps_the_old_adapter(settings) -> None:
    registry = AdapterRegistry(settings)
    registry.save(FakePeft(b"old"), "ada", meta())
    with pytest.raises(RuntimeError):
        registry.save(FakePeft(fail=True), "ada", meta(), overwrite=True)
    with pytest.raises(RuntimeError):
        registry.save(FakePeft(fail=True), "bob", meta())
    assert sorted(p.name for p in registry.root.iterdir()) == ["ada"]  # no temp or half-written folders
    assert (registry.path("ada") / "adapter_model.safetensors").read_bytes() == b"old"
    info = registry.save(FakePeft(b"new"), "ada", meta(prompt="zero-shot"), overwrite=True)
    assert (info.path / "adapter_model.safetensors").read_bytes() == b"new"
    assert info.prompt == "zero-shot"
    assert sorted(p.name for p in registry.root.iterdir()) == ["ada"]


def test_an_adapter_is_asked_with_the_prompt_sources_and_answer_style_it_was_trained_with(settings) -> None:
    from engine.rag.pipeline import sampling_for
    from engine.rag.prompt import prompt_for

    registry = AdapterRegistry(settings)
    rag = {"max_source_chars": 450, "answer_style": "evidence"}
    registry.save(FakePeft(), "evi", meta(prompt="zero-shot", train={"epochs": 1, "rag": rag}))
    registry.save(FakePeft(), "old", meta(train={"epochs": 1}))  # trained before answer styles existed
    template = prompt_for(settings, "evi")
    assert (template.examples, template.max_source_chars, template.answer_style) == ((), 450, "evidence")
    assert template.answer_from("Evidence: Ann was born in Lyon. Answer: Lyon") == "Lyon"
    assert sampling_for(template).max_new_tokens == 256
    assert prompt_for(settings, "evi", answer_style="short", max_source_chars=600).answer_style == "short"
    old = prompt_for(settings, "old")
    assert (old.answer_style, old.max_source_chars, len(old.examples)) == ("short", 600, 3)
    assert sampling_for(old).max_new_tokens == 32
    from engine.evaluation.runner import EvalSpec, template

    # an evaluation asks as the Query page does: the adapter's trained source length, unless one is given
    assert template(EvalSpec(adapter="evi"), settings).max_source_chars == 450
    assert template(EvalSpec(adapter="evi", max_source_chars=300), settings).max_source_chars == 300
    assert template(EvalSpec(), settings).max_source_chars == 600


def test_update_meta_merges_metrics_and_refuses_unknown_fields(settings) -> None:
    registry = AdapterRegistry(settings)
    registry.save(FakePeft(), "ada", meta())
    info = registry.update_meta("ada", metrics={"exact_match": 0.1, "f1": 0.5}, mlflow_run_id="run456")
    assert info.metrics == {"f1": 0.5, "exact_match": 0.1}
    assert info.mlflow_run_id == "run456" and info.prompt == "few-shot"
    assert registry.get("ada") == info
    with pytest.raises(InputError, match="choose from"):
        registry.update_meta("ada", colour="blue")
    with pytest.raises(InputError):
        registry.update_meta("ada", name="bob")  # renaming goes through rename()
    with pytest.raises(NotFoundError):
        registry.update_meta("bob", prompt="x")


def test_corrupt_metadata_does_not_break_the_listing(settings) -> None:
    registry = AdapterRegistry(settings)
    registry.save(FakePeft(), "good", meta())
    registry.save(FakePeft(), "older", meta())
    data = json.loads((registry.path("older") / META_FILE).read_text())
    (registry.path("older") / META_FILE).write_text(json.dumps({**data, "created": "2020-01-01T00:00:00+00:00"}))
    registry.save(FakePeft(), "broken", meta())
    (registry.path("broken") / META_FILE).write_text("{not json")
    registry.save(FakePeft(), "bare", meta())
    (registry.path("bare") / META_FILE).unlink()
    (registry.root / "stray.txt").write_text("not an adapter")

    infos = {i.name: i for i in registry.list()}
    assert set(infos) == {"good", "older", "broken", "bare"} == set(registry.names())
    assert registry.list()[-1].name == "older"  # newest first
    for name in ("broken", "bare"):
        assert infos[name].base == {} and infos[name].metrics == {} and infos[name].size_bytes > 0
        assert infos[name].created  # from the folder's time
        with pytest.raises(InputError, match="base model"):
            infos[name].base_spec()
    assert infos["good"].base_spec() == DEFAULT_MODEL


def test_base_spec_ignores_unknown_keys(tmp_path: Path) -> None:
    info = read_info(tmp_path)
    info = dataclasses.replace(info, base={"source": "org/model", "gguf_file": None, "dtype": "float16", "new": 1})
    assert info.base_spec() == ModelSpec(
        name="smollm2-135m-instruct", source="org/model", gguf_file=None, dtype="float16"
    )


def test_apply_adapter_refuses_another_base(settings) -> None:
    registry = AdapterRegistry(settings)
    registry.save(FakePeft(), "ada", meta())
    loaded = LoadedModel(CPU, model=None, tokenizer=None, device="cpu", load_seconds=0.0, from_cache=True)
    other = {"source": "HuggingFaceTB/SmolLM2-360M-Instruct", "gguf_file": None}
    info = registry.update_meta("ada", base=other)
    with pytest.raises(InputError, match="SmolLM2-360M-Instruct"):
        apply_adapter(loaded, info)
    info = registry.update_meta("ada", base={**dataclasses.asdict(DEFAULT_MODEL), "gguf_file": "other.gguf"})
    with pytest.raises(InputError, match="other.gguf"):
        apply_adapter(loaded, info.path)
    with pytest.raises(InputError, match="not a saved adapter"):
        apply_adapter(loaded, settings.data_dir)


def test_export_target_must_be_new_or_empty(settings, tmp_path: Path) -> None:
    registry = AdapterRegistry(settings)
    registry.save(FakePeft(), "ada", meta())
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="already exists"):
        merge_export(registry, "ada", full, settings)
    with pytest.raises(InputError, match="not an unchanged export of the Studio"):
        merge_export(registry, "ada", full, settings, overwrite=True)
    with pytest.raises(InputError):
        merge_export(registry, "ada", full / "keep.txt", settings)
    assert (full / "keep.txt").read_text() == "mine"


# -- a real LoRA adapter on the bundled model -------------------------------------------------


@pytest.fixture(scope="module")
def lora(generator, session_settings):
    """A fresh LoRA adapter on a float32 copy of the bundled model (never the shared model itself), with
    nonzero lora_B so that it changes the outputs; and the base and adapted logits for PROMPT."""

    from engine.models.loader import load_model

    model = random_lora(load_model(CPU, session_settings).model)
    model.eval()
    ids = generator.tokenizer(PROMPT, return_tensors="pt").input_ids
    with model.disable_adapter():
        base = logits(model, ids)
    return {"model": model, "ids": ids, "base": base, "adapted": logits(model, ids)}


@pytest.fixture(scope="module")
def saved(lora, session_settings, tmp_path_factory):
    """The adapter saved in a registry of its own, sharing the session's converted model cache."""
    data = tmp_path_factory.mktemp("adapters-data")
    (data / "models").symlink_to(session_settings.models_dir, target_is_directory=True)
    settings = Settings(data_dir=data, shared_data_dir=session_settings.shared_data_dir)
    registry = AdapterRegistry(settings)
    return registry, registry.save(lora["model"], "hotpot-r8", meta())


@pytest.fixture(scope="module")
def merged(saved, lora, session_settings):
    """The logits of a freshly loaded base model with the adapter applied and merged."""
    from peft import PeftModel

    from engine.models.loader import load_model

    loaded = load_model(CPU, session_settings)
    model = apply_adapter(loaded, saved[1], merge=True)
    assert not isinstance(model, PeftModel) and not model.training
    assert not any("lora" in name for name, _ in model.named_parameters())
    return logits(model, lora["ids"])


@pytest.mark.slow
def test_save_list_get_rename_delete_a_real_adapter(lora, settings) -> None:
    registry = AdapterRegistry(settings)
    info = registry.save(lora["model"], "hotpot-r8", meta())
    assert registry.names() == ["hotpot-r8"] and registry.exists("hotpot-r8")
    assert registry.list() == [info] == [registry.get("hotpot-r8")]
    assert info.path == registry.path("hotpot-r8") == settings.data_dir / "adapters" / "hotpot-r8"
    assert info.base == dataclasses.asdict(DEFAULT_MODEL) and info.base_spec() == DEFAULT_MODEL
    assert info.datasets == (DATASET,) and info.lora == {
        **dataclasses.asdict(LoraSpec()),
        "targets": [],
    }  # JSON has lists
    assert info.prompt == "few-shot" and info.metrics == {"f1": 0.25} and info.mlflow_run_id == "run123"
    assert info.train == {"epochs": 1, "learning_rate": 2e-4} and info.created.endswith("+00:00")
    files = {p.name for p in info.path.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "studio.json"} <= files
    assert not list(info.path.glob("*.bin"))
    assert info.size_bytes >= (info.path / "adapter_model.safetensors").stat().st_size > 10_000
    assert json.loads((info.path / META_FILE).read_text())["name"] == "hotpot-r8"

    with pytest.raises(InputError, match="already exists"):
        registry.save(lora["model"], "hotpot-r8", meta())
    renamed = registry.rename("hotpot-r8", "hotpot-r8-v2")
    assert registry.names() == ["hotpot-r8-v2"] and not registry.exists("hotpot-r8")
    assert renamed.name == "hotpot-r8-v2" and renamed.metrics == info.metrics
    assert json.loads((renamed.path / META_FILE).read_text())["name"] == "hotpot-r8-v2"
    registry.save(lora["model"], "other", meta())
    with pytest.raises(InputError, match="already exists"):
        registry.rename("other", "hotpot-r8-v2")
    registry.delete("hotpot-r8-v2")
    assert registry.names() == ["other"]
    with pytest.raises(NotFoundError, match="Known adapters: other"):
        registry.get("hotpot-r8-v2")


@pytest.mark.slow
def test_merged_adapter_changes_the_base_and_matches_the_unmerged_model(lora, merged) -> None:
    assert (lora["adapted"] - lora["base"]).abs().max() > 1e-2  # the adapter does something
    assert (merged - lora["base"]).abs().max() > 1e-2
    assert (merged - lora["adapted"]).abs().max() < 1e-4


@pytest.mark.slow
def test_merge_export_loads_as_a_standalone_model(saved, lora, merged, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    registry, info = saved
    target = tmp_path / "export"
    target.mkdir()  # an empty folder is fine
    assert merge_export(registry, info.name, target, registry.settings) == target
    assert (target / "model.safetensors").is_file() and (target / "config.json").is_file()
    assert not list(target.glob("*.bin")) and not (target / "adapter_config.json").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folder left
    export = json.loads((target / "studio-export.json").read_text())
    assert export["adapter"] == "hotpot-r8" and export["base"] == info.base

    model = AutoModelForCausalLM.from_pretrained(target)
    assert AutoTokenizer.from_pretrained(target)(PROMPT, return_tensors="pt").input_ids.equal(lora["ids"])
    assert (logits(model, lora["ids"]) - merged).abs().max() < 1e-4
