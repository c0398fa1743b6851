"""Training examples for LoRA fine-tuning: the fixed HotpotQA split, grounded and Dolly examples,
weighted mixing, and tokenization with the loss on the answer only."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import random
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from engine.errors import InputError
from engine.evaluation.hotpotqa import QAItem, load_hotpotqa
from engine.rag.documents import load_jsonl_records
from engine.rag.prompt import EXAMPLES, PromptTemplate
from engine.rag.store import Hit
from engine.settings import Settings

log = logging.getLogger(__name__)

SPLIT_SIZES = {"train": 600, "validation": 100, "test": 300}
SPLIT_SEED = 13
SPLIT_FILE = "hotpotqa-dev.json"
DOLLY_SYSTEM = "Answer the instruction. Use the context when there is one."
IGNORE = -100  # the label the loss skips (PyTorch's cross-entropy ignore_index)
MIN_MAX_LENGTH = 8


@dataclass(frozen=True)
class Example:
    """Chat messages up to the user's last turn (without the answer), the answer, and where it came from."""

    messages: tuple[dict, ...]
    answer: str
    source: str
    id: str


def hotpotqa_split(path: str | Path, settings: Settings) -> dict[str, list[str]]:
    """Question ids per split (train, validation, test), made once and then read from the data dir.

    The split is the evaluation protocol: once stored it is never recomputed, and using it with a
    different HotpotQA file is an InputError.
    """
    path = Path(path)
    target = settings.data_dir / "splits" / SPLIT_FILE
    if not path.is_file():
        raise InputError(f"{path} does not exist." if not path.exists() else f"{path} is not a file.")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if target.is_file():
        try:
            stored = json.loads(target.read_text(encoding="utf-8"))
            splits = stored["splits"]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise InputError(f"The HotpotQA split {target} is not readable ({e}): delete it to make it again.") from e
        if stored.get("sha256") != digest:
            raise InputError(
                f"The HotpotQA split {target} was made from a different file ({stored.get('source')}, sha256 "
                f"{str(stored.get('sha256'))[:12]}) than {path} (sha256 {digest[:12]}): use that file, or "
                "delete the split to make a new one (earlier results are then not comparable)."
            )
        return splits
    ids = sorted(item.id for item in load_hotpotqa(path))
    need = sum(SPLIT_SIZES.values())
    if len(ids) < need:
        raise InputError(f"{path} has {len(ids)} questions; the HotpotQA split needs at least {need}.")
    if len(set(ids)) != len(ids):
        raise InputError(f"{path} has repeated question ids: the split needs unique ids.")
    random.Random(SPLIT_SEED).shuffle(ids)
    splits, start = {}, 0
    for name, size in SPLIT_SIZES.items():
        splits[name], start = ids[start : start + size], start + size
    write_json(target, {"source": path.name, "sha256": digest, "sizes": SPLIT_SIZES, "splits": splits})
    return splits


def write_json(target: Path, data: dict) -> None:
    # Two processes (the app and a job) may make the split at once: write a temp file, rename it over.
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1)
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def split_items(path: str | Path, settings: Settings, split: str) -> list[QAItem]:
    """The questions of one split of the HotpotQA file, in split order."""
    if split not in SPLIT_SIZES:
        raise InputError(f"Unknown split {split!r}: use one of {', '.join(SPLIT_SIZES)}.")
    ids = hotpotqa_split(path, settings)[split]
    by_id = {item.id: item for item in load_hotpotqa(path)}
    return [by_id[i] for i in ids]


@dataclass(frozen=True)
class RagExampleSpec:
    """How grounded examples are built: gold paragraphs plus ``distractors`` other ones of the question."""

    distractors: int = 2
    max_source_chars: int = 600
    seed: int = 0
    few_shot: bool = False  # the three worked examples of the prompt; off, training teaches the format

    def __post_init__(self) -> None:
        if self.distractors < 0:
            raise InputError("distractors must be 0 or more.")
        if self.max_source_chars < 1:
            raise InputError("max_source_chars must be at least 1.")


def without_gold(items: Sequence[QAItem]) -> list[str]:
    """The ids of the items whose supporting paragraphs are missing: :func:`rag_examples` skips them."""
    return [item.id for item in items if not any(t in item.supporting_titles for t, _ in item.paragraphs)]


def rag_examples(items: Sequence[QAItem], spec: RagExampleSpec = RagExampleSpec()) -> list[Example]:
    """Grounded examples: each question with its gold paragraphs and distractors as numbered sources.

    Items without a gold paragraph are skipped (a warning is logged; :func:`without_gold` lists them).
    """
    template = PromptTemplate(max_source_chars=spec.max_source_chars, examples=EXAMPLES if spec.few_shot else ())
    examples = []
    for item in items:
        gold = [p for p in item.paragraphs if p[0] in item.supporting_titles]
        if not gold:
            continue
        others = [p for p in item.paragraphs if p[0] not in item.supporting_titles]
        # Seeded by the item as well, so an item gets the same sources whatever the order or subset.
        rng = random.Random(f"{spec.seed}:{item.id}")
        chosen = gold + rng.sample(others, min(spec.distractors, len(others)))
        rng.shuffle(chosen)
        hits = [Hit(f"{item.id}:{n}", title, text, "hotpotqa", 0.0) for n, (title, text) in enumerate(chosen)]
        examples.append(Example(tuple(template.messages(item.question, hits)), item.answer, "hotpotqa", item.id))
    if skipped := len(items) - len(examples):
        log.warning("Skipped %d of %d HotpotQA items without a gold paragraph.", skipped, len(items))
    return examples


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
        examples.append(Example(messages, r["response"].strip(), "dolly", f"dolly-{n}"))
    return examples


@dataclass(frozen=True)
class MixSpec:
    """Which pools to train on and in what proportion; ``total=None``: as many as the pools allow."""

    sources: tuple[tuple[str, float], ...] = (("hotpotqa", 1.0),)
    total: int | None = None
    seed: int = 0

    @classmethod
    def with_dolly(cls, share: float, seed: int = 0) -> MixSpec:
        """HotpotQA examples with a ``share`` (0..1) of Dolly instruction examples mixed in."""
        if not 0 <= share <= 1:
            raise InputError("The Dolly share is between 0 and 1.")
        return cls((("hotpotqa", 1 - share), ("dolly", share)) if share else (("hotpotqa", 1.0),), seed=seed)


@dataclass(frozen=True)
class MixReport:
    """How many examples each pool gave, and notes on pools too small for their share."""

    counts: dict[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def mix(pools: dict[str, list[Example]], spec: MixSpec = MixSpec()) -> tuple[list[Example], MixReport]:
    """Draw from the pools in proportion to their weights, never repeating an example; shuffled with the seed.

    Without a total, the largest one at which no pool runs out is used, so the ratios hold. With a
    total, a pool too small for its share gives all it has (a note in the report; others are not topped up).
    """
    names = [name for name, _ in spec.sources]
    if unknown := [n for n in names if n not in pools]:
        raise InputError(f"Unknown pool {', '.join(unknown)}: use {', '.join(pools) or 'none (no pools)'}.")
    if len(set(names)) != len(names):
        raise InputError("Each pool may appear only once in the mix.")
    if any(w < 0 for _, w in spec.sources):
        raise InputError("Mix weights must be 0 or more.")
    if spec.total is not None and spec.total < 1:
        raise InputError("The total number of examples must be at least 1.")
    weights = {n: float(w) for n, w in spec.sources if w > 0}
    if not weights:
        raise InputError("All mix weights are zero: give at least one pool a positive weight.")
    # Repeated ids (within or across pools) count once, so no example can be drawn twice.
    seen: set[str] = set()
    unique: dict[str, list[Example]] = {}
    for name in weights:
        unique[name] = [e for e in {e.id: e for e in pools[name]}.values() if e.id not in seen]
        seen.update(e.id for e in unique[name])
    if not any(unique.values()):
        raise InputError("The training set is empty.")
    if empty := [n for n, pool in unique.items() if not pool]:
        raise InputError(f"Pool {', '.join(empty)} has no examples: give it weight 0 or add examples.")
    scale = sum(weights.values())
    shares = {n: w / scale for n, w in weights.items()}
    union = sum(len(p) for p in unique.values())
    total = spec.total or min(union, int(min(len(unique[n]) / s for n, s in shares.items()) + 1e-9))
    counts, notes = apportion(total, shares), []
    for name, want in counts.items():
        if want > len(unique[name]):
            notes.append(f"{name} has only {len(unique[name])} of the {want} examples its weight asks for: took all.")
            counts[name] = len(unique[name])
    chosen = [e for n, k in counts.items() for e in random.Random(f"{spec.seed}:{n}").sample(unique[n], k)]
    if notes:
        notes.append(f"{len(chosen)} examples in all instead of {total}.")
    random.Random(spec.seed).shuffle(chosen)
    return chosen, MixReport(counts, tuple(notes))


def apportion(total: int, shares: dict[str, float]) -> dict[str, int]:
    """Whole counts summing to ``total`` in proportion to ``shares`` (largest remainders get the rest)."""
    exact = {n: total * s for n, s in shares.items()}
    counts = {n: int(x) for n, x in exact.items()}
    for name in sorted(exact, key=lambda n: counts[n] - exact[n])[: total - sum(counts.values())]:
        counts[name] += 1
    return counts


def end_token_id(tokenizer) -> int:
    """The token that ends an assistant turn: ``<|im_end|>`` for ChatML templates, else the EOS token."""
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    if isinstance(im_end, int) and im_end != tokenizer.unk_token_id:
        return im_end
    if tokenizer.eos_token_id is None:
        raise InputError("The tokenizer has no end-of-sequence token to end the answers with.")
    return tokenizer.eos_token_id


def drop_too_long(examples: Sequence[Example], tokenizer, render: Callable[[list], str], max_length: int):
    """The examples whose prompt leaves room for an answer within ``max_length`` tokens, and how many were not."""
    prompts = tokenizer([render(list(e.messages)) for e in examples], add_special_tokens=False).input_ids
    kept = [e for e, p in zip(examples, prompts, strict=True) if len(p) < max_length]
    return kept, len(examples) - len(kept)


def tokenize(example: Example, tokenizer, render: Callable[[list], str], max_length: int) -> dict:
    """Input ids, attention mask and labels (-100 on the prompt, so the loss is on the answer only)."""
    return tokenize_all([example], tokenizer, render, max_length)[0]


def tokenize_all(examples: Sequence[Example], tokenizer, render: Callable[[list], str], max_length: int) -> list[dict]:
    """:func:`tokenize` for many examples; an InputError if any prompt leaves no room for its answer."""
    if max_length < MIN_MAX_LENGTH:
        raise InputError(f"The max length must be at least {MIN_MAX_LENGTH} tokens.")
    if not examples:
        raise InputError("The dataset is empty.")
    end = end_token_id(tokenizer)
    prompts = tokenizer([render(list(e.messages)) for e in examples], add_special_tokens=False).input_ids
    answers = tokenizer([e.answer for e in examples], add_special_tokens=False).input_ids
    if too_long := [len(p) for p in prompts if len(p) >= max_length]:
        raise InputError(
            f"max length {max_length} is below the prompt length of {len(too_long)} of {len(examples)} examples "
            f"(longest prompt {max(too_long)} tokens): raise the max length to at least {max(too_long) + 1} "
            "or shorten the sources."
        )
    rows = []
    for prompt, answer in zip(prompts, answers, strict=True):
        ids = (prompt + answer + [end])[:max_length]
        labels = [IGNORE] * len(prompt) + ids[len(prompt) :]
        rows.append({"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels})
    return rows


class Collator:
    """Pads a batch to its longest row (on the right): pad token ids, attention 0, labels -100."""

    def __init__(self, tokenizer, pad_to_multiple_of: int | None = None, answer_logits_only: bool = False):
        # Padding positions are masked out of attention and loss, so EOS serves when there is no pad token.
        self.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.pad_to_multiple_of = pad_to_multiple_of
        self.answer_logits_only = answer_logits_only
        if self.pad_token_id is None:
            raise InputError("The tokenizer has neither a padding nor an end-of-sequence token.")
        if pad_to_multiple_of is not None and pad_to_multiple_of < 1:
            raise InputError("pad_to_multiple_of must be at least 1.")

    def __call__(self, features: Sequence[dict]) -> dict:
        import torch

        length = max(len(f["input_ids"]) for f in features)
        if self.pad_to_multiple_of:
            length = -(-length // self.pad_to_multiple_of) * self.pad_to_multiple_of
        batch: dict[str, list] = {"input_ids": [], "attention_mask": [], "labels": []}
        for f in features:
            ids = list(f["input_ids"])
            gap = length - len(ids)
            batch["input_ids"].append(ids + [self.pad_token_id] * gap)
            batch["attention_mask"].append(list(f.get("attention_mask", [1] * len(ids))) + [0] * gap)
            batch["labels"].append(list(f.get("labels", ids)) + [IGNORE] * gap)
        out = {k: torch.tensor(v, dtype=torch.long) for k, v in batch.items()}
        if self.answer_logits_only:
            out |= answer_positions(out["labels"])
        return out


def answer_positions(labels) -> dict:
    """``logits_to_keep`` and ``shift_labels`` so the model projects onto the vocabulary only
    where the loss looks: the positions that predict an answer token.

    The LM head of a small model is a large share of its compute (SmolLM2-135M: 28M of 135M
    weights, applied to every position), and its float32 logits over a 49k vocabulary are
    most of the training memory. Only the few answer positions have a loss, so the loss is
    the same while the head costs a few positions instead of the whole prompt.
    """
    import torch

    nxt = torch.nn.functional.pad(labels[:, 1:], (0, 1), value=IGNORE)  # position p predicts token p + 1
    keep = nxt != IGNORE
    return {"logits_to_keep": keep, "shift_labels": nxt[keep]}
