"""``python -m engine ingest`` and ``python -m engine kbs``: knowledge bases from the shell."""

from __future__ import annotations

import sys

from engine.errors import InputError
from engine.rag.embedder import Embedder
from engine.rag.ingest import ingest_source, kb_state, preview_source, rollback_ingest
from engine.rag.store import KnowledgeBaseStore, check_name
from engine.settings import load_settings


def add_ingest_arguments(sub) -> None:
    ing = sub.add_parser("ingest", help="ingest documents into a knowledge base")
    ing.add_argument("--kb", required=True)
    ing.add_argument("--path", help="a .jsonl/.txt/.md/.pdf/.html/.docx file or a folder")
    ing.add_argument("--hf-dataset", help="a Hugging Face dataset name (online only)")
    ing.add_argument("--chunk-size", type=int, default=800)
    ing.add_argument("--overlap", type=int, default=120)
    ing.add_argument("--skip-bad", action="store_true", help="a folder: ingest the good files, list the bad")
    ing.add_argument("--estimate", action="store_true", help="only check the source and say what it will take")
    ing.add_argument("--resume", action="store_true", help="finish the knowledge base's unfinished ingest")
    ing.add_argument("--rollback", action="store_true", help="remove what its unfinished ingest added")


def run_ingest(a) -> int:
    kb = check_name(a.kb)
    args = {
        "kb": kb,
        "path": a.path,
        "hf_dataset": a.hf_dataset,
        "chunk_size": a.chunk_size,
        "overlap": a.overlap,
        "on_error": "skip" if a.skip_bad else "abort",
    }
    if a.estimate:
        scan, guess = preview_source(args, Embedder.shared())
        print(f"{scan.path}: {guess.summary}")
        print("".join(f"  left out: {line}\n" for line in scan.skipped), end="")
        return 0
    store = KnowledgeBaseStore(load_settings(), Embedder.shared())
    if a.rollback:
        print(f"{kb}: {rollback_ingest(store, kb)} chunks of the unfinished ingest removed")
        return 0
    if a.resume:
        state = kb_state(store, kb)
        if state is None or not state.args:
            raise InputError(f"Knowledge base {kb!r} has no unfinished ingest to resume.")
        args = state.args
    report = ingest_source(
        store,
        args,
        lambda d, t: print(f"\r{d:,} of about {t:,} chunks", end="", file=sys.stderr, flush=True),
        lambda line: print(line, file=sys.stderr),
    )
    print(file=sys.stderr)
    print(
        f"{report.kb}: {report.documents} documents, {report.chunks} chunks, {report.added} added, "
        f"{report.unchanged} already there"
    )
    print("".join(f"  left out: {line}\n" for line in report.skipped), end="")
    return 0


def run_kbs(a) -> int:
    for info in KnowledgeBaseStore(load_settings(), Embedder.shared()).list():
        state = f", {info.incomplete}" if info.incomplete else ""
        print(f"{info.name}: {info.documents} documents, {info.chunks} chunks{state}")
    return 0
