"""The grounded prompt: numbered sources, a question, and a request for a short answer.

The bundled 135M model tends to answer with a whole sentence, which F1 punishes. What
measured best on 40 HotpotQA questions (docs/baseline.md) is a short instruction plus three
worked examples given as earlier chat turns, with each source cut to 600 characters.

Answer styles: ``short`` replies with the answer alone; ``evidence`` (for adapters trained to
it) first quotes the source sentences that answer, then gives the short answer, on one line:
``Evidence: <sentences> Answer: <short answer>``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from engine.errors import InputError
from engine.rag.store import Hit

SYSTEM = "Answer the question from the sources with a short answer of a few words, not a sentence."
EVIDENCE_SYSTEM = (
    "Quote the sentences of the sources that answer the question, then give a short answer of a few words."
)
ANSWER_STYLES = ("short", "evidence")
ANSWER_TOKENS = {"short": 32, "evidence": 256}  # new tokens an answer of each style needs
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
    answer_style: str = "short"

    def __post_init__(self) -> None:
        if self.answer_style not in ANSWER_STYLES:
            raise InputError(f"Unknown answer style {self.answer_style!r}: choose {' or '.join(ANSWER_STYLES)}.")

    @property
    def evidence(self) -> bool:
        return self.answer_style == "evidence"

    def messages(self, question: str, hits: Sequence[Hit] | None) -> list[dict[str, str]]:
        closed = hits is None
        system = self.closed_book_system if closed else EVIDENCE_SYSTEM if self.evidence else self.system
        messages = [{"role": "system", "content": system}]
        for sources, q, a in self.examples:
            messages.append({"role": "user", "content": turn(q, None if closed else sources)})
            quoted = example_evidence(sources, a) if self.evidence and not closed else ()
            messages.append({"role": "assistant", "content": reply(a, quoted) if quoted else a})
        sources = None if closed else format_sources(hits, self.max_source_chars)
        messages.append({"role": "user", "content": turn(question.strip(), sources)})
        return messages

    def reply(self, answer: str, evidence: Sequence[str] = ()) -> str:
        """What the model is taught to write for ``answer`` in this template's style."""
        return reply(answer, evidence) if self.evidence else answer

    def answer_from(self, raw: str) -> str:
        """The short answer in the model's output (see :func:`clean_answer`)."""
        return clean_answer(raw, self.answer_style)

    @property
    def max_new_tokens(self) -> int:
        return ANSWER_TOKENS[self.answer_style]


def reply(answer: str, evidence: Sequence[str]) -> str:
    """An evidence-style reply on one line (a newline ends generation): the quoted sentences, then the
    answer; with no sentence to quote, the answer alone after ``Answer:``."""
    quoted = " ".join(" ".join(s.split()) for s in evidence if s.strip())
    return f"Evidence: {quoted} Answer: {answer}" if quoted else f"Answer: {answer}"


def example_evidence(sources: str, answer: str) -> tuple[str, ...]:
    """The sentences of a worked example's sources that hold its answer (all of them for yes/no)."""
    texts = [line.split(": ", 1)[-1] for line in sources.splitlines()]
    if answer.lower() in ("yes", "no"):
        return tuple(texts)
    return tuple(t for t in texts if answer.lower() in t.lower())


def turn(question: str, sources: str | None) -> str:
    return f"Question: {question}" if sources is None else f"Sources:\n{sources}\n\nQuestion: {question}"


def format_sources(hits: Sequence[Hit], max_chars: int) -> str:
    return "\n".join(f"[{n}] {h.title}: {h.text[:max_chars].strip()}" for n, h in enumerate(hits, start=1))


ANSWER_PREFIX = re.compile(r"^\s*(the answer is|short answer|final answer|answer)\b\s*[:\-]?\s*", re.IGNORECASE)
CITATION = re.compile(r"\s*\[(\d+)\]")
EVIDENCE_ANSWER = re.compile(r"\banswer\s*:", re.IGNORECASE)


def clean_answer(text: str, style: str = "short") -> str:
    """The short answer from the model's output: first line, no 'Answer:' prefix, no [n] markers.

    In the evidence style the answer is what follows the last ``Answer:``; an output that quotes
    evidence but never reaches an answer (cut off by the token limit) has none.
    """
    if style == "evidence":
        found = list(EVIDENCE_ANSWER.finditer(text))
        if found:
            text = text[found[-1].end() :]
        elif text.lstrip().lower().startswith("evidence"):
            return ""
    line = next((part for part in text.strip().splitlines() if part.strip()), "")
    line = ANSWER_PREFIX.sub("", line)
    line = CITATION.sub("", line).strip().strip('"').strip()
    return line.rstrip(".").strip()


def cited_numbers(text: str) -> list[int]:
    """The source numbers the model cited as [n], in order, without repeats."""
    return list(dict.fromkeys(int(n) for n in CITATION.findall(text)))
