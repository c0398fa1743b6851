"""The question-writing prompt, and the candidates it is asked for: answer spans of passages.

The model sees the sentence that holds the answer span (with the passage title), not the whole
passage, and the question's first words are given by the span's kind ("In what year" for a
year, "On what date" for a date, "How many" for a number). On 100 candidates of the shared
passages this took the share that passes every filter from 3% (whole passage, free question)
to 21%: the 135M model otherwise asks "In what year" of full dates, or asks nothing at all
and restates the passage.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

from engine.data.definitions import definitions
from engine.data.filters import Candidate
from engine.data.spans import Span, description, find_spans
from engine.rag.documents import load_jsonl_records

QUESTION_SYSTEM = (
    "You write one quiz question about a passage. The given answer must answer the question, "
    "and the question must not contain the answer."
)
QUESTION_EXAMPLES = (
    (
        "The Eiffel Tower is a wrought-iron lattice tower in Paris, France. It was designed by the company of "
        "Gustave Eiffel and completed in 1889.",
        "1889",
        "In what year was the Eiffel Tower completed?",
    ),
    (
        "Abbey Road is the eleventh studio album by the English rock band the Beatles, released on 26 September "
        "1969 by Apple Records.",
        "Apple Records",
        "Which record label released the Beatles album Abbey Road?",
    ),
)


SENTENCE_END = re.compile(r"[.!?](?:\s+|$)")
UNIT = re.compile(r"\b(km|kilometres|miles|metres|feet|people|episodes)$")


def pick_spans(text: str, title: str, n: int, rng: random.Random) -> list[Span]:
    """Up to ``n`` spans, of different kinds where possible, chosen with ``rng``."""
    described = description(text, title)  # a passage that defines its subject is asked what it is first
    others = [d for d in definitions(text) if described is None or d.start != described.start]
    spans = ([described] if described else []) + others + find_spans(text, title)
    by_kind: dict[str, list[Span]] = {}
    for span in spans:  # dates and years are one kind
        by_kind.setdefault("time" if span.kind in ("date", "year") else span.kind, []).append(span)
    # One date or year per passage: they are kept three times as often as names, and a passage with a date and a
    # year made half of the kept pairs "In what year / On what date" ones. One other name: 6% of them were kept
    # on the collections tried, and they were a third of the candidates (each costs two model calls).
    for once in ("time", "name"):
        if once in by_kind:
            by_kind[once] = [by_kind[once][rng.randrange(len(by_kind[once]))]]
    chosen: list[Span] = []
    kinds = list(by_kind)
    rng.shuffle(kinds)
    # The description first; the date or year after people, places and numbers; the other name last, taken where
    # the passage has too few spans of other kinds (7% kept on the dev collection, against 33-72% of the others).
    kinds.sort(key=lambda k: {"description": 0, "time": 2, "name": 3}.get(k, 1))
    while len(chosen) < n and any(by_kind.values()):
        for kind in kinds:
            if by_kind[kind] and len(chosen) < n:
                chosen.append(by_kind[kind].pop(rng.randrange(len(by_kind[kind]))))
    return sorted(chosen, key=lambda s: s.start)


def question_stem(kind: str, answer: str) -> str:
    """The words the question starts with, chosen by the kind of the answer span ("" for names)."""
    if kind == "number":
        unit = UNIT.search(answer)
        return f"How many {unit.group(1)}" if unit else "How many"
    stems = {"year": "In what year", "date": "On what date", "person": "Who", "place": "Where", "name": "What"}
    return stems.get(kind, "")


def span_sentence(passage: str, answer: str) -> str:
    """The sentence of ``passage`` that holds (the first occurrence of) ``answer``."""
    at = max(passage.find(answer), 0)
    starts = [m.end() for m in SENTENCE_END.finditer(passage, 0, at)]
    end = SENTENCE_END.search(passage, at + len(answer))
    return passage[starts[-1] if starts else 0 : end.end() if end else len(passage)].strip()


def question_messages(title: str, passage: str, answer: str, kind: str) -> list[dict]:
    """Chat messages asking for a question whose answer is ``answer``, ending with the question's stem."""
    messages = [{"role": "system", "content": QUESTION_SYSTEM}]
    for text, a, q in QUESTION_EXAMPLES:
        messages += [{"role": "user", "content": f"Passage: {text}\nAnswer: {a}"}, {"role": "assistant", "content": q}]
    context = f"{title}: {span_sentence(passage, answer)}" if title else span_sentence(passage, answer)
    messages.append({"role": "user", "content": f"Passage: {context}\nAnswer: {answer}"})
    stem = question_stem(kind, answer)
    return messages + [{"role": "assistant", "content": stem}] if stem else messages


def clean_question(text: str, stem: str = "") -> str:
    """The question from the model's output (which continues ``stem``, when one was given)."""
    line = next((part for part in text.strip().splitlines() if part.strip()), "").strip()
    for prefix in ("Question:", "Q:"):
        line = line.removeprefix(prefix).strip()
    line = line.strip('"').strip()
    if stem and not line.startswith(stem):
        line = f"{stem}{'' if line[:1] in ',?' else ' '}{line}"
    return line


def load_passages(path: Path) -> list[dict]:
    return load_jsonl_records(path, required=("text",))


def passage_id(passage: dict, n: int) -> str:
    return str(passage.get("id") or f"passage-{n}")


HEADING = re.compile(r"^\s*#{1,6}\s.*$", re.MULTILINE)


def without_headings(text: str) -> str:
    """A chunk's text without its Markdown heading lines (the title, which chunks of a Markdown file start
    with): they are not sentences, and would run into the first one."""
    return HEADING.sub("", text).strip()


def make_candidates(passages: list[dict], sample: int, per_passage: int, seed: int) -> list[Candidate]:
    """Answer spans of the first ``sample`` passages (0: all) in an order shuffled with ``seed``."""
    ids = {id(p): passage_id(p, n) for n, p in enumerate(passages)}
    order = list(passages)
    random.Random(seed).shuffle(order)  # a fixed order, so a larger sample extends a smaller one
    chosen = order if not sample else order[:sample]
    out = []
    for p in chosen:
        pid, title, text = ids[id(p)], str(p.get("title") or ""), without_headings(p["text"])
        for span in pick_spans(text, title, per_passage, random.Random(f"{seed}:{pid}")):
            # a sentence and a name may start at the same place
            key = f"{pid}:{'d' if span.kind == 'description' else ''}{span.start}"
            out.append(Candidate(key=key, passage_id=pid, title=title, passage=text, answer=span.text, kind=span.kind))
    return out
