"""``python -m engine``: evaluation, ingestion, questions and background jobs from the shell.

Bad input prints ``error: <message>`` and exits with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import replace
from pathlib import Path

from engine import allocator
from engine.cli.data import main as main_data
from engine.cli.export import add_export_arguments, run_export
from engine.cli.finetune import add_train_arguments, run_train
from engine.cli.loop import add_loop_arguments, run_loop_command
from engine.cli.measure import add_ab_arguments, add_bench_arguments, run_ab, run_bench, run_judge
from engine.cli.preferences import main as main_preferences
from engine.cli.rag import add_ingest_arguments, run_ingest, run_kbs
from engine.configs import add_config_argument, parse_args
from engine.errors import InputError, exit_status
from engine.evaluation.runner import EvalSpec, format_table, prepare_evaluation, run_evaluation
from engine.jobs.worker import main_job
from engine.knobs import add_knob_arguments, knob_values
from engine.machine import default_budget_gb
from engine.models.active import active_spec
from engine.models.adapters import AdapterRegistry
from engine.models.export import merge_export
from engine.models.generation import load_generator
from engine.models.manager import ModelManager, describe
from engine.rag.ask import AskSpec, ask, ask_model_spec
from engine.rag.embedder import Embedder
from engine.rag.ingest import DOCS_KB, ensure_docs_kb
from engine.rag.pipeline import check_question
from engine.rag.store import KnowledgeBaseStore
from engine.rag.styles import style_of
from engine.serve.answers import ServeState
from engine.serve.server import ServeSpec, check_bind, serve_forever
from engine.settings import load_settings
from engine.tracking import Tracker

# The evaluation's knobs on the command line (max_source_chars stays the adapter's, or a settings file's).
EVAL_KNOBS = (
    "dataset",
    "data",
    "mode",
    "limit",
    "k",
    "follow_links",
    "kb",
    "batch_size",
    "max_new_tokens",
    "answer_style",
    "model",
    "adapter",
    "split",
    "prompt",
    "dtype",
    "quantization",
    "judge",
)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m engine", description="The Studio's command line.")
    sub = p.add_subparsers(dest="command", required=True)

    ev = sub.add_parser("eval", help="evaluate the model on a QA set (a dataset version, or HotpotQA)")
    add_knob_arguments(ev, EvalSpec, EVAL_KNOBS)
    add_config_argument(ev, EvalSpec, lambda spec: knob_values(EvalSpec, spec, EVAL_KNOBS))
    ev.add_argument("--no-mlflow", action="store_true", help="do not log the run to MLflow")

    add_bench_arguments(sub)
    add_ab_arguments(sub)

    tr = sub.add_parser("train", help="train a LoRA adapter on a QA set's training split (default: HotpotQA's)")
    add_train_arguments(tr)

    ad = sub.add_parser("adapters", help="the adapter registry: list | rename OLD NEW | delete NAME | export NAME DIR")
    ad.add_argument("action", choices=["list", "rename", "delete", "export"], nargs="?", default="list")
    ad.add_argument("names", nargs="*")
    ad.add_argument("--overwrite", action="store_true", help="export: replace an earlier export of the Studio there")

    add_export_arguments(sub)

    add_ingest_arguments(sub)
    add_loop_arguments(sub)

    ask = sub.add_parser("ask", help="answer one question with retrieval, as the Query page does")
    ask.add_argument("question")
    add_ask_arguments(ask)

    serve = sub.add_parser("serve", help="an OpenAI-compatible API over the Studio's models (Ctrl-C stops it)")
    add_knob_arguments(serve, ServeSpec)
    serve.add_argument("--no-mlflow", action="store_true", help="do not log requests to MLflow")

    sub.add_parser("kbs", help="list knowledge bases")
    sub.add_parser("data", help="QA datasets: import, generate, topics, split, versions, ... (see `data --help`)")
    sub.add_parser("preferences", help="preference pairs: build, list, show, drop (see `preferences --help`)")
    job = sub.add_parser("job", help="background jobs: run <dir> | list | status <id> | cancel <id>")
    job.add_argument("args", nargs=argparse.REMAINDER)
    return p


def eval_spec(a) -> EvalSpec:
    """The EvalSpec of parsed ``eval`` arguments (the ``--config`` file's, for the settings without a flag)."""
    return replace(getattr(a, "config_spec", None) or EvalSpec(), **knob_values(EvalSpec, a, EVAL_KNOBS))


def run_eval(a) -> int:
    settings = load_settings()
    spec = eval_spec(a)
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


def add_ask_arguments(ask: argparse.ArgumentParser) -> None:
    add_knob_arguments(ask, AskSpec, ("kb", "k", "style", "follow_links"))
    ask.add_argument(
        "--model",
        default="",
        help="a Hugging Face id, a local model folder or a .gguf file "
        "(default: the active model, as the app: at first the bundled SmolLM2-135M with the catalog's balanced preset)",
    )
    ask.add_argument(
        "--adapter",
        default="",
        help="a LoRA adapter from the registry (see `adapters`; default: "
        "the active one, with the active model, when --model is not given either)",
    )


def run_ask(a) -> int:
    question = check_question(a.question)
    settings = load_settings()
    model = ask_model_spec(a.model, a.adapter, settings)  # neither given: the active model and adapter
    spec = AskSpec(kb=a.kb, k=a.k, style=a.style, follow_links=a.follow_links, adapter=model.adapter)
    store = KnowledgeBaseStore(settings, Embedder.shared())
    if a.kb == DOCS_KB:
        ensure_docs_kb(store)  # as the app does at every start: the docs as they are now
    store.collection(a.kb)  # a knowledge base that does not exist is a message before the model loads
    answer = ask(question, spec, store, load_generator(model, settings), settings)
    print(answer.answer)
    for n, h in enumerate(answer.hits, start=1):
        print(f"  [{n}] {h.score:.3f} {h.title}{'  (cited)' if n in answer.citations else ''}")
    print(f"{answer.style} answer; retrieval {answer.retrieve_s:.2f} s, generation {answer.generate_s:.2f} s")
    return 0


def run_serve(a) -> int:
    spec = ServeSpec(**knob_values(ServeSpec, a))
    check_bind(spec)  # before the model loads
    settings = load_settings()
    manager = ModelManager(lambda m: load_generator(m, settings), default_budget_gb(), active_spec(settings))
    print(f"Loading {describe(manager.active_spec)}…", file=sys.stderr, flush=True)
    manager.activate(manager.active_spec)
    print(f"Serving {spec.url} (Ctrl-C stops it)", file=sys.stderr, flush=True)
    serve_forever(spec, ServeState(settings, manager, log_requests=not a.no_mlflow))
    return 0


def run_adapters(a) -> int:
    settings = load_settings()
    registry = AdapterRegistry(settings)
    wanted = {"list": 0, "rename": 2, "delete": 1, "export": 2}[a.action]
    if len(a.names) != wanted:
        raise InputError(f"`adapters {a.action}` takes {wanted} name(s).")
    if a.action == "list":
        for info in registry.list():
            metrics = ", ".join(f"{k} {v:.3g}" for k, v in info.metrics.items())
            method = (info.train.get("method") or "sft").upper()
            pairs = f" on {info.train['preferences']}" if info.train.get("preferences") else ""
            print(
                f"{info.name}: {method}{pairs}, base {info.base.get('name', '?')}, prompt {info.prompt}, "
                f"{style_of(info)} answers, {metrics or 'no metrics'}"
            )
    elif a.action == "rename":
        registry.rename(*a.names)
    elif a.action == "delete":
        registry.delete(a.names[0])
    else:
        print(merge_export(registry, a.names[0], Path(a.names[1]), settings, overwrite=a.overwrite))
    return 0


def main(argv: list[str] | None = None) -> int:
    if argv is None and sys.argv[1:2] in (["train"], ["eval"], ["ingest"], ["loop"], ["ab"]):
        allocator.restart_with_allocator(["-m", "engine", *sys.argv[1:]], sys.argv[1] == "ingest")
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["job"]:
        return main_job(argv[1:])
    if argv[:1] == ["data"]:
        return main_data(argv[1:])
    if argv[:1] == ["preferences"]:
        return main_preferences(argv[1:])
    a = parse_args(parser(), argv)
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    handlers = {
        "eval": run_eval,
        "bench": run_bench,
        "ab": run_ab,
        "judge": run_judge,
        "ingest": run_ingest,
        "ask": run_ask,
        "kbs": run_kbs,
        "train": run_train,
        "adapters": run_adapters,
        "export": run_export,
        "loop": run_loop_command,
        "serve": run_serve,
    }
    return exit_status(lambda: handlers[a.command](a))
