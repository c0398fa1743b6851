"""How to decode and what comes back: shared by local generators and remote ones (engine.models.remote)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from engine.errors import InputError

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class SamplingSpec:
    """How to decode: greedy when temperature is 0, else sampled with top-p."""

    max_new_tokens: int = 32
    temperature: float = 0.0
    top_p: float = 0.95
    stop: tuple[str, ...] = ()
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise InputError("max_new_tokens must be at least 1.")
        if self.temperature < 0:
            raise InputError("temperature must be 0 (greedy) or positive.")


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    new_tokens: int
    seconds: float  # wall time of the batch this completion was generated in


def cut_at_stop(text: str, stop: Sequence[str]) -> str:
    """The text before the first stop string."""
    cut = len(text)
    for s in stop:
        pos = text.find(s)
        if pos != -1:
            cut = min(cut, pos)
    return text[:cut]


def until_stop(pieces: Iterable[str], stop: Sequence[str]) -> Iterator[str]:
    """The streamed pieces of an answer up to its first stop string (the piece it falls in cut short)."""
    text = ""
    for piece in pieces:
        if not piece:
            continue
        cut = cut_at_stop(text + piece, stop)
        if len(cut) < len(text + piece):
            yield cut[len(text) :]
            return
        text += piece
        yield piece
