"""Self-distilled targets: the base model's own answers to instruction examples.

An adapter trained on HotpotQA alone learns to answer everything in a few words, and loses
on the instructions it never saw (the forgetting check on Dolly ``closed_qa``). Mixing in
Dolly examples with their human responses pulls it towards a third style, neither the
base's nor the short one. Training on what the base itself answers to those instructions
(self-distillation) asks the adapter to leave its behaviour outside the RAG prompt as it
was. The answers are greedy, cached on disk per model and prompt, so a resumed run trains on
exactly the same targets and a second run does not generate them again.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from engine.finetune.examples import Example
from engine.models.generation import SamplingSpec
from engine.settings import Settings

TARGETS = ("reference", "base")  # Dolly answers: the human responses, or the base model's own
MAX_NEW_TOKENS = 96  # as the forgetting check answers; longer answers are cut and learned without an end


@dataclass(frozen=True)
class DistillReport:
    examples: int
    generated: int  # the rest came from the cache
    cut: int  # answers that reached the token limit (learned without an end-of-turn token)
    seconds: float


def cache_file(generator, max_new_tokens: int, settings: Settings) -> Path:
    """One JSONL file per model identity (source, file, dtype, quantization) and token limit."""
    import torch

    loaded = generator.loaded
    dtype = next((p.dtype for p in loaded.model.parameters() if p.is_floating_point()), torch.float32)
    identity = {
        "source": loaded.spec.source,
        "gguf": loaded.spec.gguf_file,
        "quantization": loaded.spec.quantization,
        "dtype": str(dtype),
        "device": loaded.device,
        "max_new_tokens": max_new_tokens,
    }
    key = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    return settings.data_dir / "finetune" / "self-answers" / f"{key}.jsonl"


def read_cache(path: Path) -> dict[str, dict]:
    if not path.is_file():
        return {}
    cached = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
            cached[row["prompt"]] = row
        except (json.JSONDecodeError, KeyError, TypeError):
            continue  # a line cut by a kill mid-write: that answer is generated again
    return cached


def self_answers(
    examples: Sequence[Example],
    generator,
    settings: Settings,
    max_new_tokens: int = MAX_NEW_TOKENS,
    batch_size: int = 32,
    on_batch: Callable[[int, int], None] | None = None,
) -> tuple[list[Example], DistillReport]:
    """The examples with the base model's greedy answers in place of their own, in the same order."""
    began = time.perf_counter()
    path = cache_file(generator, max_new_tokens, settings)
    cached = read_cache(path)
    keys = [hashlib.sha256(generator.render(list(e.messages)).encode()).hexdigest()[:32] for e in examples]
    first: dict[str, int] = {}  # a prompt asked twice is answered once
    for i, key in enumerate(keys):
        if key not in cached:
            first.setdefault(key, i)
    missing = list(first.values())
    if missing:
        sampling = SamplingSpec(max_new_tokens=max_new_tokens)
        completions = generator.generate([list(examples[i].messages) for i in missing], sampling, batch_size, on_batch)
        path.parent.mkdir(parents=True, exist_ok=True)
        glued = path.is_file() and path.stat().st_size and not path.read_bytes().endswith(b"\n")
        with path.open("a", encoding="utf-8") as f:
            if glued:  # a line cut by a kill: end it, so the next one starts on its own line
                f.write("\n")
            for i, c in zip(missing, completions, strict=True):
                row = {"prompt": keys[i], "text": c.text.strip(), "complete": c.new_tokens < max_new_tokens}
                cached[keys[i]] = row
                f.write(json.dumps(row) + "\n")
    out = [
        replace(e, answer=cached[k]["text"], complete=cached[k]["complete"])
        for e, k in zip(examples, keys, strict=True)
    ]
    cut = sum(not e.complete for e in out)
    return out, DistillReport(examples=len(out), generated=len(missing), cut=cut, seconds=time.perf_counter() - began)
