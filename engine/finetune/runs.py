"""Training runs on disk: ``data_dir/finetune/<adapter>/`` with the stored spec, the curve and the
checkpoints; and the claim on an adapter name that makes one process at a time train it."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from engine.errors import InputError
from engine.file_locks import Claim, ClaimedError
from engine.finetune.curve import read_curve
from engine.finetune.spec import TrainSpec
from engine.models.adapters import AdapterRegistry, check_name
from engine.settings import Settings
from engine.write_policy import remove_tree

# data_dir/finetune/.claims/<adapter>.lock: outside the run folder, which overwriting a run removes
CLAIMS = ".claims"


def last_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint of a run, if any. The Trainer writes ``trainer_state.json`` last, so a
    checkpoint folder without a readable one was cut short (a kill while saving) and is passed over."""
    folder = Path(run_dir) / "checkpoints"
    found = [p for p in folder.glob("checkpoint-*") if p.is_dir() and p.name.split("-", 1)[1].isdigit()]
    for checkpoint in sorted(found, key=lambda p: -int(p.name.split("-", 1)[1])):
        try:
            json.loads((checkpoint / "trainer_state.json").read_text())
        except (OSError, ValueError):
            continue
        return checkpoint
    return None


def checkpoint_step(checkpoint: Path) -> int:
    return json.loads((checkpoint / "trainer_state.json").read_text())["global_step"]


def run_dir_for(adapter: str, settings: Settings) -> Path:
    return settings.data_dir / "finetune" / check_name(adapter)


def claim(adapter: str, settings: Settings) -> Claim:
    """Claim an adapter name for a training, at once or not at all: an exclusive lock (with this pid in its
    file), held until released or until this process ends, so the claim of a crashed trainer is free again
    and its stale pid is replaced. An InputError when another process, or another training in this one,
    holds it."""
    try:
        return Claim(settings.data_dir / "finetune" / CLAIMS / f"{check_name(adapter)}.lock")
    except ClaimedError as e:
        who = f"another process (pid {e.pid})" if e.pid else "another process"
        who = "another training in this process" if e.pid == os.getpid() else who
        raise InputError(
            f"Adapter {adapter!r} is being trained by {who}: wait for it to end or stop it, or choose another name."
        ) from None


def prepare_run(spec, settings: Settings, resume: bool, overwrite: bool, main: bool = True):
    """The run folder of a claimed adapter name, checked (and, on the main process, made ready), and the spec
    to train: ``(run_dir, spec)``. Resuming takes the stored spec. A new run starts in an empty folder: an
    old run of that name is removed, which needs ``overwrite``, as replacing a saved adapter does."""
    run_dir = run_dir_for(spec.adapter, settings)
    if resume:
        if not (run_dir / "spec.json").is_file():
            raise InputError(f"There is no training run of {spec.adapter!r} to resume.")
        return run_dir, TrainSpec.from_dict(json.loads((run_dir / "spec.json").read_text()))
    if AdapterRegistry(settings).exists(spec.adapter) and not overwrite:
        raise InputError(f"An adapter named {spec.adapter!r} exists: choose another name or overwrite it.")
    if (run_dir / "spec.json").is_file() and not overwrite:
        raise InputError(f"A training run of {spec.adapter!r} exists: resume it, or overwrite it to start over.")
    if main:  # under `accelerate launch` the other processes leave the folder to the main one
        remove_tree(run_dir, settings)  # the old run, or what a start that failed before training left
        run_dir.mkdir(parents=True)
    return run_dir, spec


@dataclass(frozen=True)
class RunInfo:
    adapter: str
    run_dir: Path
    checkpoint_step: int | None  # newest checkpoint's step; None: no checkpoint yet
    curve_steps: int  # the last step in the curve file
    saved: bool  # the adapter is in the registry


def list_runs(settings: Settings) -> list[RunInfo]:
    """Training runs in the data dir, newest first (a run with a checkpoint can be resumed)."""
    root = settings.data_dir / "finetune"
    if not root.is_dir():
        return []
    registry = AdapterRegistry(settings)
    found = []
    for run_dir in sorted(root.iterdir(), key=lambda p: p.stat().st_mtime, reverse=True):
        if not (run_dir / "spec.json").is_file():
            continue
        checkpoint = last_checkpoint(run_dir)
        curve = read_curve(run_dir)
        found.append(
            RunInfo(
                adapter=run_dir.name,
                run_dir=run_dir,
                checkpoint_step=checkpoint_step(checkpoint) if checkpoint else None,
                curve_steps=max((r["step"] for r in curve), default=0),
                saved=registry.exists(run_dir.name),
            )
        )
    return found
