"""Instruction following on Dolly records (e.g. ``closed_qa``): the forgetting check.

An adapter trained to answer HotpotQA briefly must not get worse at the instructions it
never saw. Each record's instruction and context are asked with the Dolly prompt used in
training mixes, and the answer is scored against the reference response with the official
SQuAD token F1.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.errors import InputError
from engine.evaluation.metrics import exact_match, f1
from engine.evaluation.qa_sets import resolve_data
from engine.evaluation.runner import EvalResult
from engine.models.generation import SamplingSpec
from engine.rag.documents import load_jsonl_records

DOLLY_SYSTEM = "Answer the instruction. Use the context when there is one."


@dataclass(frozen=True)
class Example:
    """Chat messages up to the user's last turn (without the answer), the answer, and where it came from."""

    messages: tuple[dict, ...]
    answer: str
    source: str
    id: str
    complete: bool = True  # False: the answer was cut off, so no end-of-turn token is learned after it


def dolly_examples(
    path: str | Path, categories: tuple[str, ...] = (), exclude_ids: Sequence[str] = ()
) -> list[Example]:
    """Dolly instructions as examples; ids are ``dolly-<n>`` with n the record's 0-based position in the file."""
    records = load_jsonl_records(path, required=("instruction", "response"))
    known = {str(r.get("category", "")) for r in records}
    if unknown := [c for c in categories if c not in known]:
        raise InputError(f"{Path(path).name} has no category {', '.join(unknown)}: use {', '.join(sorted(known))}.")
    excluded, examples = set(exclude_ids), []
    for n, r in enumerate(records):
        if (categories and r.get("category") not in categories) or f"dolly-{n}" in excluded:
            continue
        context = str(r.get("context") or "").strip()
        user = r["instruction"].strip() + (f"\n\nContext:\n{context}" if context else "")
        messages = ({"role": "system", "content": DOLLY_SYSTEM}, {"role": "user", "content": user})
        examples.append(Example(messages=messages, answer=r["response"].strip(), source="dolly", id=f"dolly-{n}"))
    return examples


@dataclass(frozen=True)
class InstructionSpec:
    data: str = "dolly-15k-mini.jsonl"
    category: str = "closed_qa"
    limit: int | None = None
    max_new_tokens: int = 96
    batch_size: int = 16

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise InputError("--limit must be at least 1.")
        if self.max_new_tokens < 1 or self.batch_size < 1:
            raise InputError("max new tokens and batch size must be at least 1.")


def run_instructions(spec: InstructionSpec, generator, settings):
    """Answer the category's records with ``generator`` (greedy) and score them: an EvalResult."""
    examples = dolly_examples(resolve_data(spec.data, settings), categories=(spec.category,))[: spec.limit]
    if not examples:
        raise InputError(f"No {spec.category} records in {spec.data}.")
    start = time.perf_counter()
    sampling = SamplingSpec(max_new_tokens=spec.max_new_tokens)
    completions = generator.generate([list(e.messages) for e in examples], sampling, spec.batch_size)
    seconds = time.perf_counter() - start
    rows = [
        {
            "id": e.id,
            "prediction": c.text.strip(),
            "reference": e.answer,
            "f1": 100 * f1(c.text, e.answer),
            "em": 100 * exact_match(c.text, e.answer),
            "new_tokens": c.new_tokens,
        }
        for e, c in zip(examples, completions, strict=True)
    ]
    metrics = {k: sum(r[k] for r in rows) / len(rows) for k in ("f1", "em", "new_tokens")}
    return EvalResult(
        spec=spec, metrics=metrics | {"records": len(rows), "seconds": seconds}, rows=rows, seconds=seconds
    )
