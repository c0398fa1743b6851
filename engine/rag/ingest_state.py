"""Whether a knowledge base holds all it was given: the record of an ingest under way, kept in Chroma.

An ingest writes an :class:`IngestState` into its collection's metadata before it stores the first
chunk and updates it after every batch; only a finished ingest removes it. So an ingest that was
cancelled, crashed or killed leaves its knowledge base marked "incomplete: N of M documents", never
passing for complete, with what is needed to resume it (run the same source again: chunks already
stored are skipped) or to roll it back (every chunk it added carries its id). The record lives with
the collection, so a Chroma server shows it to every Studio that uses the server.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace

KEY = "studio_ingest"  # the collection metadata field
CHUNK_KEY = "ingest_id"  # the chunk metadata field naming the ingest that added the chunk


@dataclass(frozen=True)
class IngestState:
    """An ingest that has not finished (yet)."""

    id: str
    source: str  # what is being ingested, in words (a path, a Hugging Face dataset)
    args: dict  # the ingest job's arguments: running them again resumes it
    documents: int  # M: the documents the source holds
    done: int = 0  # N: the documents stored whole so far
    chunks: int = 0  # chunks stored so far (new and already there)
    created: bool = False  # the knowledge base did not exist before this ingest
    started: str = ""

    @property
    def label(self) -> str:
        return f"incomplete: {self.done} of {self.documents} documents ({self.chunks:,} chunks stored)"

    def advanced(self, done: int, chunks: int) -> IngestState:
        return replace(self, done=done, chunks=chunks)


def read_state(collection) -> IngestState | None:
    """The unfinished ingest recorded on a Chroma collection, if any."""
    raw = (collection.metadata or {}).get(KEY)
    if not raw:
        return None
    try:
        return IngestState(**json.loads(raw))
    except (TypeError, ValueError):  # written by another version: still unfinished, details unknown
        return IngestState(id="", source="?", args={}, documents=0)


def write_state(collection, state: IngestState | None) -> None:
    """Record ``state`` on the collection (None: the ingest finished, or was rolled back)."""
    metadata = {k: v for k, v in (collection.metadata or {}).items() if k != KEY}
    if state is not None:
        metadata[KEY] = json.dumps(asdict(state))
    collection.modify(metadata=metadata)
