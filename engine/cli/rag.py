"""``python -m engine ingest`` and ``python -m engine kbs``: knowledge bases from the shell."""

from __future__ import annotations

import sys

from engine.data.knowledge import IngestRun, refresh_job
from engine.errors import InputError
from engine.knobs import add_knob_argument
from engine.rag.chunking import ChunkSpec
from engine.rag.embedder import Embedder
from engine.rag.ingest import ingest_source, kb_state, preview_source, rollback_ingest
from engine.rag.store import KnowledgeBaseStore, check_name
from engine.settings import load_settings


def add_ingest_arguments(sub) -> None:
    ing = sub.add_parser("ingest", help="ingest documents into a knowledge base (add to it, or mirror a source)")
    ing.add_argument("--kb", required=True)
    ing.add_argument("--path", help="a .jsonl/.txt/.md/.pdf/.html/.docx file or a folder")
    ing.add_argument("--hf-dataset", help="a Hugging Face dataset name (online only)")
    add_knob_argument(ing, ChunkSpec, "size", "--chunk-size")
    add_knob_argument(ing, ChunkSpec, "overlap")
    add_knob_argument(ing, IngestRun, "mirror")
    ing.add_argument("--skip-bad", action="store_true", help="a folder: ingest the good files, list the bad")
    ing.add_argument("--estimate", action="store_true", help="only check the source and say what it will take")
    ing.add_argument("--resume", action="store_true", help="finish the knowledge base's unfinished ingest")
    ing.add_argument("--rollback", action="store_true", help="remove what its unfinished ingest added")


class Here:
    """A job's context for a command run in the shell: progress on one line of stderr, log lines below it."""

    def progress(self, fraction: float, message: str = "") -> None:
        print(f"\r[{100 * fraction:5.1f}%] {message}   ", end="", file=sys.stderr, flush=True)

    def log(self, line: str) -> None:
        print(file=sys.stderr)
        print(line, file=sys.stderr)

    def check_cancelled(self) -> None:
        pass


def mirror(run: IngestRun) -> int:
    """A mirror ingest in the shell: the knowledge base holds exactly the source."""
    try:
        result = refresh_job(run.args(), Here())
    finally:
        print(file=sys.stderr)  # ends the progress line, before a result or an error
    print(", ".join(f"{k.replace('_', ' ')} {v}" for k, v in result.items() if k != "seconds"))
    return 0


def run_ingest(a) -> int:
    kb = check_name(a.kb)
    run = IngestRun(
        kb=kb,
        path=a.path or "",
        hf_dataset=a.hf_dataset or "",
        on_error="skip" if a.skip_bad else "abort",
        chunk_size=a.chunk_size,
        overlap=a.overlap,
        mirror=a.mirror,
    )
    args = run.args()
    if a.estimate:
        scan, guess = preview_source(args, Embedder.shared())
        print(f"{scan.path}: {guess.summary}")
        print("".join(f"  left out: {line}\n" for line in scan.skipped), end="")
        return 0
    if a.mirror and not (a.resume or a.rollback):
        return mirror(run)
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
