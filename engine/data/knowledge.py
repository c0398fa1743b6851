"""A knowledge base filled from a source, by the one background-job kind that writes one (``ingest``).

The source is a folder or file, a Hugging Face dataset, or the contexts of a QA set version. An ingest adds the
source's documents (streamed, resumable: :mod:`engine.rag.ingest`); a mirror (``mirror``, and always for a QA set
version) makes the knowledge base hold exactly them, embedding only new and changed documents
(:mod:`engine.rag.refresh`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields

from engine.errors import InputError
from engine.job_kinds import register_job_kind
from engine.knobs import knob
from engine.qa.schema import QARecord
from engine.qa.versions import DatasetStore
from engine.rag.documents import Document
from engine.rag.embedder import Embedder
from engine.rag.ingest import ingest_job, load_source, source_spec
from engine.rag.refresh import refresh_kb
from engine.rag.store import KnowledgeBaseStore, check_name
from engine.settings import load_settings

DATASET_SOURCE = "dataset"


def _context_id(title: str, text: str) -> str:
    return hashlib.sha256(f"{title}\x00{text}".encode()).hexdigest()[:32]


def documents_from_records(records: Iterable[QARecord]) -> list[Document]:
    """The distinct contexts of QA records as documents (source ``dataset``), in first-seen order.

    A context's id is its ``doc_id``, else a hash of its title and text; when two contexts share
    an id, the first one is kept.
    """
    docs: dict[str, Document] = {}
    for record in records:
        for context in record.contexts:
            if not context.text.strip():
                continue
            doc_id = context.doc_id or _context_id(context.title, context.text)
            if doc_id not in docs:
                docs[doc_id] = Document(id=doc_id, title=context.title, text=context.text, source=DATASET_SOURCE)
    return list(docs.values())


def refresh_job(args: dict, ctx) -> dict:
    """An ingest job's mirroring: ``kb`` plus one source, ``path``, ``hf_dataset`` (with ``split``), or ``dataset``
    and ``version`` (a saved dataset version's contexts); ``chunk_size`` and ``overlap`` are optional.
    """
    settings = load_settings()
    spec = source_spec(args)
    kb = check_name(args.get("kb", ""))
    sources = [k for k in ("path", "hf_dataset", "dataset") if args.get(k)]
    if len(sources) != 1:
        raise InputError("Give exactly one source: a path, a Hugging Face dataset, or a dataset and its version.")
    ctx.progress(0.0, "reading documents")
    if args.get("dataset"):
        if not args.get("version"):
            raise InputError(f"Say which version of dataset {args['dataset']!r} to build the knowledge base from.")

        docs = documents_from_records(DatasetStore(settings).load(args["dataset"], args["version"]))
        if not docs:
            raise InputError(f"Dataset {args['dataset']!r} version {args['version']!r} has no contexts to index.")
    else:
        docs = load_source(args.get("path"), args.get("hf_dataset"), args.get("split", "train"))
    ctx.progress(0.01, f"comparing {len(docs)} documents with {kb}")
    store = KnowledgeBaseStore(settings, Embedder.shared())

    def progress(done: int, total: int) -> None:
        ctx.check_cancelled()
        ctx.progress(0.01 + 0.98 * done / total, f"{done}/{total} chunks")

    report = refresh_kb(store, kb, docs, spec, progress)
    ctx.log(
        f"refreshed {report.kb}: {report.new_documents} new, {report.changed_documents} changed, "
        f"{report.removed_documents} removed, {report.unchanged_documents} unchanged documents; "
        f"{report.chunks_embedded} chunks written ({report.cache_hits} from the cache), {report.chunks_deleted} deleted"
    )
    return report.as_dict()


def fill_job(args: dict, ctx) -> dict:
    """The ``ingest`` job: a mirror (:func:`refresh_job`) for ``mirror`` or a dataset version, else an ingest that
    adds (:func:`engine.rag.ingest.ingest_job`)."""
    run = IngestRun.from_args(args)
    return refresh_job(args, ctx) if run.mirror or run.dataset else ingest_job(args, ctx)


@dataclass(frozen=True)
class IngestRun:
    """An ingest job: knowledge base ``kb`` and one source, a ``path`` (``on_error``: abort or skip bad files), a
    ``hf_dataset`` (``split``), or a ``dataset`` ``version`` (always mirrored); chunking as the knowledge base's
    defaults unless given. With ``mirror``, what the source no longer has leaves the knowledge base."""

    kb: str
    path: str = ""
    hf_dataset: str = ""
    split: str = ""
    dataset: str = ""
    version: str = ""
    mirror: bool = knob(
        False,
        "the knowledge base holds exactly this source: documents it no longer has are removed and only new or "
        "changed ones are embedded. Off: the documents are added to what is there",
        label="Mirror the source",
    )
    on_error: str = "abort"
    chunk_size: int | None = None
    overlap: int | None = None

    @classmethod
    def from_args(cls, args: dict) -> IngestRun:
        """The run of stored arguments (an unfinished ingest's, to resume it)."""
        return cls(**{k: v for k, v in args.items() if k in {f.name for f in fields(cls)}})

    def args(self) -> dict:
        """The job's arguments: the fields given (an unfinished ingest is resumed by the same arguments)."""
        return {k: v for k, v in asdict(self).items() if v not in ("", None) and not (k == "mirror" and not v)}


register_job_kind("ingest", fill_job, IngestRun, IngestRun.args)
