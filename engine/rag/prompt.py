"""The grounded prompt: numbered sources, a question, and a request for a short answer."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from engine.rag.store import Hit

SYSTEM = "You answer questions using the numbered sources. Reply with the short answer only: a name, date, number, yes or no, or a few words. No full sentence."
USER = "Sources:\n{sources}\n\nQuestion: {question}\nShort answer:"
CLOSED_BOOK_USER = "Question: {question}\nShort answer:"


@dataclass(frozen=True)
class PromptTemplate:
    """Chat messages for a question and its sources; ``{sources}`` and ``{question}`` are filled in."""

    system: str = SYSTEM
    user: str = USER
    closed_book_user: str = CLOSED_BOOK_USER
    max_source_chars: int = 1200

    def messages(self, question: str, hits: Sequence[Hit] | None) -> list[dict[str, str]]:
        if hits is None:
            content = self.closed_book_user.format(question=question.strip())
        else:
            content = self.user.format(sources=format_sources(hits, self.max_source_chars), question=question.strip())
        return [{"role": "system", "content": self.system}, {"role": "user", "content": content}]


def format_sources(hits: Sequence[Hit], max_chars: int) -> str:
    return "\n".join(f"[{n}] {h.title}: {h.text[:max_chars].strip()}" for n, h in enumerate(hits, start=1))


ANSWER_PREFIX = re.compile(r"^\s*(short answer|final answer|answer|a)\s*[:\-]\s*", re.IGNORECASE)
CITATION = re.compile(r"\s*\[(\d+)\]")


def clean_answer(text: str) -> str:
    """The short answer from the model's output: first line, no 'Answer:' prefix, no [n] markers."""
    line = next((part for part in text.strip().splitlines() if part.strip()), "")
    line = ANSWER_PREFIX.sub("", line)
    line = CITATION.sub("", line).strip()
    return line.rstrip(".").strip()


def cited_numbers(text: str) -> list[int]:
    """The source numbers the model cited as [n], in order, without repeats."""
    return list(dict.fromkeys(int(n) for n in CITATION.findall(text)))
