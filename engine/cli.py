"""``python -m engine``: evaluation, ingestion, questions and background jobs from the shell.

Bad input prints ``error: <message>`` and exits with status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import logging
import sys

from engine.errors import StudioError

MODEL_HELP = "a Hugging Face id, a local model folder or a .gguf file (default: the bundled SmolLM2-135M)"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m engine", description="The Studio's command line.")
    sub = p.add_subparsers(dest="command", required=True)

    ev = sub.add_parser("eval", help="evaluate the model on HotpotQA questions")
    ev.add_argument("--data", default="hotpotqa-dev.jsonl", help="path, or a file in the shared data folder")
    ev.add_argument("--mode", default="distractor", choices=["closed-book", "distractor", "kb"])
    ev.add_argument("--limit", type=int, default=200, help="the first N questions")
    ev.add_argument("--k", type=int, default=5, help="sources per question")
    ev.add_argument("--kb", default="hotpotqa-wiki", help="knowledge base for --mode kb")
    ev.add_argument("--batch-size", type=int, default=16)
    ev.add_argument("--max-new-tokens", type=int, default=32)
    ev.add_argument("--model", default="", help=MODEL_HELP)
    ev.add_argument("--no-mlflow", action="store_true", help="do not log the run to MLflow")

    ing = sub.add_parser("ingest", help="ingest documents into a knowledge base")
    ing.add_argument("--kb", required=True)
    ing.add_argument("--path", help="a .jsonl/.txt/.md/.pdf file or a folder")
    ing.add_argument("--hf-dataset", help="a Hugging Face dataset name (online only)")
    ing.add_argument("--chunk-size", type=int, default=800)
    ing.add_argument("--overlap", type=int, default=120)

    ask = sub.add_parser("ask", help="answer one question with retrieval")
    ask.add_argument("question")
    ask.add_argument("--kb", default="studio-docs")
    ask.add_argument("--k", type=int, default=5)
    ask.add_argument("--model", default="", help=MODEL_HELP)

    sub.add_parser("kbs", help="list knowledge bases")
    job = sub.add_parser("job", help="background jobs: run <dir> | list | status <id> | cancel <id>")
    job.add_argument("args", nargs=argparse.REMAINDER)
    return p


def run_eval(a) -> int:
    from engine.evaluation.runner import EvalSpec, format_table, prepare_evaluation, run_evaluation
    from engine.settings import load_settings
    from engine.tracking import Tracker

    settings = load_settings()
    spec = EvalSpec(a.data, a.mode, a.limit, a.k, a.kb, a.batch_size, a.max_new_tokens, a.model)
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


def run_ingest(a) -> int:
    from engine.rag.chunking import ChunkSpec
    from engine.rag.embedder import Embedder
    from engine.rag.ingest import ingest_documents, load_source
    from engine.rag.store import KnowledgeBaseStore, check_name
    from engine.settings import load_settings

    check_name(a.kb)
    spec = ChunkSpec(a.chunk_size, a.overlap)
    docs = load_source(a.path, a.hf_dataset)
    store = KnowledgeBaseStore(load_settings(), Embedder.shared())
    report = ingest_documents(
        store, a.kb, docs, spec, lambda d, t: print(f"\r{d}/{t} chunks", end="", file=sys.stderr, flush=True)
    )
    print(file=sys.stderr)
    print(f"{report.kb}: {report.documents} documents, {report.chunks} chunks, {report.added} added, "
          f"{report.unchanged} already there")  # fmt: skip
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


def run_kbs(a) -> int:
    from engine.rag.embedder import Embedder
    from engine.rag.store import KnowledgeBaseStore
    from engine.settings import load_settings

    for info in KnowledgeBaseStore(load_settings(), Embedder.shared()).list():
        print(f"{info.name}: {info.documents} documents, {info.chunks} chunks")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["job"]:
        from engine.jobs import main_job

        return main_job(argv[1:])
    a = parser().parse_args(argv)
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    handlers = {"eval": run_eval, "ingest": run_ingest, "ask": run_ask, "kbs": run_kbs}
    try:
        return handlers[a.command](a)
    except StudioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
