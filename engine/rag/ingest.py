"""Ingestion: documents -> chunks -> embedded into a knowledge base, idempotently."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from engine.errors import InputError
from engine.rag.chunking import ChunkSpec, chunk_documents
from engine.rag.documents import Document, load_documents, parse_upload
from engine.rag.store import KnowledgeBaseStore, check_name
from engine.settings import ROOT

DOCS_KB = "studio-docs"
WIKI_KB = "hotpotqa-wiki"


@dataclass(frozen=True)
class IngestReport:
    kb: str
    documents: int
    chunks: int
    added: int
    removed: int = 0

    @property
    def unchanged(self) -> int:
        return self.chunks - self.added

    def as_dict(self) -> dict:
        return asdict(self) | {"unchanged": self.unchanged}


def ingest_documents(
    store: KnowledgeBaseStore,
    kb: str,
    docs: Sequence[Document],
    spec: ChunkSpec = ChunkSpec(),
    on_progress: Callable[[int, int], None] | None = None,
    remove_missing: bool = False,
) -> IngestReport:
    """Chunk and embed ``docs`` into ``kb``; chunks already stored are skipped (same content, same id).

    With ``remove_missing``, chunks in the knowledge base that these documents no longer
    produce are deleted, so the knowledge base mirrors the documents exactly.
    """
    kb = check_name(kb)
    if not docs:
        raise InputError("There are no documents to ingest.")
    chunks = chunk_documents(docs, spec)
    added = store.add(kb, chunks, on_progress)
    removed = store.remove_except(kb, {c.id for c in chunks}) if remove_missing else 0
    return IngestReport(kb, len(docs), len(chunks), added, removed)


def ingest_path(store, kb, path, spec=ChunkSpec(), on_progress=None) -> IngestReport:
    """Ingest a file or a folder (JSONL with title/text, .txt, .md, .pdf)."""
    return ingest_documents(store, kb, load_documents(Path(path).expanduser()), spec, on_progress)


def ingest_upload(store, kb, name: str, data: bytes, spec=ChunkSpec(), on_progress=None) -> IngestReport:
    return ingest_documents(store, kb, parse_upload(name, data), spec, on_progress)


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
        Document(str(r.get("id", i)), str(r.get(title_field) or f"{name} #{i}"), str(r[text_field]), name)
        for i, r in enumerate(rows)
        if str(r[text_field]).strip()
    ]


def load_source(path: str | None = None, hf_dataset: str | None = None, split: str = "train") -> list[Document]:
    """Documents from exactly one of a local path or a Hugging Face dataset name."""
    if bool(path) == bool(hf_dataset):
        raise InputError("Give exactly one of a path or a Hugging Face dataset.")
    return load_hf_documents(hf_dataset, split) if hf_dataset else load_documents(Path(path).expanduser())


def studio_documents() -> list[Document]:
    """The Studio's own documentation: README.md and docs/."""
    docs = load_documents(ROOT / "README.md")
    if (ROOT / "docs").is_dir():
        docs += load_documents(ROOT / "docs")
    return docs


def ensure_docs_kb(store: KnowledgeBaseStore) -> IngestReport:
    """Keep the ``studio-docs`` knowledge base in step with the bundled documentation."""
    return ingest_documents(store, DOCS_KB, studio_documents(), remove_missing=True)


def ingest_job(args: dict, ctx) -> dict:
    """The background-job form of ingestion (kind ``ingest``): ``kb`` plus ``path`` or ``hf_dataset``."""
    from engine.rag.embedder import Embedder
    from engine.settings import load_settings

    spec = ChunkSpec(args.get("chunk_size", ChunkSpec.size), args.get("overlap", ChunkSpec.overlap))
    ctx.progress(0.0, "reading documents")
    docs = load_source(args.get("path"), args.get("hf_dataset"), args.get("split", "train"))
    ctx.progress(0.01, f"embedding {len(docs)} documents")
    store = KnowledgeBaseStore(load_settings(), Embedder.shared())

    def progress(done: int, total: int) -> None:
        ctx.check_cancelled()
        ctx.progress(0.01 + 0.99 * done / total, f"{done}/{total} chunks")

    report = ingest_documents(store, args["kb"], docs, spec, progress)
    ctx.log(f"ingested into {report.kb}: {report.added} chunks added, {report.unchanged} already there")
    return report.as_dict()
