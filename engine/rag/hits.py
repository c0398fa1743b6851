"""What retrieval returns: a chunk and its score, the record every layer above the store passes around
(prompts, focus, links, training examples, generated questions) without needing the store itself."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk with its cosine similarity to the query (1 = same direction)."""

    id: str
    title: str
    text: str
    source: str
    score: float
    metadata: dict = field(default_factory=dict)
