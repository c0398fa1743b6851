"""Knowledge bases: one Chroma collection each, on disk or on a Chroma server."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlparse

from engine.errors import InputError, NotFoundError
from engine.names import check_safe_name
from engine.rag.chunking import Chunk
from engine.rag.embedder import Embedder
from engine.rag.hits import Hit
from engine.rag.ingest_state import read_state
from engine.settings import Settings

ADD_BATCH = 256


@dataclass(frozen=True)
class KnowledgeBaseInfo:
    name: str
    chunks: int
    documents: int
    incomplete: str = ""  # "incomplete: N of M documents" while an ingest has not finished


def check_name(name: str) -> str:
    """Knowledge base names double as Chroma collection names: the Studio's one name rule."""
    return check_safe_name(name, "knowledge base")


def make_client(settings: Settings):
    """A Chroma client: the server at ``settings.chroma_url`` if set, else the on-disk store."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if settings.chroma_url:
        url = urlparse(settings.chroma_url)
        return chromadb.HttpClient(
            host=url.hostname or "localhost",
            port=url.port or 8000,
            ssl=url.scheme == "https",
            settings=chroma_settings,
        )
    settings.chroma_dir.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(settings.chroma_dir), settings=chroma_settings)


class KnowledgeBaseStore:
    """Named knowledge bases of embedded chunks. Adding is idempotent: ids are content hashes."""

    def __init__(self, settings: Settings, embedder: Embedder, client=None):
        self.settings = settings
        self.embedder = embedder
        # Loads chromadb (0.9 s) and registers our embedding function with it: only for a store that is opened.
        from engine.rag.chroma_embedding import StudioEmbeddingFunction  # noqa: PLC0415

        self.function = StudioEmbeddingFunction(embedder)
        self.client = client or make_client(settings)

    def collection(self, name: str, create: bool = False):
        name = check_name(name)
        if create:
            return self.client.get_or_create_collection(
                name,
                embedding_function=self.function,
                configuration={"hnsw": {"space": "cosine"}},
                metadata={"embedder": self.embedder.spec.name},
            )
        if name not in self.names():
            raise NotFoundError(f"Knowledge base {name!r} does not exist. Ingest documents into it first.")
        return self.client.get_collection(name, embedding_function=self.function)

    def names(self) -> list[str]:
        return sorted(c.name if hasattr(c, "name") else str(c) for c in self.client.list_collections())

    def list(self) -> list[KnowledgeBaseInfo]:
        infos = []
        for name in self.names():
            col = self.client.get_collection(name, embedding_function=self.function)
            metas = col.get(include=["metadatas"])["metadatas"] or []
            state = read_state(col)
            infos.append(
                KnowledgeBaseInfo(
                    name=name,
                    chunks=col.count(),
                    documents=len({m.get("doc_id") for m in metas if m}),
                    incomplete=state.label if state else "",
                )
            )
        return infos

    def incomplete(self) -> dict[str, str]:
        """The knowledge bases an ingest has not finished, with what they hold ("incomplete: N of M documents")."""
        return {c.name: state.label for c in self.client.list_collections() if (state := read_state(c))}

    def count(self, name: str) -> int:
        return self.collection(name).count()

    def add(
        self,
        name: str,
        chunks: Sequence[Chunk],
        on_progress: Callable[[int, int], None] | None = None,
        metadata: dict | None = None,
    ) -> int:
        """Embed and store the chunks not stored yet (with ``metadata`` added to each); returns how many were
        added."""
        col = self.collection(name, create=True)
        unique = list({c.id: c for c in chunks}.values())
        added = 0
        for start in range(0, len(unique), ADD_BATCH):
            batch = unique[start : start + ADD_BATCH]
            existing = set(col.get(ids=[c.id for c in batch], include=[])["ids"])
            new = [c for c in batch if c.id not in existing]
            if new:
                vectors = self.embedder.embed([c.text for c in new])
                col.add(
                    ids=[c.id for c in new],
                    documents=[c.text for c in new],
                    embeddings=vectors,
                    metadatas=[chunk_metadata(c) | (metadata or {}) for c in new],
                )
                added += len(new)
            if on_progress:
                on_progress(min(start + ADD_BATCH, len(unique)), len(unique))
        return added

    def query(self, name: str, texts: Sequence[str], k: int = 5) -> list[list[Hit]]:
        """The top ``k`` chunks for each query text, best first."""
        col = self.collection(name)
        if col.count() == 0:
            raise InputError(f"Knowledge base {name!r} is empty. Ingest documents into it first.")
        vectors = self.embedder.embed(list(texts))
        res = col.query(
            query_embeddings=vectors,
            n_results=min(k, col.count()),
            include=["documents", "metadatas", "distances"],
        )
        return [
            [
                Hit(
                    id=i,
                    title=(m or {}).get("title", ""),
                    text=d,
                    source=(m or {}).get("source", ""),
                    score=1.0 - float(dist),
                    metadata=dict(m or {}),
                )
                for i, d, m, dist in zip(ids, docs, metas, dists, strict=True)
            ]
            for ids, docs, metas, dists in zip(
                res["ids"], res["documents"], res["metadatas"], res["distances"], strict=True
            )
        ]

    def remove_except(self, name: str, keep: set[str]) -> int:
        """Delete the chunks whose ids are not in ``keep``; returns how many were deleted."""
        col = self.collection(name)
        stale = [i for i in col.get(include=[])["ids"] if i not in keep]
        if stale:
            col.delete(ids=stale)
        return len(stale)

    def remove(self, name: str, ids: Sequence[str]) -> int:
        """Delete the chunks with these ids (unknown ids are ignored); returns how many were deleted."""
        col = self.collection(name)
        ids = list(dict.fromkeys(ids))
        deleted = 0
        for start in range(0, len(ids), ADD_BATCH):
            present = col.get(ids=ids[start : start + ADD_BATCH], include=[])["ids"]
            if present:
                col.delete(ids=present)
            deleted += len(present)
        return deleted

    def remove_where(self, name: str, where: dict) -> int:
        """Delete the chunks whose metadata matches ``where`` (Chroma's filter); returns how many were deleted."""
        return self.remove(name, self.collection(name).get(where=where, include=[])["ids"])

    def stored_metadata(self, name: str) -> dict[str, dict]:
        """Every chunk's metadata by chunk id (empty for a knowledge base that does not exist)."""
        if check_name(name) not in self.names():
            return {}
        res = self.collection(name).get(include=["metadatas"])
        return {i: dict(m or {}) for i, m in zip(res["ids"], res["metadatas"] or [], strict=True)}

    def upsert(self, name: str, chunks: Sequence[Chunk], vectors: Sequence[Sequence[float]]) -> int:
        """Store one batch of chunks with precomputed vectors, replacing chunks with the same ids."""
        if len(chunks) != len(vectors):
            raise ValueError(f"{len(chunks)} chunks but {len(vectors)} vectors")
        self.collection(name, create=True).upsert(
            ids=[c.id for c in chunks],
            documents=[c.text for c in chunks],
            embeddings=[list(v) for v in vectors],
            metadatas=[chunk_metadata(c) for c in chunks],
        )
        return len(chunks)

    def delete(self, name: str) -> None:
        self.collection(name)  # raises NotFoundError for an unknown name
        self.client.delete_collection(check_name(name))


def chunk_metadata(chunk: Chunk) -> dict:
    """Chroma metadata values must be scalars: keep the chunk's own and the scalar extras."""
    meta = {k: v for k, v in (chunk.metadata or {}).items() if isinstance(v, str | int | float | bool)}
    meta.update(doc_id=chunk.doc_id, title=chunk.title, source=chunk.source, index=chunk.index)
    return meta
