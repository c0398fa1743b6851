"""Preference training (DPO, ORPO) through TRL on the real bundled model, pairs from the shared HotpotQA split
saved as a real dataset version, the Studio's training run around it (checkpoints, resume, the registry)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from safetensors.torch import load_file

from engine import jobs
from engine.errors import InputError
from engine.evaluation.qa_sets import load_qa_set
from engine.finetune.curve import read_curve
from engine.finetune.examples import RagExampleSpec
from engine.finetune.preferences import load_pairs, messages_of, split_pairs
from engine.finetune.runs import last_checkpoint, run_dir_for
from engine.finetune.spec import TrainSpec
from engine.finetune.trainer import train
from engine.models.adapters import AdapterRegistry
from engine.qa.preference import make_pair
from engine.qa.schema import Context, QARecord
from engine.qa.versions import DatasetStore
from tests.support.training import kill_after_steps

SHORT = RagExampleSpec(max_source_chars=100)
DPO = TrainSpec(
    adapter="dpo-tiny", method="dpo", preferences="prefs", rag=SHORT, batch_size=2, max_length=256,
    learning_rate=2e-3, beta=0.1, val_limit=2, val_f1=False, stop_on="loss", patience=0, eval_every=2,
    precision="fp32", epochs=1.0, warmup_ratio=0.0,
)  # fmt: skip


def quiet(fraction: float, message: str) -> None:
    pass


def hotpot_pairs(settings, n: int = 8) -> list[QARecord]:
    """Pairs of HotpotQA training questions: the gold answer chosen, another question's answer rejected."""
    items = [it for it in load_qa_set(settings, "hotpotqa", "train").items if it.answer.lower() not in ("yes", "no")]
    items = items[: n + 1]
    return [
        make_pair(
            it.question,
            it.answer,
            items[(k + 1) % len(items)].answer,
            "gold",
            contexts=[Context(title, text) for title, text in it.paragraphs[:2]],
        )
        for k, it in enumerate(items[:n])
    ]


def margins(model, tokenizer, render, pairs, spec: TrainSpec) -> list[float]:
    """log p(chosen) - log p(rejected) per pair, each answer ended by the end-of-turn token, as TRL scores them."""
    found = []
    for pair in pairs:
        prompt = tokenizer(render(messages_of(pair, spec)), add_special_tokens=False).input_ids
        totals = []
        for answer in (pair.answer, pair.metadata["rejected"]):
            ids = tokenizer(answer + tokenizer.eos_token, add_special_tokens=False).input_ids
            with torch.no_grad():
                logits = model(torch.tensor([prompt + ids])).logits[0, len(prompt) - 1 : -1]
            totals.append(torch.log_softmax(logits.float(), -1).gather(1, torch.tensor(ids)[:, None]).sum().item())
        found.append(totals[0] - totals[1])
    return found


def test_a_preference_method_needs_pairs() -> None:
    with pytest.raises(InputError, match="DPO trains on preference pairs"):
        TrainSpec(method="dpo")
    with pytest.raises(InputError, match="training method 'ppo'"):
        TrainSpec(method="ppo", preferences="x")
    with pytest.raises(InputError, match="Quantization-aware training is for SFT"):
        TrainSpec(method="orpo", preferences="x", quantization_aware="nf4")


def test_a_qa_set_is_not_a_preference_dataset(settings) -> None:
    DatasetStore(settings).save("plain", [QARecord("Who?", "Ada")])
    with pytest.raises(InputError, match="not a preference dataset: 1 of 1 records have no rejected answer"):
        load_pairs("plain", settings)


def test_pairs_are_split_by_their_marks_or_a_seeded_tenth() -> None:
    pairs = [make_pair(f"q{n}?", "yes", "no", "human") for n in range(30)]
    train, val = split_pairs(pairs, seed=0)
    assert len(val) == 3 and len(train) == 27 and not {p.id for p in val} & {p.id for p in train}
    assert split_pairs(pairs, seed=0) == (train, val)
    marked = [p.with_metadata(split="validation") if n < 5 else p for n, p in enumerate(pairs)]
    train, val = split_pairs(marked, seed=0)
    assert [p.question for p in val] == [f"q{n}?" for n in range(5)] and len(train) == 25


def test_a_pair_is_asked_in_its_recorded_messages_or_the_training_prompt() -> None:
    recorded = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Who?"}]
    pair = make_pair("Who?", "Ada", "Bob", "correction", messages=recorded)
    assert messages_of(pair, DPO) == recorded
    rebuilt = messages_of(
        make_pair("Who wrote it?", "Ada", "Bob", "judge", contexts=[Context("Book", "Ada wrote it.")]), DPO
    )
    assert rebuilt[-1]["role"] == "user" and "[1] Book: Ada wrote it." in rebuilt[-1]["content"]
    assert "Who wrote it?" in rebuilt[-1]["content"]


@pytest.mark.slow
def test_dpo_moves_the_adapter_toward_the_chosen_answers_and_leaves_the_base(settings, tracker, capsys) -> None:
    from engine.models.generation import Generator
    from engine.models.loader import load_model
    from engine.models.spec import DEFAULT_MODEL

    pairs = hotpot_pairs(settings)
    DatasetStore(settings).save("prefs", pairs, note="test pairs")
    loaded = load_model(replace(DEFAULT_MODEL, dtype="float32"), settings)
    render = Generator(loaded).render
    train_pairs, _ = split_pairs(pairs, DPO.seed)
    before = margins(loaded.model, loaded.tokenizer, render, train_pairs, DPO)

    result = train(DPO, settings, tracker, quiet)
    assert result.steps == 4  # 7 training pairs (one held out), batch 2
    after = margins(result.model, loaded.tokenizer, render, train_pairs, DPO)
    assert sum(after) / len(after) > sum(before) / len(before) + 1.0  # nats: chosen answers made more likely
    info = AdapterRegistry(settings).get("dpo-tiny")
    assert not (info.path / "ref").exists()  # DPO's frozen reference copy is not part of the adapter
    weights = load_file(info.path / "adapter_model.safetensors")
    assert all(v.abs().sum() > 0 for k, v in weights.items() if "lora_B" in k)
    fresh = loaded.model.state_dict()
    trained = {k.replace("base_model.model.", "").replace(".base_layer", ""): v
               for k, v in result.model.state_dict().items() if "lora_" not in k}  # fmt: skip
    assert all(torch.equal(fresh[k], trained[k]) for k in fresh)
    assert info.train["method"] == "dpo" and info.datasets[0]["dataset"] == "prefs"
    from engine.cli.main import main

    assert main(["adapters", "list"]) == 0 and "dpo-tiny: DPO on prefs, base" in capsys.readouterr().out
    assert info.datasets[0]["origins"] == {"gold": 8}
    curve = [r for r in read_curve(run_dir_for("dpo-tiny", settings)) if "loss" in r]
    assert len(curve) == 4 and all("rewards_margins" in r and "rewards_chosen" in r for r in curve)
    assert tracker.client.get_metric_history(result.run_id, "rewards_margins")
    inputs = tracker.client.get_run(result.run_id).inputs.dataset_inputs
    assert [d.dataset.name for d in inputs] == [f"prefs@{info.datasets[0]['version']}"]


@pytest.mark.slow
def test_dpo_from_an_sft_adapter_resumes_after_kill_9_and_orpo_trains(settings) -> None:
    DatasetStore(settings).save("prefs", hotpot_pairs(settings, 6))
    sft = TrainSpec(adapter="sft", rag=SHORT, train_limit=2, batch_size=2, max_length=256, val_limit=2,
                    val_f1=False, stop_on="loss", patience=0, precision="fp32")  # fmt: skip
    train(sft, settings, None, quiet)
    # 5 training pairs (one of 6 held out), batch 1: 5 steps, a checkpoint after each; killed in the background
    spec = replace(DPO, adapter="dpo-cont", start_from="sft", batch_size=1, eval_every=1)
    killed_at = kill_after_steps(jobs.start_job("train", {"spec": spec.to_dict()}, settings), "dpo-cont", 1, settings)
    run_dir = run_dir_for("dpo-cont", settings)
    checkpoint = last_checkpoint(run_dir)
    assert (checkpoint / "ref").is_dir()  # the reference (the SFT adapter) travels with the checkpoint
    resumed = jobs.start_job("train", {"spec": {"adapter": "dpo-cont"}, "resume": True}, settings)
    final = jobs.wait_job(resumed.id, 300, settings)
    assert final.status == "succeeded", jobs.tail_log(resumed.id, 30, settings)
    steps = [r["step"] for r in read_curve(run_dir) if "loss" in r]
    assert final.result["steps"] == 5 and steps == [1, 2, 3, 4, 5], f"killed at {killed_at}, from {checkpoint.name}"
    assert AdapterRegistry(settings).get("dpo-cont").lora["r"] == AdapterRegistry(settings).get("sft").lora["r"]
    assert AdapterRegistry(settings).get("dpo-cont").train["start_from"] == "sft"

    orpo = train(replace(DPO, adapter="orpo", method="orpo", batch_size=5), settings, None, quiet)
    assert orpo.steps == 1
    curve = [r for r in read_curve(run_dir_for("orpo", settings)) if "loss" in r]
    assert curve and "log_odds_ratio" in curve[0] and "nll_loss" in curve[0]
