"""LoRA / QLoRA training on the Hugging Face Trainer.

The Trainer gives checkpoints with optimizer, scheduler and RNG state, resume that skips the
batches already trained, and ``accelerate launch`` for several GPUs. On top of it: training
examples from a QA set's training split (HotpotQA's by default) and Dolly, made as training reaches them
(:mod:`engine.finetune.preparation`), loss on the answer only, validation F1
through the evaluation runner, early stopping, a graceful stop, and MLflow logging.
"""

from __future__ import annotations

import inspect
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import InputError
from engine.finetune.curve import cut_curve
from engine.finetune.encoding import Collator
from engine.finetune.inputs import build_examples, load_base, log_dataset_inputs, lora_model, validation
from engine.finetune.lora import MLP, summarize
from engine.finetune.preferences import (
    check_tokens,
    preference_arguments,
    preference_examples,
    preference_trainer,
    without_reference,
)
from engine.finetune.qat import quantization_aware
from engine.finetune.runs import checkpoint_step, claim, last_checkpoint, prepare_run
from engine.finetune.spec import TrainSpec, resolve_precision
from engine.models.adapters import AdapterRegistry
from engine.models.generation import Generator
from engine.settings import Settings, load_settings
from engine.tracking import TRAINING, Tracker


@dataclass
class TrainResult:
    adapter: str
    steps: int
    stopped_early: bool
    stopped_by_user: bool
    best_metric: float | None
    metrics: dict
    seconds: float
    run_id: str | None
    model: object = field(default=None, repr=False)  # the trained PEFT model (best checkpoint)


def training_arguments(spec: TrainSpec, run_dir: Path, device: str, steps_per_epoch: int):
    from transformers import TrainingArguments

    return TrainingArguments(
        **argument_values(spec, run_dir, device, steps_per_epoch),
        # The rows come in an order of their own (length-grouped, seeded, per epoch: LazyRows), so
        # that they can be made as training reaches them.
        train_sampling_strategy="sequential",
        remove_unused_columns=False,
        activation_checkpointing=spec.gradient_checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False} if spec.gradient_checkpointing else None,
    )


def argument_values(spec: TrainSpec, run_dir: Path, device: str, steps_per_epoch: int) -> dict:
    """The Trainer arguments every method shares: optimisation, precision, validation, checkpoints, stopping."""
    precision = resolve_precision(spec.precision, device)
    every = spec.eval_every or steps_per_epoch
    metric = {"f1": "eval_f1", "loss": "eval_loss"}.get(spec.stop_on, "eval_f1" if spec.val_f1 else "eval_loss")
    return {
        "output_dir": str(run_dir / "checkpoints"),
        "num_train_epochs": spec.epochs,
        "per_device_train_batch_size": spec.batch_size,
        "per_device_eval_batch_size": spec.batch_size,
        "gradient_accumulation_steps": spec.grad_accum,
        "learning_rate": spec.learning_rate,
        "lr_scheduler_type": spec.scheduler,
        "warmup_steps": round(spec.warmup_ratio * steps_per_epoch * spec.epochs),
        "logging_steps": 1,
        "eval_strategy": "steps",
        "eval_steps": every,
        "save_strategy": "steps",
        "save_steps": every,
        "load_best_model_at_end": True,
        "metric_for_best_model": metric,
        "greater_is_better": metric != "eval_loss",
        "bf16": precision == "bf16",
        "fp16": precision == "fp16",
        "use_cpu": device == "cpu",
        "include_num_input_tokens_seen": "non_padding",
        "dataloader_num_workers": 0,
        "report_to": "none",
        "seed": spec.seed,
        "data_seed": spec.seed,
        "disable_tqdm": True,
    }


Report = Callable[[float, str], None]


def plain_report(fraction: float, message: str) -> None:
    print(f"[{100 * fraction:5.1f}%] {message}", flush=True)


def train(
    spec: TrainSpec,
    settings: Settings | None = None,
    tracker=None,
    report: Report = plain_report,
    stop_requested: Callable[[], bool] = lambda: False,
    resume: bool = False,
    overwrite: bool = False,
    on_run: Callable[[str], None] | None = None,
    extra_callbacks: tuple = (),
) -> TrainResult:
    """Train a LoRA adapter and save the best checkpoint to the adapter registry."""
    settings = settings or load_settings()
    main = os.environ.get("RANK", "0") == "0"  # under `accelerate launch`, one process of several keeps records
    tracker = tracker if main else None
    began = now()
    # The name is claimed before anything slow starts, at once or not at all (an exclusive lock), so a second
    # training of the same adapter is refused here and never trains into the same folder.
    held = claim(spec.adapter, settings) if main else None
    try:
        run_dir, spec = prepare_run(spec, settings, resume, overwrite, main)
        checkpoint = last_checkpoint(run_dir) if resume else None
        run = TrainingRun(
            spec=spec,
            settings=settings,
            tracker=tracker,
            report=report,
            stop_requested=stop_requested,
            extra_callbacks=extra_callbacks,
            resume=resume,
            on_run=on_run,
            run_dir=run_dir,
            main=main,
        )
        return _train(run, checkpoint, began)
    finally:
        if held is not None:
            held.release()


@dataclass(frozen=True)
class TrainingRun:
    """What one call of :func:`train` was given, once its run folder is ready: what the steps of a run share."""

    spec: TrainSpec
    settings: Settings
    tracker: Tracker | None
    report: Report
    stop_requested: Callable[[], bool]
    extra_callbacks: tuple
    resume: bool
    on_run: Callable[[str], None] | None
    run_dir: Path
    main: bool  # the process that keeps records (one of several under `accelerate launch`)


def _train(run: TrainingRun, checkpoint, began: float) -> TrainResult:
    """:func:`train` once the adapter name is claimed and its run folder is ready: prepare the model and the
    examples, build the Trainer, train, save the adapter."""
    spec, settings, tracker, report, run_dir = run.spec, run.settings, run.tracker, run.report, run.run_dir
    registry = AdapterRegistry(settings)
    if spec.start_from:
        registry.get(spec.start_from)  # a missing adapter is said now, before the slow start
    report(0.0, "loading the base model")
    loaded = load_base(spec, settings)
    generator = Generator(loaded)  # the base model's answers (self-distillation), with the adapter switched off
    if spec.start_from:
        report(0.0, f"continuing adapter {spec.start_from}")
    model, targets = lora_model(loaded, spec, settings)
    if spec.quantization_aware != "none":
        report(0.0, f"quantization-aware: the base computes as {spec.quantization_aware} holds it")
    plain = quantization_aware(model, spec.quantization_aware)  # undone after training: the model is returned
    summary = summarize(model)
    report(0.0, "building the training examples")
    if spec.method == "sft":
        train_rows, val_rows, datasets = build_examples(
            spec, generator, settings, report, base_only=model.disable_adapter
        )
    else:
        check_tokens(loaded.tokenizer)
        train_rows, val_rows, datasets = preference_examples(spec, generator, settings, report)
    if not run.resume and run.main:  # written once the inputs load, so a start that failed leaves no run to resume
        (run_dir / "spec.json").write_text(json.dumps(spec.to_dict(), indent=1))
    report(0.0, f"LoRA on {targets.note}: {summary}")
    run_id = None
    if tracker is not None:
        run_id = start_run(run, targets.modules, summary.trainable, train_rows, val_rows, datasets)
        if run.on_run:
            run.on_run(run_id)
    trainer, curve, stop = build_trainer(run, loaded, model, train_rows, val_rows, run_id)
    if checkpoint is not None and run.main:
        cut_curve(run_dir, checkpoint_step(checkpoint))
        report(0.0, f"resuming from {checkpoint.name}")
    try:
        run_trainer(trainer, spec, checkpoint)
    finally:
        plain()
    meta = adapter_meta(spec, trainer, loaded, model, targets.modules, summary.trainable, datasets, run_id)
    if not run.main:
        best = trainer.state.best_metric
        return TrainResult(
            adapter=spec.adapter,
            steps=trainer.state.global_step,
            stopped_early=False,
            stopped_by_user=stop.stopped,
            best_metric=best,
            metrics={},
            seconds=now() - began,
            run_id=None,
        )
    info = registry.save(without_reference(trainer.model), spec.adapter, meta, overwrite=True)
    return finish_run(spec, trainer, info, tracker, run_id, curve, stop, report, began)


def start_run(run: TrainingRun, modules, trainable, train_rows, val_rows, datasets) -> str:
    """The run's MLflow run: the one a resumed run logged to, else a new one with the spec, the LoRA and the data."""
    spec, tracker = run.spec, run.tracker
    info = run.run_dir / "run.json"
    if run.resume and info.is_file():
        return json.loads(info.read_text())["run_id"]
    params = {k: v for k, v in spec.to_dict().items() if not isinstance(v, dict)}
    params |= {f"lora_{k}": v for k, v in spec.to_dict()["lora"].items()}
    params |= {
        "lora_targets": modules,
        "trainable_params": trainable,
        "train_examples": len(train_rows),
        "validation_examples": len(val_rows),
    }
    run_id = tracker.start(TRAINING, spec.adapter, params, {"adapter": spec.adapter})
    tracker.log_dict(run_id, {"datasets": datasets, "spec": spec.to_dict()}, "dataset.json")
    tracker.log_config(run_id, spec)
    log_dataset_inputs(tracker, run_id, datasets, run.settings)
    info.write_text(json.dumps({"run_id": run_id}))
    return run_id


def build_trainer(run: TrainingRun, loaded, model, train_rows, val_rows, run_id):
    """The HF Trainer for the run, with the Studio's callbacks (curves, validation F1, early stopping, stop)."""
    from transformers import EarlyStoppingCallback, PrinterCallback, Trainer

    from engine.finetune.callbacks import CurveCallback, StopCallback, ValidationCallback  # noqa: PLC0415 - transformers

    spec, report = run.spec, run.report
    precision = resolve_precision(spec.precision, loaded.device)
    steps_per_epoch = max(1, -(-len(train_rows) // (spec.batch_size * spec.grad_accum)))
    curve = CurveCallback(run.run_dir, report, run.tracker, run_id)
    callbacks = [curve, ValidationCallback(validation(spec, loaded, run.settings, precision), curve, report)]
    if spec.stop_on != "none" and spec.patience > 0:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=spec.patience))
    stop = StopCallback(run.stop_requested)
    callbacks += [stop, *run.extra_callbacks]
    if spec.method == "sft":
        trainer = Trainer(
            model=model,
            args=training_arguments(spec, run.run_dir, loaded.device, steps_per_epoch),
            train_dataset=train_rows,
            eval_dataset=val_rows,
            data_collator=Collator(loaded.tokenizer, answer_logits_only=answer_logits_supported(loaded.model)),
            callbacks=callbacks,
        )
    else:
        args = preference_arguments(spec, argument_values(spec, run.run_dir, loaded.device, steps_per_epoch))
        trainer = preference_trainer(spec, model, loaded.tokenizer, args, train_rows, val_rows, callbacks)
    trainer.remove_callback(PrinterCallback)  # progress goes through report(), not raw dicts on stdout
    return trainer, curve, stop


def run_trainer(trainer, spec, checkpoint) -> None:
    """Train (from the checkpoint, when resuming); running out of memory is a message with what to change."""
    try:
        trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    except Exception as exc:
        if type(exc).__name__ == "OutOfMemoryError" or "out of memory" in str(exc).lower():
            raise InputError(
                f"Out of memory at batch size {spec.batch_size} and max length {spec.max_length}: lower them, "
                "or turn on gradient checkpointing. The last checkpoint is kept; resume after changing nothing, "
                "or start over with smaller settings."
            ) from exc
        raise


def adapter_meta(spec, trainer, loaded, model, modules, trainable, datasets, run_id) -> dict:
    """What the registry records with the adapter: its base, data, LoRA, prompt, best metric, run and training."""
    state, best = trainer.state, trainer.state.best_metric
    return {
        "base": dict(vars(loaded.spec)),
        "datasets": datasets,
        "lora": lora_record(spec, model, modules, trainable),
        "method": spec.method,
        "prompt": "few-shot" if spec.rag.few_shot else "zero-shot",
        "max_source_chars": spec.rag.max_source_chars,
        "metrics": {"best_" + trainer.args.metric_for_best_model: best} if best is not None else {},
        "mlflow_run_id": run_id,
        "train": spec.to_dict() | {"steps": state.global_step, "max_steps": state.max_steps},
    }


def finish_run(spec, trainer, info, tracker, run_id, curve, stop, report, began) -> TrainResult:
    """Close the MLflow run (the adapter as its artifact) and say how training ended."""
    state, best = trainer.state, trainer.state.best_metric
    metrics = {k: v for k, v in (state.log_history[-1] if state.log_history else {}).items() if isinstance(v, float)}
    evals = [h for h in state.log_history if trainer.args.metric_for_best_model in h]
    if evals:
        metrics = {k: v for k, v in evals[-1].items() if isinstance(v, int | float)}
    if tracker is not None and run_id:
        curve.flush()
        tracker.log_metrics(run_id, {"best_metric": best or 0.0, "steps": state.global_step}, state.global_step)
        tracker.log_artifacts(run_id, info.path, "adapter")
        tracker.end(run_id, "KILLED" if stop.stopped else "FINISHED")
    incomplete = state.global_step < state.max_steps and not stop.stopped
    result = TrainResult(
        adapter=spec.adapter,
        steps=state.global_step,
        stopped_early=incomplete,
        stopped_by_user=stop.stopped,
        best_metric=best,
        metrics=metrics,
        seconds=now() - began,
        run_id=run_id,
        model=trainer.model,
    )
    report(1.0, f"{stop_reason(stop.stopped, state, state.max_steps)} at step {state.global_step}; adapter saved")
    return result


def lora_record(spec: TrainSpec, model, targets, trainable: int) -> dict:
    """The LoRA settings the adapter has: the spec's, or for a continued adapter its PEFT config's (the rank
    and targets it was trained with)."""
    lora = spec.to_dict()["lora"]
    if spec.start_from:
        config = model.peft_config["default"]
        mlp = {m for modules in MLP.values() for m in modules}
        lora |= {
            "r": config.r,
            "alpha": config.lora_alpha,
            "dropout": config.lora_dropout,
            "include_mlp": not isinstance(targets, str) and bool(mlp & set(targets)),
        }
    return lora | {"targets": targets, "trainable": trainable}


def answer_logits_supported(model) -> bool:
    """Whether the model can project only chosen positions onto the vocabulary (``logits_to_keep``)."""
    return "logits_to_keep" in inspect.signature(model.forward).parameters


def stop_reason(stopped_by_user: bool, state, max_steps: int) -> str:
    if stopped_by_user:
        return "stopped by the user"
    return "stopped early (no improvement)" if state.global_step < max_steps else "finished"


def now() -> float:
    return time.perf_counter()


def train_job(args: dict, ctx) -> dict:
    """The background-job form of :func:`train` (kind ``train``): the Stop button asks for a
    graceful stop, which saves a checkpoint and the adapter."""
    settings = load_settings()
    spec = TrainSpec.from_dict(args["spec"])

    def report(fraction: float, message: str) -> None:
        ctx.progress(fraction, message)
        if not message.startswith("step "):
            ctx.log(message)

    tracker = Tracker(settings)
    result = train(
        spec,
        settings,
        tracker,
        report,
        lambda: ctx.stop_requested or ctx.cancelled,
        resume=bool(args.get("resume")),
        overwrite=bool(args.get("overwrite")),
        on_run=ctx.set_run_id,
    )
    return {
        "adapter": result.adapter,
        "steps": result.steps,
        "best_metric": result.best_metric,
        "stopped_early": result.stopped_early,
        "stopped_by_user": result.stopped_by_user,
        "seconds": result.seconds,
        "run_id": result.run_id,
    }
