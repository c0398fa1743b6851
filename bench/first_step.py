"""Time from ``engine train`` to its first training step, on a fresh data dir.

    .venv/bin/python bench/first_step.py --out docs/fine-tuning.md [--steps 3]
    .venv/bin/python bench/first_step.py --steps 0 --adapter hotpotqa-v7 --data DIR   # the whole run

Runs ``python -m engine train`` with the default preset (recipe 7) as a user would, in an empty
data dir (so the model is dequantized and cached, and no embedding or self-answer cache exists),
reads its progress lines as they come, and stops it after ``--steps`` steps (the first one, and a
few to see the pace with rows made as training reaches them; 0: the whole run, which leaves the
adapter in the data dir). The table: each progress phase and the seconds since the command started.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import emit  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
STEP = re.compile(r"\] step (\d+)/(\d+)")
TARGET_S = 180


def run(data_dir: Path, steps: int, adapter: str) -> tuple[list[tuple[float, str]], float | None]:
    """The progress lines with their times, and the seconds to the first step (None: it never came)."""
    env = {**os.environ, "STUDIO_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "engine", "train", "--adapter", adapter, "--no-mlflow"]
    began = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines, first = [], None
    for line in process.stdout:
        seconds = time.perf_counter() - began
        if not line.startswith("["):
            continue
        lines.append((seconds, line.split("] ", 1)[-1].strip()))
        print(f"{seconds:7.1f} s  {lines[-1][1]}", flush=True)
        if match := STEP.search(line):
            first = first if first is not None else seconds
            if steps and int(match.group(1)) >= steps:
                process.terminate()
                break
    process.wait()
    return lines, first


def table(lines: list[tuple[float, str]], first: float | None, data_dir: Path, adapter: str, steps: int) -> str:
    rows = [f"| {s:.1f} | {m.replace('|', '/')} |" for s, m in lines]
    verdict = "never reached" if first is None else f"{first:.0f} s ({'met' if first <= TARGET_S else 'not met'})"
    return "\n".join([
        f"First training step on a fresh data dir ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPU cores): "
        f"`python -m engine train --adapter {adapter}` (default preset, recipe 7) in an empty data dir "
        f"({data_dir.name}), {f'stopped after {steps} steps' if steps else 'to the end'}. Time to the first "
        f"step: **{verdict}**, target {TARGET_S} s.",
        "",
        "| seconds since start | progress |",
        "| ---: | --- |",
        *rows,
    ])  # fmt: skip


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=3, help="steps to run before stopping (0: the whole run)")
    p.add_argument("--adapter", default="first-step", help="the adapter's name")
    p.add_argument("--data", help="the data dir (a new, empty folder; default: a new temporary one)")
    p.add_argument("--out", help="append the table to this Markdown file")
    a = p.parse_args()
    data_dir = Path(a.data) if a.data else Path(tempfile.mkdtemp(prefix="studio-first-step-"))
    if data_dir.exists() and any(data_dir.iterdir()):
        raise SystemExit(f"{data_dir} is not empty: the measurement needs a fresh data dir.")
    lines, first = run(data_dir, a.steps, a.adapter)
    if not a.steps:  # the whole run: every phase and validation, the first steps and the end, not every step
        stepping = [x for x in lines if STEP.search("] " + x[1])]
        lines = sorted(set([x for x in lines if x not in stepping] + stepping[:3] + lines[-2:]))
    emit(table(lines, first, data_dir, a.adapter, a.steps), a.out)
    return 0 if first is not None else 1


if __name__ == "__main__":
    raise SystemExit(main())
