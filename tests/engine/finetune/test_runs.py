"""Training runs on disk: which checkpoint a resume starts from."""

from __future__ import annotations

import json

from engine.finetune.runs import last_checkpoint


def test_a_checkpoint_cut_short_while_saving_is_passed_over(tmp_path) -> None:
    folder = tmp_path / "checkpoints"
    assert last_checkpoint(tmp_path) is None
    for step in (2, 10):
        (folder / f"checkpoint-{step}").mkdir(parents=True)
        (folder / f"checkpoint-{step}" / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    (folder / "checkpoint-9").mkdir()  # older than 10: not the newest, whatever it holds
    assert last_checkpoint(tmp_path) == folder / "checkpoint-10"
    (folder / "checkpoint-12").mkdir()  # killed after the weights, before the trainer state
    (folder / "checkpoint-12" / "adapter_model.safetensors").write_bytes(b"")
    (folder / "checkpoint-14").mkdir()  # killed while writing the trainer state
    (folder / "checkpoint-14" / "trainer_state.json").write_text('{"global_st')
    (folder / "checkpoint-old").mkdir()
    assert last_checkpoint(tmp_path) == folder / "checkpoint-10"
