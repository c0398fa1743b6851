"""Trainer callbacks: live progress and curves, validation F1, a graceful stop, MLflow logging.

The loss curve must have no gap and no repeat across a kill and a resume. Steps after the
last checkpoint are lost with the process and trained again after the resume, so per-step
rows are written to MLflow only when a checkpoint is saved (and at the end), and the live
curve file is cut back to the checkpoint's step when a run resumes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import psutil
from transformers import TrainerCallback

from engine.finetune.curve import CURVE
from engine.finetune.preferences import logged_values


class CurveCallback(TrainerCallback):
    """Per-step loss, learning rate, tokens/s and memory: to the curve file at once (the page
    draws it live), to MLflow at each checkpoint, and to ``report(fraction, message)``."""

    def __init__(self, run_dir: Path, report: Callable[[float, str], None], tracker=None, run_id=None):
        self.path = Path(run_dir) / CURVE
        self.report, self.tracker, self.run_id = report, tracker, run_id
        self.pending: list[tuple[int, dict]] = []
        self.process = psutil.Process()
        self.process.cpu_percent(None)
        self.last = (time.perf_counter(), 0)  # (time, tokens seen) at the last log
        self.started = time.perf_counter()
        self.first_step = 0

    def on_train_begin(self, args, state, control, **kwargs):
        self.first_step = state.global_step  # > 0 after a resume
        self.started = time.perf_counter()
        self.last = (self.started, state.num_input_tokens_seen)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs or "loss" not in logs:
            return  # evaluations are recorded by ValidationCallback, with the task metric
        now = time.perf_counter()
        tokens = state.num_input_tokens_seen - self.last[1]
        row = self.record(
            state,
            {
                "loss": logs["loss"],
                "learning_rate": logs.get("learning_rate", 0.0),
                "tokens_per_s": tokens / max(1e-9, now - self.last[0]),
                "rss_mb": self.process.memory_info().rss / 2**20,
                "cpu_percent": self.process.cpu_percent(None),
                **logged_values(logs),  # DPO's and ORPO's rewards and log-probabilities
            },
        )
        self.last = (now, state.num_input_tokens_seen)
        done, left = state.global_step - self.first_step, state.max_steps - state.global_step
        rate = done / max(1e-9, now - self.started)
        eta = f", ETA {left / rate / 60:.1f} min" if rate > 0 and left > 0 else ""
        self.report(
            state.global_step / max(1, state.max_steps),
            f"step {state.global_step}/{state.max_steps}{eta}, {row['tokens_per_s']:.0f} tokens/s, "
            f"RSS {row['rss_mb']:.0f} MB",
        )

    def record(self, state, values: dict) -> dict:
        """Append a row for the current step to the curve file and to the MLflow queue."""
        row = {"step": state.global_step, "epoch": round(state.epoch or 0.0, 4), "time": time.time(), **values}
        if not state.is_world_process_zero:  # several GPUs: one process keeps the records
            return row
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        self.pending.append((state.global_step, values))
        return row

    def flush(self) -> None:
        if self.tracker is not None and self.run_id and self.pending:
            self.tracker.log_steps(self.run_id, self.pending)
        self.pending = []

    def on_save(self, args, state, control, **kwargs):
        self.flush()

    def on_train_end(self, args, state, control, **kwargs):
        self.flush()


class ValidationCallback(TrainerCallback):
    """Adds the task metric (``eval_f1``, ``eval_em``) to each evaluation, from ``validate(model)``.

    It must come before EarlyStoppingCallback in the callback list: early stopping and the
    choice of the best checkpoint read the metrics this callback adds.
    """

    def __init__(self, validate, curve: CurveCallback, report: Callable[[float, str], None]):
        self.validate, self.curve, self.report = validate, curve, report  # validate(model) -> metrics, or None

    def on_evaluate(self, args, state, control, metrics=None, model=None, **kwargs):
        if metrics is None:
            return
        if self.validate is not None and model is not None:
            was_training = model.training
            model.eval()
            found = self.validate(model)
            if was_training:
                model.train()
            metrics.update({f"eval_{k}": v for k, v in found.items()})
        values = {k: v for k, v in metrics.items() if k.startswith("eval_") and isinstance(v, int | float)}
        values = {k: v for k, v in values.items() if not k.endswith(("_runtime", "_per_second"))}
        self.curve.record(state, values)
        shown = ", ".join(f"{k[5:]} {v:.3g}" for k, v in values.items())
        self.report(state.global_step / max(1, state.max_steps), f"validation at step {state.global_step}: {shown}")


class StopCallback(TrainerCallback):
    """A graceful stop: when ``requested()`` turns true, save a checkpoint and end training."""

    def __init__(self, requested: Callable[[], bool]):
        self.requested = requested
        self.stopped = False

    def on_step_end(self, args, state, control, **kwargs):
        if self.requested():
            self.stopped = True
            control.should_save = True
            control.should_training_stop = True
        return control
