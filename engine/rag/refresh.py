"""Incremental refresh: bring a knowledge base in step with a set of documents, touching only what changed.

Documents are matched by :attr:`Document.id`. Each stored chunk carries its document's content
hash (``doc_hash``: title, text, source, metadata and chunk spec) and chunk count
(``doc_chunks``), so a refresh can tell, without embedding anything, which documents are new,
changed, removed or unchanged. Only new and changed documents are chunked into the store, and
their vectors come through a :class:`~engine.rag.embedding_cache.CachedEmbedder`, so a text
embedded once (even in a knowledge base since deleted) is never embedded again.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace

from engine.errors import InputError
from engine.rag.chunking import Chunk, ChunkSpec, chunk_document, normalize_whitespace
from engine.rag.documents import Document
from engine.rag.embedding_cache import CachedEmbedder
from engine.rag.store import ADD_BATCH, KnowledgeBaseStore, check_name

DOC_HASH = "doc_hash"
DOC_CHUNKS = "doc_chunks"


@dataclass(frozen=True)
class RefreshReport:
    kb: str
    documents: int
    new_documents: int
    changed_documents: int
    removed_documents: int
    unchanged_documents: int
    chunks_embedded: int  # chunks (re)written for new and changed documents
    chunks_deleted: int  # chunks of removed documents and stale chunks of changed ones
    cache_hits: int  # of chunks_embedded, those whose vector came from the cache
    seconds: float

    @property
    def chunks_computed(self) -> int:
        """Chunks the embedder model actually ran on."""
        return self.chunks_embedded - self.cache_hits

    def as_dict(self) -> dict:
        return asdict(self) | {"chunks_computed": self.chunks_computed}


def document_hash(doc: Document, spec: ChunkSpec) -> str:
    """A hash of everything that decides a document's stored chunks."""
    metadata = {k: v for k, v in sorted((doc.metadata or {}).items()) if isinstance(v, str | int | float | bool)}
    payload = [doc.title, normalize_whitespace(doc.text), doc.source, metadata, spec.size, spec.overlap]
    return hashlib.sha256(json.dumps(payload, ensure_ascii=False).encode()).hexdigest()[:32]


def _unique(chunk: Chunk, taken: set[str]) -> Chunk:
    """The chunk with an id no other stored chunk has (same text in two documents gets two ids)."""
    cid, salt = chunk.id, 0
    while cid in taken:
        salt += 1
        cid = hashlib.sha256(f"{chunk.id}\x00{chunk.doc_id}\x00{chunk.index}\x00{salt}".encode()).hexdigest()[:32]
    taken.add(cid)
    return chunk if cid == chunk.id else replace(chunk, id=cid)


def _check_ids(docs: Sequence[Document]) -> None:
    repeated = [doc_id for doc_id, n in Counter(d.id for d in docs).items() if n > 1]
    if repeated:
        more = f" and {len(repeated) - 5} more" if len(repeated) > 5 else ""
        listed = ", ".join(repr(i) for i in repeated[:5]) + more
        raise InputError(f"Document ids must be unique to refresh a knowledge base; repeated: {listed}.")


def refresh_kb(
    store: KnowledgeBaseStore,
    kb: str,
    docs: Sequence[Document],
    spec: ChunkSpec = ChunkSpec(),
    on_progress: Callable[[int, int], None] | None = None,
) -> RefreshReport:
    """Make ``kb`` hold exactly the chunks of ``docs``, re-embedding only new and changed documents.

    ``on_progress(done, total)`` counts the chunks of new and changed documents. New chunks are
    written before stale ones are deleted, so a refresh cut short leaves no document missing
    (the next refresh finishes the job: a half-written document does not look unchanged).
    """
    began = time.perf_counter()
    kb = check_name(kb)
    docs = list(docs)
    if not docs:
        raise InputError("There are no documents to refresh the knowledge base with (it would be emptied).")
    _check_ids(docs)
    stored: dict[str, list[tuple[str, dict]]] = defaultdict(list)
    for chunk_id, meta in store.stored_metadata(kb).items():
        stored[str(meta.get("doc_id", ""))].append((chunk_id, meta))

    hashes = {d.id: document_hash(d, spec) for d in docs}
    unchanged, todo, new = [], [], 0
    for doc in docs:
        old = stored.get(doc.id)
        if old is None and not doc.text.strip():
            unchanged.append(doc)  # nothing stored, nothing to store
            continue
        if old is None:
            new += 1
        elif all(m.get(DOC_HASH) == hashes[doc.id] and m.get(DOC_CHUNKS) == len(old) for _, m in old):
            unchanged.append(doc)
            continue
        todo.append(doc)
    keep = {chunk_id for doc in unchanged for chunk_id, _ in stored.get(doc.id, [])}
    taken = set(keep)
    chunks = []
    for doc in todo:
        pieces = chunk_document(doc, spec)
        extra = {DOC_HASH: hashes[doc.id], DOC_CHUNKS: len(pieces)}
        chunks += [_unique(replace(c, metadata={**c.metadata, **extra}), taken) for c in pieces]

    embedder = store.embedder
    if not isinstance(embedder, CachedEmbedder):
        embedder = CachedEmbedder(embedder, store.settings)
    hits = 0
    for start in range(0, len(chunks), ADD_BATCH):
        batch = chunks[start : start + ADD_BATCH]
        vectors = embedder.embed([c.text for c in batch])
        hits += embedder.hits
        store.upsert(kb, batch, vectors)
        if on_progress:
            on_progress(start + len(batch), len(chunks))

    current = {d.id for d in docs}
    removed = [doc_id for doc_id in stored if doc_id not in current]
    kept = keep | {c.id for c in chunks}
    stale = [chunk_id for entries in stored.values() for chunk_id, _ in entries if chunk_id not in kept]
    deleted = store.remove(kb, stale) if stale else 0
    return RefreshReport(
        kb=kb,
        documents=len(docs),
        new_documents=new,
        changed_documents=len(todo) - new,
        removed_documents=len(removed),
        unchanged_documents=len(unchanged),
        chunks_embedded=len(chunks),
        chunks_deleted=deleted,
        cache_hits=hits,
        seconds=time.perf_counter() - began,
    )
