"""The measured gain of fine-tuning: train a LoRA adapter on the HotpotQA training split, then
evaluate the base model and the adapter on the 300 test questions (distractor RAG), with a
paired bootstrap 95% confidence interval of the F1 difference.

    .venv/bin/python bench/finetune_gain.py --out docs/fine-tuning.md

The defaults are the recipe documented in docs/fine-tuning.md. Everything is logged to MLflow
(experiments studio-training and studio-evaluation). Run it with nothing else busy.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import emit  # noqa: E402


def evaluate(spec, settings, tracker):
    from engine.evaluation.runner import prepare_evaluation, run_evaluation

    generator, embedder, store = prepare_evaluation(spec, settings)
    return run_evaluation(spec, generator, embedder, store, settings, tracker)


def main() -> int:
    from engine.allocator import restart_with_allocator

    restart_with_allocator(sys.argv)  # tcmalloc where installed: see engine.allocator
    from engine.evaluation.runner import EvalSpec
    from engine.finetune.examples import DOLLY_CATEGORIES, MixSpec, RagExampleSpec
    from engine.finetune.lora import LoraSpec
    from engine.finetune.spec import TrainSpec
    from engine.finetune.trainer import train
    from engine.settings import load_settings
    from engine.stats import paired_bootstrap
    from engine.tracking import Tracker

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--adapter", default="hotpotqa-r16")
    p.add_argument("--r", type=int, default=16)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--source-chars", type=int, default=400)
    p.add_argument("--distractors", type=int, default=2)
    p.add_argument("--sources", default="gold", choices=["gold", "retrieved"], help="training passages (train --help)")
    p.add_argument("--follow-links", type=int, default=2,
                   help="training and evaluation retrieval: passages named in the first N move up")  # fmt: skip
    p.add_argument("--answer-style", default="short", choices=["short", "evidence"], help="see train --help")
    p.add_argument("--dolly", type=float, default=0.0, help="share of Dolly instruction examples in the mix")
    p.add_argument(
        "--dolly-targets",
        default="reference",
        choices=["reference", "base"],
        help="Dolly answers: the human responses, or the base model's own (self-distillation)",
    )
    p.add_argument("--dolly-categories", default=",".join(DOLLY_CATEGORIES), help="Dolly categories to draw from")
    p.add_argument("--max-length", type=int, default=1024, help="training sequences cut to N tokens")
    p.add_argument("--mlp", action="store_true", help="adapt the MLP projections too")
    p.add_argument("--eval-every", type=int, default=0, help="steps between validations (0: each epoch)")
    p.add_argument("--test", type=int, default=300, help="test questions")
    p.add_argument("--limit", type=int, default=None, help="training examples (default: the whole split)")
    p.add_argument("--val-limit", type=int, default=100, help="validation questions")
    p.add_argument("--dtype", default="bfloat16", help="evaluation dtype, the same for both models")
    p.add_argument("--skip-train", action="store_true", help="evaluate an adapter trained before")
    p.add_argument("--out", help="append the Markdown table to this file")
    a = p.parse_args()

    settings = load_settings()
    tracker = Tracker(settings)
    began = time.perf_counter()
    spec = TrainSpec(
        adapter=a.adapter, lora=LoraSpec(r=a.r, alpha=2 * a.r, include_mlp=a.mlp),
        rag=RagExampleSpec(distractors=a.distractors, max_source_chars=a.source_chars, sources=a.sources,
                           follow_links=a.follow_links, answer_style=a.answer_style),
        epochs=a.epochs,
        mix=MixSpec.with_shares(a.dolly), dolly_targets=a.dolly_targets,
        dolly_categories=tuple(c.strip() for c in a.dolly_categories.split(",") if c.strip()),
        learning_rate=a.lr, batch_size=4, max_length=a.max_length, scheduler="cosine", eval_every=a.eval_every,
        val_limit=a.val_limit, stop_on="f1", patience=2, train_limit=a.limit,
    )  # fmt: skip
    trained = None
    if not a.skip_train:
        trained = train(spec, settings, tracker, overwrite=True)
    train_s = time.perf_counter() - began
    common = {
        "mode": "distractor",
        "split": "test",
        "limit": a.test,
        "k": 5,
        "dtype": a.dtype,
        "batch_size": 16,
        "follow_links": a.follow_links,
    }
    base = evaluate(EvalSpec(**common, prompt="few-shot"), settings, tracker)
    tuned = evaluate(EvalSpec(**common, adapter=a.adapter), settings, tracker)
    total_s = time.perf_counter() - began
    assert [r["id"] for r in base.rows] == [r["id"] for r in tuned.rows]
    diff = paired_bootstrap([r["f1"] for r in base.rows], [r["f1"] for r in tuned.rows])
    em = paired_bootstrap([r["em"] for r in base.rows], [r["em"] for r in tuned.rows])

    def row(name, result):
        m = result.metrics
        return f"| {name} | {m['em']:.1f} | {m['f1']:.1f} | {m['recall@5']:.3f} | {result.seconds / 60:.1f} |"

    sources = f"gold + {a.distractors} distractors" if a.sources == "gold" else "top 5 retrieved (gold kept)"
    settings_line = (
        f"Settings: LoRA r = {a.r} (alpha {2 * a.r}){' with MLP' if a.mlp else ''}, lr {a.lr:g} cosine, "
        f"{a.epochs:g} epoch(s), {sources} cut to {a.source_chars} characters, "
        f"Dolly share {a.dolly:g} ({a.dolly_targets} answers; {a.dolly_categories}), max length {a.max_length}."
        if trained
        else f"Adapter `{a.adapter}` trained before (--skip-train): its settings are in its studio.json."
    )
    links = f", links followed from the first {a.follow_links}" if a.follow_links else ", dense ranking only"
    table = "\n".join([
        f"Fine-tuning gain ({time.strftime('%Y-%m-%d')}, 2 CPU cores; {a.test} test questions of the fixed split, "
        f"distractor RAG, k = 5{links}, evaluation in {a.dtype}).",
        "",
        "| model | EM | F1 | recall@5 | eval (min) |",
        "| --- | ---: | ---: | ---: | ---: |",
        row("base (few-shot prompt, 600-char sources)", base),
        row(f"base + adapter `{a.adapter}` (its training prompt and source length)", tuned),
        "",
        f"F1 difference (adapter - base): {diff.mean:+.1f}, 95% paired bootstrap CI [{diff.low:+.1f}, {diff.high:+.1f}]"
        f" over {diff.n} questions{' (above zero)' if diff.above_zero else ''}. "
        f"EM difference: {em.mean:+.1f} [{em.low:+.1f}, {em.high:+.1f}].",
        "",
        settings_line,
        "",
        f"Training: {trained.steps if trained else '-'} steps, {train_s / 60:.1f} min "
        f"(best validation {trained.best_metric if trained else '-'}); whole run {total_s / 60:.1f} min. "
        f"MLflow runs: training `{trained.run_id if trained else '-'}`, "
        f"evaluations `{base.run_id}` and `{tuned.run_id}`.",
        "",
    ])  # fmt: skip
    emit(table, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
