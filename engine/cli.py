"""``python -m engine``: evaluation, ingestion, questions and background jobs from the shell.

Bad input prints ``error: <message>`` and exits with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys

from engine.errors import InputError, exit_status
from engine.measure_commands import MODEL_HELP, add_ab_arguments, add_bench_arguments, run_ab, run_bench, run_judge
from engine.rag.commands import add_ingest_arguments, run_ingest, run_kbs


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m engine", description="The Studio's command line.")
    sub = p.add_subparsers(dest="command", required=True)

    ev = sub.add_parser("eval", help="evaluate the model on a QA set (a dataset version, or HotpotQA)")
    ev.add_argument(
        "--dataset",
        default="",
        help="a QA set: a dataset NAME or NAME@VERSION (its --split), or hotpotqa (the fixed split)",
    )
    ev.add_argument(
        "--data",
        default="hotpotqa-dev.jsonl",
        help="without --dataset: a HotpotQA-format file (path, or a file in the shared data folder)",
    )
    ev.add_argument(
        "--mode",
        default="distractor",
        choices=["closed-book", "distractor", "given", "kb"],
        help="given (= distractor): each question's own passages; kb: retrieval from --kb",
    )
    ev.add_argument("--limit", type=int, default=200, help="the first N questions")
    ev.add_argument("--k", type=int, default=5, help="sources per question")
    ev.add_argument("--follow-links", type=int, default=2,
                    help="distractor mode: passages named in the first N move up (0: dense only)")  # fmt: skip
    ev.add_argument("--kb", default="hotpotqa-wiki", help="knowledge base for --mode kb")
    ev.add_argument("--batch-size", type=int, default=16)
    ev.add_argument("--max-new-tokens", type=int, default=0, help="0: what the answer style needs (32, 256)")
    ev.add_argument("--answer-style", default="", choices=["", "short", "evidence"],
                    help="default: the adapter's training style, else short")  # fmt: skip
    ev.add_argument("--model", default="", help=MODEL_HELP)
    ev.add_argument("--adapter", default="", help="a LoRA adapter from the registry (see `adapters`)")
    ev.add_argument("--split", default="", choices=["", "train", "validation", "test"],
                    help="a split of the QA set (HotpotQA: the fixed split, not the first questions)")  # fmt: skip
    ev.add_argument("--prompt", default="", choices=["", "few-shot", "zero-shot"],
                    help="default: the adapter's training prompt, else few-shot")  # fmt: skip
    ev.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    ev.add_argument("--no-mlflow", action="store_true", help="do not log the run to MLflow")

    add_bench_arguments(sub)
    add_ab_arguments(sub)

    tr = sub.add_parser("train", help="train a LoRA adapter on a QA set's training split (default: HotpotQA's)")
    add_train_arguments(tr)

    ad = sub.add_parser("adapters", help="the adapter registry: list | rename OLD NEW | delete NAME | export NAME DIR")
    ad.add_argument("action", choices=["list", "rename", "delete", "export"], nargs="?", default="list")
    ad.add_argument("names", nargs="*")
    ad.add_argument("--overwrite", action="store_true", help="export: replace an earlier export of the Studio there")

    add_ingest_arguments(sub)

    ask = sub.add_parser("ask", help="answer one question with retrieval")
    ask.add_argument("question")
    ask.add_argument("--kb", default="studio-docs")
    ask.add_argument("--k", type=int, default=5)
    ask.add_argument("--model", default="", help=MODEL_HELP)

    sub.add_parser("kbs", help="list knowledge bases")
    sub.add_parser("data", help="QA datasets: import, generate, topics, split, versions, ... (see `data --help`)")
    job = sub.add_parser("job", help="background jobs: run <dir> | list | status <id> | cancel <id>")
    job.add_argument("args", nargs=argparse.REMAINDER)
    return p


def run_eval(a) -> int:
    from engine.evaluation.runner import EvalSpec, format_table, prepare_evaluation, run_evaluation
    from engine.settings import load_settings
    from engine.tracking import Tracker

    settings = load_settings()
    spec = EvalSpec(
        data=a.data, dataset=a.dataset, mode=a.mode, limit=a.limit, k=a.k, kb=a.kb, batch_size=a.batch_size,
        max_new_tokens=a.max_new_tokens, model=a.model, adapter=a.adapter, dtype=a.dtype, split=a.split,
        prompt=a.prompt, follow_links=a.follow_links, answer_style=a.answer_style,
    )  # fmt: skip
    generator, embedder, store = prepare_evaluation(spec, settings)
    tracker = None if a.no_mlflow else Tracker(settings)

    def progress(done: int, total: int) -> None:
        print(f"\r{done}/{total} questions", end="", file=sys.stderr, flush=True)

    result = run_evaluation(spec, generator, embedder, store, settings, tracker, on_progress=progress)
    print(file=sys.stderr)
    print(format_table(result))
    if result.run_id:
        print(f"MLflow run: {result.run_id} ({settings.tracking_uri})")
    return 0


def run_ask(a) -> int:
    from engine.models.generation import load_generator
    from engine.models.spec import spec_for
    from engine.rag.embedder import Embedder
    from engine.rag.pipeline import RagPipeline, check_question
    from engine.rag.retriever import KnowledgeBaseRetriever
    from engine.rag.store import KnowledgeBaseStore
    from engine.settings import load_settings

    question = check_question(a.question)
    model = spec_for(a.model)
    store = KnowledgeBaseStore(load_settings(), Embedder.shared())
    store.collection(a.kb)
    answer = RagPipeline(KnowledgeBaseRetriever(store, a.kb), load_generator(model)).answer(question, a.k)
    print(answer.answer)
    for n, h in enumerate(answer.hits, start=1):
        print(f"  [{n}] {h.score:.3f} {h.title}{'  (cited)' if n in answer.citations else ''}")
    print(f"retrieval {answer.retrieve_s:.2f} s, generation {answer.generate_s:.2f} s")
    return 0


def add_train_arguments(tr: argparse.ArgumentParser) -> None:
    from engine.finetune.spec import TrainSpec

    d = TrainSpec()
    tr.add_argument("--adapter", default=d.adapter, help="name of the adapter to train (or resume)")
    tr.add_argument("--base", default=d.base, help=MODEL_HELP)
    tr.add_argument("--quantization", default=d.quantization, choices=["none", "8bit", "4bit"])
    tr.add_argument("--r", type=int, default=d.lora.r)
    tr.add_argument("--alpha", type=int, default=d.lora.alpha)
    tr.add_argument("--dropout", type=float, default=d.lora.dropout)
    tr.add_argument("--mlp", action="store_true", help="adapt the MLP projections too")
    tr.add_argument("--targets", default="", help="comma-separated module names (default: by architecture)")
    tr.add_argument("--dataset", default="",
                    help="the QA set to train on: a dataset NAME or NAME@VERSION, split (its train split is "
                         "trained on, its validation split validates); default: HotpotQA's fixed split")  # fmt: skip
    tr.add_argument("--kb", default="",
                    help="the collection's knowledge base: with --sources retrieved, training sources and "
                         "validation are retrieved from it as the Query page retrieves")  # fmt: skip
    tr.add_argument("--hotpotqa", type=float, default=0.0, help="with --dataset: share of HotpotQA examples (0..1)")
    tr.add_argument("--dolly", type=float, default=0.0, help="share of Dolly examples in the mix (0..1)")
    tr.add_argument(
        "--dolly-targets",
        default=d.dolly_targets,
        choices=["reference", "base"],
        help="Dolly answers to learn: the human responses, or the base model's own (self-distillation)",
    )
    tr.add_argument(
        "--dolly-categories",
        default=",".join(d.dolly_categories),
        help="comma-separated Dolly categories to draw from (never closed_qa, the forgetting check)",
    )
    tr.add_argument("--qa-dataset", default="", help="generated QA pairs: a dataset NAME or NAME@VERSION")
    tr.add_argument("--qa-share", type=float, default=0.0, help="share of the generated pairs in the mix (0..1)")
    tr.add_argument(
        "--sources", default=d.rag.sources, choices=["gold", "retrieved"],
        help="training passages: gold + --distractors others, or the top --sources-k the evaluation's retriever "
        "ranks first (gold always kept)",
    )  # fmt: skip
    tr.add_argument("--sources-k", type=int, default=d.rag.k, help="passages per example with --sources retrieved")
    tr.add_argument("--follow-links", type=int, default=d.rag.follow_links,
                    help="retrieved sources, validation: passages named in the first N move up (0: off)")  # fmt: skip
    tr.add_argument("--answer-style", default=d.rag.answer_style, choices=["short", "evidence"],
                    help="what the adapter writes: the answer alone, or the evidence sentences, then it")  # fmt: skip
    tr.add_argument("--distractors", type=int, default=d.rag.distractors)
    tr.add_argument("--source-chars", type=int, default=d.rag.max_source_chars, help="each passage cut to N characters")
    tr.add_argument("--limit", type=int, default=None, help="at most N training examples")
    tr.add_argument("--epochs", type=float, default=d.epochs)
    tr.add_argument("--lr", type=float, default=d.learning_rate)
    tr.add_argument("--batch-size", type=int, default=d.batch_size)
    tr.add_argument("--grad-accum", type=int, default=d.grad_accum)
    tr.add_argument("--max-length", type=int, default=d.max_length)
    tr.add_argument("--scheduler", default=d.scheduler, choices=["linear", "cosine", "constant_with_warmup"])
    tr.add_argument("--warmup", type=float, default=d.warmup_ratio, help="warmup share of the steps")
    tr.add_argument("--eval-every", type=int, default=d.eval_every, help="steps between validations (0: each epoch)")
    tr.add_argument("--val-limit", type=int, default=d.val_limit, help="validation questions (loss and F1)")
    tr.add_argument("--no-f1", action="store_true", help="validate on the loss only (no answering)")
    tr.add_argument("--stop-on", default=d.stop_on, choices=["f1", "loss", "none"])
    tr.add_argument("--patience", type=int, default=d.patience)
    tr.add_argument("--gradient-checkpointing", action="store_true")
    tr.add_argument("--precision", default=d.precision, choices=["auto", "fp32", "bf16", "fp16"])
    tr.add_argument("--seed", type=int, default=d.seed)
    tr.add_argument("--resume", action="store_true", help="resume the adapter's run from its last checkpoint")
    tr.add_argument("--overwrite", action="store_true", help="replace an adapter or run of the same name")
    tr.add_argument("--no-mlflow", action="store_true")


def categories_of(text: str) -> tuple[str, ...]:
    return tuple(c.strip() for c in text.split(",") if c.strip())


def train_spec(a):
    """The TrainSpec of parsed ``train`` arguments."""
    from engine.finetune.examples import MixSpec, RagExampleSpec
    from engine.finetune.inputs import primary_pool
    from engine.finetune.lora import LoraSpec
    from engine.finetune.spec import TrainSpec

    targets = tuple(t.strip() for t in a.targets.split(",") if t.strip())
    if not 0 <= a.dolly <= 1:
        raise InputError("--dolly is a share between 0 and 1.")  # named by its flag on the command line
    return TrainSpec(
        adapter=a.adapter, base=a.base, quantization=a.quantization,
        lora=LoraSpec(r=a.r, alpha=a.alpha, dropout=a.dropout, include_mlp=a.mlp, targets=targets),
        dataset=a.dataset.strip(), kb=a.kb.strip(),
        mix=MixSpec.with_shares(a.dolly, a.qa_share, a.seed, primary_pool(a.dataset), a.hotpotqa),
        dolly_targets=a.dolly_targets, qa_dataset=a.qa_dataset,
        dolly_categories=categories_of(a.dolly_categories),
        rag=RagExampleSpec(a.distractors, a.source_chars, a.seed, sources=a.sources, k=a.sources_k,
                            follow_links=a.follow_links, answer_style=a.answer_style),
        train_limit=a.limit, epochs=a.epochs, learning_rate=a.lr, batch_size=a.batch_size, grad_accum=a.grad_accum,
        max_length=a.max_length, scheduler=a.scheduler, warmup_ratio=a.warmup, eval_every=a.eval_every,
        val_limit=a.val_limit, val_f1=not a.no_f1, stop_on=a.stop_on, patience=a.patience,
        gradient_checkpointing=a.gradient_checkpointing, precision=a.precision, seed=a.seed,
    )  # fmt: skip


def run_train(a) -> int:
    from engine.finetune.trainer import train
    from engine.settings import load_settings
    from engine.tracking import Tracker

    settings = load_settings()
    tracker = None if a.no_mlflow else Tracker(settings)
    result = train(train_spec(a), settings, tracker, resume=a.resume, overwrite=a.overwrite)
    print(f"adapter {result.adapter}: {result.steps} steps in {result.seconds / 60:.1f} min, "
          f"best {result.best_metric}")  # fmt: skip
    return 0


def run_adapters(a) -> int:
    from pathlib import Path

    from engine.finetune.adapters import AdapterRegistry, merge_export
    from engine.settings import load_settings

    settings = load_settings()
    registry = AdapterRegistry(settings)
    wanted = {"list": 0, "rename": 2, "delete": 1, "export": 2}[a.action]
    if len(a.names) != wanted:
        raise InputError(f"`adapters {a.action}` takes {wanted} name(s).")
    if a.action == "list":
        for info in registry.list():
            metrics = ", ".join(f"{k} {v:.3g}" for k, v in info.metrics.items())
            print(f"{info.name}: base {info.base.get('name', '?')}, prompt {info.prompt}, {metrics or 'no metrics'}")
    elif a.action == "rename":
        registry.rename(*a.names)
    elif a.action == "delete":
        registry.delete(a.names[0])
    else:
        print(merge_export(registry, a.names[0], Path(a.names[1]), settings, overwrite=a.overwrite))
    return 0


def main(argv: list[str] | None = None) -> int:
    if argv is None and sys.argv[1:2] in (["train"], ["eval"], ["ingest"]):
        from engine.allocator import restart_with_allocator

        restart_with_allocator(["-m", "engine", *sys.argv[1:]], sys.argv[1] == "ingest")  # see engine.allocator
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["job"]:
        from engine.job_worker import main_job

        return main_job(argv[1:])
    if argv[:1] == ["data"]:
        from engine.data.commands import main as main_data

        return main_data(argv[1:])
    a = parser().parse_args(argv)
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    handlers = {"eval": run_eval, "bench": run_bench, "ab": run_ab, "judge": run_judge, "ingest": run_ingest,
                "ask": run_ask, "kbs": run_kbs, "train": run_train, "adapters": run_adapters}  # fmt: skip
    return exit_status(lambda: handlers[a.command](a))
