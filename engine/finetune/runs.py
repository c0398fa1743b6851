"""Training runs on disk: ``data_dir/finetune/<adapter>/`` with the stored spec, the curve,
the checkpoints and the pid of the process that trains it."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from engine.errors import InputError
from engine.settings import Settings


def last_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint of a run, if any."""
    from transformers.trainer_utils import get_last_checkpoint

    folder = Path(run_dir) / "checkpoints"
    found = get_last_checkpoint(str(folder)) if folder.is_dir() else None
    return Path(found) if found else None


def checkpoint_step(checkpoint: Path) -> int:
    return json.loads((checkpoint / "trainer_state.json").read_text())["global_step"]


def run_dir_for(adapter: str, settings: Settings) -> Path:
    from engine.finetune.adapters import check_name

    return settings.data_dir / "finetune" / check_name(adapter)


def claim(run_dir: Path) -> None:
    """Mark the run as this process's; refuse when another live process is training it."""
    import psutil

    owner = run_dir / "owner.pid"
    if owner.is_file():
        pid = int(owner.read_text().strip() or 0)
        if pid != os.getpid() and psutil.pid_exists(pid):
            raise InputError(f"Adapter {run_dir.name!r} is being trained by another process (pid {pid}).")
    if run_dir.is_dir():
        owner.write_text(str(os.getpid()))


@dataclass(frozen=True)
class RunInfo:
    adapter: str
    run_dir: Path
    checkpoint_step: int | None  # newest checkpoint's step; None: no checkpoint yet
    curve_steps: int  # the last step in the curve file
    saved: bool  # the adapter is in the registry


def list_runs(settings: Settings) -> list[RunInfo]:
    """Training runs in the data dir, newest first (a run with a checkpoint can be resumed)."""
    from engine.finetune.adapters import AdapterRegistry
    from engine.finetune.callbacks import read_curve

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
        found.append(RunInfo(run_dir.name, run_dir, checkpoint_step(checkpoint) if checkpoint else None,
                             max((r["step"] for r in curve), default=0), registry.exists(run_dir.name)))  # fmt: skip
    return found
