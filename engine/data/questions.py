"""The question-writing prompt, and the candidates it is asked for: answer spans of passages."""

from __future__ import annotations

import random
from pathlib import Path

from engine.data.filters import Candidate
from engine.data.spans import pick_spans

QUESTION_SYSTEM = (
    "You write one quiz question about a passage. The given answer must answer the question, "
    "and the question must not contain the answer."
)
QUESTION_EXAMPLES = (
    ("The Eiffel Tower is a wrought-iron lattice tower in Paris, France. It was designed by the company of "
     "Gustave Eiffel and completed in 1889.", "1889", "In what year was the Eiffel Tower completed?"),
    ("Abbey Road is the eleventh studio album by the English rock band the Beatles, released on 26 September "
     "1969 by Apple Records.", "Apple Records", "Which record label released the Beatles album Abbey Road?"),
)  # fmt: skip


def question_messages(passage: str, answer: str) -> list[dict]:
    messages = [{"role": "system", "content": QUESTION_SYSTEM}]
    for text, a, q in QUESTION_EXAMPLES:
        messages += [{"role": "user", "content": f"Passage: {text}\nAnswer: {a}"}, {"role": "assistant", "content": q}]
    return messages + [{"role": "user", "content": f"Passage: {passage}\nAnswer: {answer}"}]


def clean_question(text: str) -> str:
    line = next((part for part in text.strip().splitlines() if part.strip()), "").strip()
    for prefix in ("Question:", "Q:"):
        line = line.removeprefix(prefix).strip()
    return line.strip('"').strip()


def load_passages(path: Path) -> list[dict]:
    from engine.rag.documents import load_jsonl_records

    return load_jsonl_records(path, required=("text",))


def passage_id(passage: dict, n: int) -> str:
    return str(passage.get("id") or f"passage-{n}")


def make_candidates(passages: list[dict], sample: int, per_passage: int, seed: int) -> list[Candidate]:
    """Answer spans of the first ``sample`` passages (0: all) in an order shuffled with ``seed``."""
    ids = {id(p): passage_id(p, n) for n, p in enumerate(passages)}
    order = list(passages)
    random.Random(seed).shuffle(order)  # a fixed order, so a larger sample extends a smaller one
    chosen = order if not sample else order[:sample]
    out = []
    for p in chosen:
        pid, title = ids[id(p)], str(p.get("title") or "")
        for span in pick_spans(p["text"], title, per_passage, random.Random(f"{seed}:{pid}")):
            out.append(Candidate(f"{pid}:{span.start}", pid, title, p["text"], span.text, span.kind))
    return out
