"""Ingestion: documents -> chunks -> embedded into a knowledge base, in bounded batches, idempotently.

Documents stream through: a file is scanned once (checked, counted, sampled: see
:mod:`engine.rag.sources`), then read again, chunked and embedded a batch of chunks at a time, so
memory stays bounded whatever the file's size. The knowledge base is marked incomplete from the first
batch until the last (see :mod:`engine.rag.ingest_state`): a cancel keeps what is stored, and the
ingest can be resumed (chunks already stored are skipped without embedding) or rolled back.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from engine.errors import InputError
from engine.machine import trim_heap
from engine.rag.chunking import ChunkSpec, iter_chunks
from engine.rag.documents import Document, StreamedDocument, load_documents, parse_upload
from engine.rag.embedder import Embedder
from engine.rag.estimate import IngestEstimate, estimate
from engine.rag.ingest_state import CHUNK_KEY, IngestState, read_state, write_state
from engine.rag.refresh import RefreshReport, refresh_kb
from engine.rag.sources import Scan, read_documents, scan_path
from engine.rag.store import ADD_BATCH, KnowledgeBaseStore, check_name
from engine.settings import ROOT, load_settings

DOCS_KB = "studio-docs"
WIKI_KB = "hotpotqa-wiki"


@dataclass(frozen=True)
class IngestReport:
    kb: str
    documents: int
    chunks: int
    added: int
    skipped: tuple[str, ...] = ()  # bad files and links left out of a folder

    @property
    def unchanged(self) -> int:
        return self.chunks - self.added

    def as_dict(self) -> dict:
        return asdict(self) | {"unchanged": self.unchanged, "skipped": list(self.skipped)}


@dataclass(frozen=True)
class IngestPlan:
    """What is about to be ingested, known before it starts: for the progress and the incomplete mark."""

    documents: int
    chunks: int = 0  # an estimate (0: unknown); progress reads against it
    source: str = "documents"
    args: dict = field(default_factory=dict)  # the job arguments that run it again (empty: cannot resume)
    skipped: tuple[str, ...] = ()


class _Counted:
    """The documents, counting those handed out: when the chunker asks for document k + 1, the first k
    have given all their chunks."""

    def __init__(self, docs: Iterable[Document | StreamedDocument]):
        self.docs, self.started = docs, 0

    def __iter__(self) -> Iterator[Document | StreamedDocument]:
        for doc in self.docs:
            self.started += 1
            yield doc


def ingest_documents(
    store: KnowledgeBaseStore,
    kb: str,
    docs: Iterable[Document | StreamedDocument],
    spec: ChunkSpec = ChunkSpec(),
    on_progress: Callable[[int, int], None] | None = None,
    plan: IngestPlan | None = None,
) -> IngestReport:
    """Add ``docs`` to ``kb``, chunked and embedded ``ADD_BATCH`` chunks at a time; chunks already stored are
    skipped (same content, same id), and nothing is removed: a knowledge base that must hold exactly a set of
    documents is refreshed (:func:`engine.rag.refresh.refresh_kb`). ``on_progress(chunks stored, chunks
    expected)`` after each batch.
    """
    kb = check_name(kb)
    if plan is None:
        docs = list(docs)
        plan = IngestPlan(len(docs))
    if not plan.documents:
        raise InputError("There are no documents to ingest.")
    created = kb not in store.names()
    collection = store.collection(kb, create=True)
    previous = read_state(collection)
    resumed = previous is not None and previous.id and plan.args and previous.args == plan.args
    state = IngestState(
        id=previous.id if resumed else uuid.uuid4().hex[:12],
        source=plan.source,
        args=plan.args,
        documents=plan.documents,
        created=previous.created if resumed else created,
        started=time.strftime("%Y-%m-%d %H:%M:%S"),
    )
    write_state(collection, state)
    counted, seen, batch = _Counted(docs), set(), []
    added = stored = 0

    def flush() -> None:
        nonlocal added, stored
        added += store.add(kb, batch, metadata={CHUNK_KEY: state.id})
        stored += len(batch)
        batch.clear()
        trim_heap()  # without it, glibc's heap grows by about 0.25 MB a chunk (measured: docs/ingestion.md)
        write_state(collection, state.advanced(counted.started - 1, stored))
        if on_progress:
            on_progress(stored, max(plan.chunks, stored))

    for chunk in iter_chunks(counted, spec, seen):
        batch.append(chunk)
        if len(batch) >= ADD_BATCH:
            flush()
    if batch:
        flush()
    write_state(collection, None)  # complete: every document is stored whole
    if on_progress:
        on_progress(stored, stored)
    return IngestReport(kb=kb, documents=counted.started, chunks=stored, added=added, skipped=plan.skipped)


def ingest_path(store, kb, path, spec=ChunkSpec(), on_progress=None, on_error: str = "abort") -> IngestReport:
    """Ingest a file or a folder (JSONL with title/text, .txt, .md, .pdf, .html, .docx), streaming it."""
    args = {"kb": kb, "path": str(path), "chunk_size": spec.size, "overlap": spec.overlap, "on_error": on_error}
    return ingest_source(store, args, on_progress)


def ingest_upload(store, kb, name: str, data: bytes, spec=ChunkSpec(), on_progress=None) -> IngestReport:
    return ingest_documents(store, kb, parse_upload(name, data), spec, on_progress)


def kb_state(store: KnowledgeBaseStore, kb: str) -> IngestState | None:
    """The unfinished ingest of a knowledge base, if it has one."""
    return read_state(store.collection(kb))


def rollback_ingest(store: KnowledgeBaseStore, kb: str) -> int:
    """Remove the chunks that a knowledge base's unfinished ingest added (the knowledge base too, if that
    ingest made it and nothing else is left); the number of chunks removed."""
    collection = store.collection(kb)
    state = read_state(collection)
    if state is None:
        raise InputError(f"Knowledge base {kb!r} has no unfinished ingest to roll back.")
    if not state.id:
        raise InputError(
            f"Knowledge base {kb!r} was left incomplete by another version of the Studio: "
            "resume it by ingesting the same source again, or delete it."
        )
    removed = store.remove_where(kb, {CHUNK_KEY: state.id})
    if state.created and collection.count() == 0:
        store.delete(kb)
    else:
        write_state(collection, None)
    return removed


def load_hf_documents(name: str, split: str = "train", text_field: str = "text", title_field: str = "title"):
    """Documents from a Hugging Face dataset (needs the internet the first time)."""
    try:
        import datasets

        rows = datasets.load_dataset(name, split=split)
    except Exception as exc:  # the hub raises many types: offline, unknown name, bad split
        raise InputError(f"Could not load Hugging Face dataset {name!r} ({split}): {str(exc)[:300]}") from exc
    if text_field not in rows.column_names:
        raise InputError(f"Dataset {name!r} has no {text_field!r} column; columns: {', '.join(rows.column_names)}.")
    return [
        Document(
            id=str(r.get("id", i)),
            title=str(r.get(title_field) or f"{name} #{i}"),
            text=str(r[text_field]),
            source=name,
        )
        for i, r in enumerate(rows)
        if str(r[text_field]).strip()
    ]


def load_source(path: str | None = None, hf_dataset: str | None = None, split: str = "train") -> list[Document]:
    """Documents from exactly one of a local path or a Hugging Face dataset name."""
    if bool(path) == bool(hf_dataset):
        raise InputError("Give exactly one of a path or a Hugging Face dataset.")
    return load_hf_documents(hf_dataset, split) if hf_dataset else load_documents(Path(path).expanduser())


def studio_documents() -> list[Document]:
    """The Studio's own documentation: README.md and docs/, without docs/answers.md (the measured answers
    to the docs questions of tests/data: retrieving them would answer the benchmark from its own table)."""
    docs = load_documents(ROOT / "README.md")
    if (ROOT / "docs").is_dir():
        docs += [d for d in load_documents(ROOT / "docs") if Path(d.source).name not in NOT_DOCUMENTATION]
    return docs


NOT_DOCUMENTATION = ("answers.md",)


def ensure_docs_kb(store: KnowledgeBaseStore) -> RefreshReport:
    """Keep the ``studio-docs`` knowledge base in step with the bundled documentation (a refresh: only changed
    files are embedded again, and a file taken out of docs/ leaves it)."""
    return refresh_kb(store, DOCS_KB, studio_documents())


def source_spec(args: dict) -> ChunkSpec:
    return ChunkSpec(args.get("chunk_size", ChunkSpec.size), args.get("overlap", ChunkSpec.overlap))


def preview_source(args: dict, embedder=None) -> tuple[Scan, IngestEstimate]:
    """Check a local source (job arguments with ``path``) and estimate its ingest, before starting it."""
    check_name(args.get("kb", ""))
    if not args.get("path"):
        raise InputError("Give a file or folder to ingest.")
    scan = scan_path(args["path"], args.get("on_error", "abort"))
    return scan, estimate(scan, source_spec(args), embedder)


def ingest_source(store, args: dict, on_progress=None, log: Callable[[str], None] | None = None) -> IngestReport:
    """Ingest what the ingest job arguments name: ``kb`` and a ``path`` (``on_error``: abort or skip bad
    files) or a ``hf_dataset`` (``split``), with ``chunk_size`` and ``overlap``. Running the arguments of an
    unfinished ingest again resumes it."""
    kb, spec = check_name(args.get("kb", "")), source_spec(args)
    path, hf = args.get("path"), args.get("hf_dataset")
    if bool(path) == bool(hf):
        raise InputError("Give exactly one of a path or a Hugging Face dataset.")
    if hf:
        docs = load_hf_documents(hf, args.get("split", "train"))
        return ingest_documents(
            store,
            kb,
            docs,
            spec,
            on_progress,
            plan=IngestPlan(documents=len(docs), chunks=0, source=hf, args=dict(args)),
        )
    scan, guess = preview_source(args)
    if log:
        log(f"{scan.path}: {guess.summary}")
        for line in scan.skipped:
            log(f"left out: {line}")
    plan = IngestPlan(
        documents=scan.documents, chunks=guess.chunks, source=str(scan.path), args=dict(args), skipped=scan.skipped
    )
    return ingest_documents(store, kb, read_documents(scan), spec, on_progress, plan=plan)


def ingest_job(args: dict, ctx) -> dict:
    """An ingest job's adding (kind ``ingest``, :mod:`engine.data.knowledge`): see :func:`ingest_source`."""
    ctx.progress(0.0, "reading documents")
    store = KnowledgeBaseStore(load_settings(), Embedder.shared())

    def progress(done: int, total: int) -> None:
        ctx.check_cancelled()  # a cancel keeps what is stored: the knowledge base stays marked incomplete
        ctx.progress(0.01 + 0.99 * done / total, f"{done:,} of about {total:,} chunks")

    report = ingest_source(store, args, progress, ctx.log)
    ctx.log(f"ingested into {report.kb}: {report.added} chunks added, {report.unchanged} already there")
    return report.as_dict()
