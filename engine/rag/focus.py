"""Focused sources: the sentences of the retrieved chunks that answer, and sentence answers grounded in them.

The bundled 135M model reads three 600-character chunks of Markdown poorly: on the Studio's own docs
it restated the question or copied the wrong line (docs/answers.md). It does better with a few
sentences that hold the answer. So the retrieved chunks are cut into sentences (Markdown-aware: a
heading is the title of the sentences under it, a table row is one unit, a code block belongs to the
sentence that introduces it with a colon), ranked by their embedding's similarity to the question plus
the share of the question's words they contain (rarer words weigh more), and the best few become the
prompt's numbered sources. A sentence answer is then grounded: each of its sentences is replaced by the
source sentence it repeats, so that what the user reads is what the documents say.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.rag.hits import Hit
from engine.rag.prompt import FENCE, HEADING, TABLE_RULE, markdown_text
from engine.text import normalize_answer

SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\"'])")
STOP_WORDS = frozenset(
    "a an the is are was were be been do does did what which who whom how where when why of in on to for and or "
    "by with at from it its this that these those can could i my me you your be has have had there their".split()
)
ITEM = re.compile(r"^\s*([-*+]|\d+\.)\s+")
MIN_WORDS = 3  # a shorter "sentence" is a label, not a statement


@dataclass(frozen=True)
class FocusSpec:
    """How many sentences the prompt shows per answer style, and whether sentence answers are grounded."""

    short: int = 2
    sentences: int = 3
    ground: bool = True  # sentence answers as source sentences; short answers with made-up numbers replaced
    min_share: float = 0.5  # share of an answer sentence's words a source sentence must hold to replace it
    least: int = 2  # sentences a grounded answer has at least (when the sources have them)

    def count(self, style: str) -> int:
        return self.sentences if style == "sentences" else self.short


def units(text: str, title: str) -> list[tuple[str, str]]:
    """(heading, sentence) pairs of a chunk's Markdown or plain text; sentences before any heading in
    the chunk are under ``title``."""
    heading, blocks, current = title, [], []
    fenced, header, row = False, None, None  # in a code block; the table's header cells; a row not yet placed

    def close() -> None:
        nonlocal row
        if row is not None:  # a row that no rule followed: a row of a table whose header is not in the chunk
            blocks.append((heading, markdown_text("; ".join(row))))
            row = None
        if current:
            blocks.append((heading, markdown_text("\n".join(current))))
            current.clear()

    for line in text.splitlines():
        if FENCE.match(line):
            close()
            fenced = not fenced
        elif fenced:  # code: joined to the sentence that introduces it ("Start the app: make run")
            if blocks and blocks[-1][1].endswith(":") and line.strip():
                blocks[-1] = (blocks[-1][0], f"{blocks[-1][1]} {line.strip()}")
            elif line.strip():
                blocks.append((heading, markdown_text(line)))
        elif TABLE_RULE.match(line):  # the row above was the header
            header, row = row, None
        elif line.strip().startswith("|"):  # a table row is a unit of its own, its cells named by the header
            close()
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if header is None:
                row = cells
            else:
                named = (f"{h}: {c}" if h and h != c else c for h, c in zip(header, cells, strict=False))
                blocks.append((heading, markdown_text("; ".join(named))))
        else:
            if row is not None or header is not None:  # a line that is not a row ends a table
                close()
                header = None
            if HEADING.match(line) or not line.strip() or ITEM.match(line):  # a heading, blank line or list
                close()  # item ends a paragraph
            if HEADING.match(line):
                heading = markdown_text(line).rstrip(".") or title
            elif line.strip():
                current.append(line)
    close()
    return [(h, s.strip()) for h, block in blocks for s in SENTENCE_SPLIT.split(block) if s.strip()]


def stem(word: str) -> str:
    for suffix in ("ing", "es", "ed", "s"):
        if len(word) > 4 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def content_words(text: str) -> set[str]:
    return {stem(w) for w in normalize_answer(text).split() if w not in STOP_WORDS}


def rank(question: str, candidates: Sequence[tuple[str, str]], embedder) -> list[int]:
    """Indices of ``candidates`` ((heading, sentence) pairs), best answer to ``question`` first."""
    if not candidates:
        return []
    vectors = np.asarray(embedder.embed([question, *(f"{h}: {s}" for h, s in candidates)]))
    dense = vectors[1:] @ vectors[0]
    asked = content_words(question)
    words = [content_words(f"{h} {s}") for h, s in candidates]
    # A word of the question that few candidates share tells them apart; one they all share does not.
    idf = {w: math.log((len(words) + 1) / (sum(w in ws for ws in words) + 0.5)) for w in asked}
    total = sum(idf.values()) or 1.0
    lexical = np.array([sum(idf[w] for w in asked & ws) / total for ws in words])
    return [int(i) for i in np.argsort(-(dense + lexical), kind="stable")]


def candidates_of(hits: Sequence[Hit]) -> list[tuple[int, str, str]]:
    """(hit index, heading, sentence) of every statement in ``hits``."""
    return [
        (i, h, s) for i, hit in enumerate(hits) for h, s in units(hit.text, hit.title) if len(s.split()) >= MIN_WORDS
    ]


def focus(question: str, hits: Sequence[Hit], embedder, count: int) -> list[Hit]:
    """The ``count`` sentences of ``hits`` that best answer ``question``, best first, as sources titled by
    their heading (the chunk's id and source kept, so citations lead back to it)."""
    found = candidates_of(hits)
    order = rank(question, [(h, s) for _, h, s in found], embedder)[:count]
    return [
        Hit(
            id=hits[found[i][0]].id,
            title=found[i][1],
            text=found[i][2],
            source=hits[found[i][0]].source,
            score=hits[found[i][0]].score,
        )
        for i in order
    ] or list(hits)


def ground(question: str, answer: str, sources: Sequence[Hit], spec: FocusSpec = FocusSpec()) -> str:
    """``answer`` as sentences of ``sources`` (best ranked first): the first source, which answers best by
    retrieval; each source sentence the answer repeats (one that holds at least ``spec.min_share`` of the
    words an answer sentence adds to the question, the better ranked on a tie); then the next best ranked
    up to ``spec.least`` sentences; at most three, each once. What the model wrote that no source says
    is left out: the 135M model often restates the question instead of answering it."""
    if not sources:
        return answer
    asked = content_words(question)
    grounded = [sources[0].text]
    for sentence in SENTENCE_SPLIT.split(answer):
        said = content_words(sentence) - asked
        if not said:
            continue
        share, best = max((len(said & content_words(s.text)) / len(said), -n) for n, s in enumerate(sources))
        if share >= spec.min_share and sources[-best].text not in grounded:
            grounded.append(sources[-best].text)
    grounded += [s.text for s in sources if s.text not in grounded][: max(0, spec.least - len(grounded))]
    return " ".join(grounded[:3])


def numbers_found(answer: str, sources: Sequence[Hit]) -> bool:
    """Whether every number in ``answer`` (a word with a digit: a port, a size, a version) is in ``sources``."""
    held = normalize_answer(" ".join(s.text for s in sources))
    return all(word in held for word in normalize_answer(answer).split() if any(c.isdigit() for c in word))


class SentenceFocus:
    """A pipeline's focus (see the module): sentences for the prompt, answers kept to what they say."""

    def __init__(self, embedder, spec: FocusSpec = FocusSpec()):
        self.embedder, self.spec = embedder, spec

    def sources(self, question: str, hits: Sequence[Hit], style: str) -> list[Hit]:
        return focus(question, hits, self.embedder, self.spec.count(style))

    def finish(self, question: str, answer: str, shown: Sequence[Hit], style: str) -> str:
        """Sentence answers grounded (see :func:`ground`); a short answer with a number no source holds
        (the model made it up) replaced by the best source sentence; loops cut off."""
        answer = without_repeats(answer)
        if not self.spec.ground or not shown:
            return answer
        if style == "sentences":
            return ground(question, answer, shown, self.spec)
        if style == "short" and not numbers_found(answer, shown):
            return shown[0].text
        return answer


def without_repeats(answer: str) -> str:
    """``answer`` up to where greedy decoding started to loop: a word right after itself ("--all --all"),
    or three words said before."""
    words = answer.split()
    seen: set[tuple[str, ...]] = set()
    for i, word in enumerate(words):
        if (i and len(word) > 3 and word == words[i - 1]) or tuple(words[i : i + 3]) in seen:
            return " ".join(words[:i]).rstrip(",;:")
        if i + 3 <= len(words):
            seen.add(tuple(words[i : i + 3]))
    return answer
