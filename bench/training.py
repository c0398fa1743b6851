"""Training throughput and peak memory: the Studio's training path against a plain
``Trainer`` + PEFT loop at equal settings (model, LoRA, data, batch size, max length, steps).

    .venv/bin/python bench/training.py --out docs/benchmarks.md
    .venv/bin/python bench/training.py --variants studio,qat-int4,qat-nf4   # quantization-aware training's cost

The plain loop is what the PEFT and transformers guides show: fp32, logits over the whole
sequence, ``DataCollatorForSeq2Seq`` padding, random batches. The Studio's path adds bf16
autocast where the CPU computes bf16 natively, logits only at the answer positions, and
length-grouped batches. Each variant runs in its own process, so peak RSS is its own.
Tokens/s counts non-padding tokens over the training steps only (no evaluation or saving).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import emit  # noqa: E402

SETTINGS = {"examples": 48, "batch_size": 4, "max_length": 1024, "lr": 3e-4, "r": 8}


def step_timer():
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        """Time and non-padding tokens of the optimizer steps alone, skipping the first (warm-up)."""

        def __init__(self):
            self.seconds, self.tokens, self.steps = 0.0, 0, 0

        def on_step_begin(self, args, state, control, **kwargs):
            self.began, self.seen = time.perf_counter(), state.num_input_tokens_seen

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step > 1:
                self.seconds += time.perf_counter() - self.began
                self.tokens += state.num_input_tokens_seen - self.seen
                self.steps += 1

    return StepTimer()


def rows_and_model(settings):
    from engine.evaluation.splits import split_items
    from engine.finetune.encoding import tokenize_all
    from engine.finetune.examples import rag_examples
    from engine.models.generation import Generator
    from engine.models.loader import load_model
    from engine.models.spec import DEFAULT_MODEL

    loaded = load_model(DEFAULT_MODEL, settings)
    items = split_items(settings.shared_data_dir / "hotpotqa-dev.jsonl", settings, "train")[: SETTINGS["examples"]]
    rows = tokenize_all(rag_examples(items), loaded.tokenizer, Generator(loaded).render, SETTINGS["max_length"])
    return loaded, rows


def run_plain(timer) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

    from engine.settings import load_settings

    loaded, rows = rows_and_model(load_settings())
    config = LoraConfig(r=SETTINGS["r"], lora_alpha=2 * SETTINGS["r"], lora_dropout=0.05,
                        target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], task_type="CAUSAL_LM")  # fmt: skip
    model = get_peft_model(loaded.model, config)
    loaded.tokenizer.padding_side = "right"
    args = TrainingArguments(
        output_dir=tempfile.mkdtemp(), per_device_train_batch_size=SETTINGS["batch_size"], num_train_epochs=1,
        learning_rate=SETTINGS["lr"], use_cpu=True, report_to="none", save_strategy="no", logging_steps=1,
        include_num_input_tokens_seen="non_padding", disable_tqdm=True,
    )  # fmt: skip
    collator = DataCollatorForSeq2Seq(loaded.tokenizer, padding=True, label_pad_token_id=-100)
    Trainer(model=model, args=args, train_dataset=rows, data_collator=collator, callbacks=[timer]).train()


def run_studio(timer, checkpointing: bool = False, quantization_aware: str = "none") -> None:
    from engine.finetune.lora import LoraSpec
    from engine.finetune.spec import TrainSpec
    from engine.finetune.trainer import train
    from engine.settings import load_settings

    spec = TrainSpec(
        adapter="throughput", lora=LoraSpec(r=SETTINGS["r"], alpha=2 * SETTINGS["r"]), train_limit=SETTINGS["examples"],
        batch_size=SETTINGS["batch_size"], max_length=SETTINGS["max_length"], learning_rate=SETTINGS["lr"],
        val_limit=4, val_f1=False, stop_on="none", gradient_checkpointing=checkpointing,
        quantization_aware=quantization_aware,
    )  # fmt: skip
    train(spec, load_settings(), None, lambda f, m: None, overwrite=True, extra_callbacks=(timer,))


VARIANTS = {
    "plain": ("plain Trainer + PEFT", run_plain),
    "studio": ("Studio", run_studio),
    "studio-checkpointing": ("Studio, gradient checkpointing", lambda t: run_studio(t, True)),
    "qat-int4": ("Studio, quantization-aware int4-weight", lambda t: run_studio(t, quantization_aware="int4-weight")),
    "qat-nf4": ("Studio, quantization-aware nf4", lambda t: run_studio(t, quantization_aware="nf4")),
}
COMPARED = ("plain", "studio", "studio-checkpointing")  # the speed-up line's three


def child(variant: str, out: Path) -> None:
    timer = step_timer()
    VARIANTS[variant][1](timer)
    out.write_text(json.dumps({"tokens_per_s": timer.tokens / timer.seconds, "steps": timer.steps,
                               "tokens": timer.tokens, "seconds": timer.seconds}))  # fmt: skip


def measure(variant: str, data_dir: Path) -> dict:
    out = data_dir / f"{variant}.json"
    env = {**os.environ, "STUDIO_DATA_DIR": str(data_dir)}
    process = subprocess.Popen([sys.executable, __file__, "--child", variant, "--json", str(out)], env=env)
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0:
        raise SystemExit(f"the {variant} run failed")
    return json.loads(out.read_text()) | {"peak_rss_gb": usage.ru_maxrss / 2**20}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--child", choices=list(VARIANTS))
    p.add_argument("--variants", default=",".join(COMPARED), help=f"comma-separated, of {', '.join(VARIANTS)}")
    p.add_argument("--json")
    p.add_argument("--out")
    a = p.parse_args()
    if a.child:
        child(a.child, Path(a.json))
        return 0
    from engine.settings import load_settings

    variants = [v.strip() for v in a.variants.split(",") if v.strip()]
    if unknown := [v for v in variants if v not in VARIANTS]:
        p.error(f"unknown variants {unknown}: choose from {', '.join(VARIANTS)}")
    data_dir = Path(tempfile.mkdtemp(prefix="studio-throughput-"))
    (data_dir / "models").symlink_to(load_settings().models_dir.resolve(), target_is_directory=True)
    results = {v: measure(v, data_dir) for v in variants}
    lines = [
        f"Training throughput ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPU cores): bundled SmolLM2-135M, LoRA "
        f"r={SETTINGS['r']} on q/k/v/o, {SETTINGS['examples']} HotpotQA training examples (gold + 2 distractors), "
        f"batch {SETTINGS['batch_size']}, max length {SETTINGS['max_length']}.",
        "",
        "| path | steps timed | tokens/s | peak RSS (GB) |",
        "| --- | ---: | ---: | ---: |",
        *(f"| {VARIANTS[v][0]} | {r['steps']} | {r['tokens_per_s']:.0f} | {r['peak_rss_gb']:.2f} |"
          for v, r in results.items()),
    ]  # fmt: skip
    if all(v in results for v in COMPARED):
        plain, ours, lean = (results[v] for v in COMPARED)
        lines += [
            "",
            f"Speed-up: {ours['tokens_per_s'] / plain['tokens_per_s']:.2f}x at {ours['peak_rss_gb']:.2f} GB; with "
            f"gradient checkpointing {lean['tokens_per_s'] / plain['tokens_per_s']:.2f}x at {lean['peak_rss_gb']:.2f} "
            "GB (targets 1.3x and 4 GB).",
        ]
    lines.append("")
    emit("\n".join(lines), a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
