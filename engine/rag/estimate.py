"""What an ingest will take, said before it starts: chunks, and minutes on this machine.

Chunks are estimated per file from the sample the scan kept (its first documents, or the first
256 K characters of a large file): chunks per character of the sample, times the file's characters,
at least one chunk a document. Minutes come from embedding a few of the sample's chunks with the
real embedder, here, now: the store's own work adds little to that.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from engine.rag.chunking import ChunkSpec, chunk_documents
from engine.rag.documents import Document
from engine.rag.sources import Scan

TIMED_CHUNKS = 32  # embedded to time the embedder (one batch)


@dataclass(frozen=True)
class IngestEstimate:
    documents: int
    chars: int
    chunks: int
    seconds: float | None  # None: not timed (no embedder given, or nothing to time)
    files: int
    skipped: tuple[str, ...] = ()  # bad files and links left out

    @property
    def summary(self) -> str:
        time_part = f", about {_duration(self.seconds)}" if self.seconds is not None else ""
        files = f"{self.files} file{'s' if self.files != 1 else ''}"
        skipped = f"; {len(self.skipped)} left out" if self.skipped else ""
        return f"{files}, {self.documents:,} documents, about {self.chunks:,} chunks{time_part}{skipped}"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


def estimate(scan: Scan, spec: ChunkSpec = ChunkSpec(), embedder=None) -> IngestEstimate:
    """The chunks (and, with ``embedder``, the time) an ingest of ``scan`` will take."""
    total, timed = 0, []
    for f in scan.files:
        docs = [
            Document(id=f"{f.name}#{i}", title=f.title, text=text, source=f.name)
            for i, text in enumerate(f.sample)
            if text.strip()
        ]
        sample_chunks = chunk_documents(docs, spec)
        sampled = sum(len(d.text) for d in docs)
        rate = len(sample_chunks) / sampled if sampled else 0.0
        total += max(f.documents, round(f.chars * rate))
        timed.extend(sample_chunks[: TIMED_CHUNKS - len(timed)])
    seconds = None
    if embedder is not None and timed:
        embedder.embed([c.text for c in timed[:2]])  # loads the model, if it is not yet
        start = time.perf_counter()
        embedder.embed([c.text for c in timed])
        seconds = (time.perf_counter() - start) / len(timed) * total
    return IngestEstimate(
        documents=scan.documents,
        chars=scan.chars,
        chunks=total,
        seconds=seconds,
        files=len(scan.files),
        skipped=scan.skipped,
    )
