"""A training run's live curve file: one JSON row per step or validation, read by the page and the CLI.

Apart from the Trainer callbacks that write it so that reading a curve does not load transformers.
"""

from __future__ import annotations

import json
from pathlib import Path

from engine.write_policy import write_atomic

CURVE = "curve.jsonl"


def read_curve(run_dir: Path) -> list[dict]:
    """The rows of a run's curve file (training steps and validations), oldest first."""
    path = Path(run_dir) / CURVE
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def cut_curve(run_dir: Path, step: int) -> None:
    """Drop the rows after ``step`` (a resume from the checkpoint at ``step`` trains them again)."""
    rows = [r for r in read_curve(run_dir) if r["step"] <= step]
    write_atomic(Path(run_dir) / CURVE, "".join(json.dumps(r) + "\n" for r in rows))
