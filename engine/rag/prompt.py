"""The grounded prompt: numbered sources, a question, and a request for a short answer.

The bundled 135M model tends to answer with a whole sentence, which F1 punishes. What
measured best on 40 HotpotQA questions (docs/baseline.md) is a short instruction plus three
worked examples given as earlier chat turns, with each source cut to 600 characters.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from engine.rag.store import Hit

SYSTEM = "Answer the question from the sources with a short answer of a few words, not a sentence."
CLOSED_BOOK_SYSTEM = "Answer the question with a short answer of a few words, not a sentence."
EXAMPLES: tuple[tuple[str, str, str], ...] = (
    (
        "[1] Paris: Paris is the capital and most populous city of France.",
        "What is the capital of France?",
        "Paris",
    ),
    (
        "[1] Apollo 11: Apollo 11 was the spaceflight that first landed humans on the Moon, on July 20, 1969.",
        "When did humans first land on the Moon?",
        "July 20, 1969",
    ),
    (
        "[1] Lion: The lion is a large cat of the genus Panthera.\n"
        "[2] Tiger: The tiger is the largest living cat species.",
        "Are the lion and the tiger both cats?",
        "yes",
    ),
)


@dataclass(frozen=True)
class PromptTemplate:
    """Chat messages for a question and its sources (``hits=None``: closed book, no sources)."""

    system: str = SYSTEM
    closed_book_system: str = CLOSED_BOOK_SYSTEM
    examples: tuple[tuple[str, str, str], ...] = EXAMPLES  # (sources, question, answer)
    max_source_chars: int = 600

    def messages(self, question: str, hits: Sequence[Hit] | None) -> list[dict[str, str]]:
        closed = hits is None
        messages = [{"role": "system", "content": self.closed_book_system if closed else self.system}]
        for sources, q, a in self.examples:
            messages.append({"role": "user", "content": turn(q, None if closed else sources)})
            messages.append({"role": "assistant", "content": a})
        sources = None if closed else format_sources(hits, self.max_source_chars)
        messages.append({"role": "user", "content": turn(question.strip(), sources)})
        return messages


def turn(question: str, sources: str | None) -> str:
    return f"Question: {question}" if sources is None else f"Sources:\n{sources}\n\nQuestion: {question}"


def format_sources(hits: Sequence[Hit], max_chars: int) -> str:
    return "\n".join(f"[{n}] {h.title}: {h.text[:max_chars].strip()}" for n, h in enumerate(hits, start=1))


ANSWER_PREFIX = re.compile(r"^\s*(the answer is|short answer|final answer|answer)\b\s*[:\-]?\s*", re.IGNORECASE)
CITATION = re.compile(r"\s*\[(\d+)\]")


def clean_answer(text: str) -> str:
    """The short answer from the model's output: first line, no 'Answer:' prefix, no [n] markers."""
    line = next((part for part in text.strip().splitlines() if part.strip()), "")
    line = ANSWER_PREFIX.sub("", line)
    line = CITATION.sub("", line).strip().strip('"').strip()
    return line.rstrip(".").strip()


def cited_numbers(text: str) -> list[int]:
    """The source numbers the model cited as [n], in order, without repeats."""
    return list(dict.fromkeys(int(n) for n in CITATION.findall(text)))
