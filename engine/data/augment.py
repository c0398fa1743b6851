"""Augmentation: new QA records derived from existing ones (paraphrases, distractors, shuffles, typos).

Every derived record has its own content-hash id and keeps its origin's metadata (so it stays in
its origin's split and topic), plus ``origin`` (the origin's id) and ``augmentation`` (the kind).
Answers are never changed. Random choices are seeded per (seed, kind, record), so a record's
variants do not depend on which other records are augmented with it.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from engine.errors import InputError
from engine.models.generation import SamplingSpec
from engine.qa.schema import Context, QARecord

KINDS = ("paraphrase", "distractors", "shuffle", "typos")
Retrieve = Callable[[str, int], Sequence[Context]]  # (question, k) -> passages, most similar first

PARAPHRASE_INSTRUCTION = (
    "Rewrite the user's question in different words. Keep its meaning and every name in it. "
    "Reply with the rewritten question only."
)
PARAPHRASE_EXAMPLE = ("Who wrote the novel Dracula?", "Which author wrote Dracula?")
_WORD = re.compile(r"[^\W\d_]+")
_PUNCTUATION = re.compile(r"[^\w\s]|_")
_PREFIX = re.compile(r"^(?:rewritten(?: question)?|question|new question|paraphrase)\s*:\s*", re.IGNORECASE)


@dataclass(frozen=True)
class AugmentSpec:
    kinds: tuple[str, ...] = KINDS
    distractors: int = 2  # passages added per record
    typo_rate: float = 0.03  # chance of a typo per letter (at most one per word)
    seed: int = 0
    max_new_tokens: int = 48  # for a paraphrase

    def __post_init__(self) -> None:
        kinds = (self.kinds,) if isinstance(self.kinds, str) else tuple(self.kinds)
        object.__setattr__(self, "kinds", kinds)
        if not kinds or any(k not in KINDS for k in kinds) or len(set(kinds)) != len(kinds):
            raise InputError(f"Choose different kinds among {', '.join(KINDS)}; got {', '.join(kinds) or 'none'}.")
        if not isinstance(self.distractors, int) or not 1 <= self.distractors <= 20:
            raise InputError(f"The number of distractors must be from 1 to 20, not {self.distractors!r}.")
        if not isinstance(self.typo_rate, int | float) or not 0 < self.typo_rate <= 0.5:
            raise InputError(f"The typo rate must be above 0 and at most 0.5, not {self.typo_rate!r}.")
        if not isinstance(self.seed, int):
            raise InputError(f"The seed must be a whole number, not {self.seed!r}.")
        if not isinstance(self.max_new_tokens, int) or not 8 <= self.max_new_tokens <= 512:
            raise InputError(f"max_new_tokens must be a whole number from 8 to 512, not {self.max_new_tokens!r}.")


def normalize_text(text: str) -> str:
    """Lower case, punctuation (any script's) as spaces, single spaces: for telling texts apart."""
    return " ".join(_PUNCTUATION.sub(" ", text.lower()).split())


def derive(origin: QARecord, kind: str, question: str | None = None, contexts=None, **metadata) -> QARecord | None:
    """A variant of ``origin`` with its own id, linked to it; None if the variant is the origin itself."""
    variant = QARecord(
        question=origin.question if question is None else question,
        answer=origin.answer,
        contexts=origin.contexts if contexts is None else tuple(contexts),
        doc_ids=origin.doc_ids,
        metadata={**origin.metadata, **metadata, "origin": origin.id, "augmentation": kind},
    )
    return None if variant.id == origin.id else variant


def _rng(seed: int, kind: str, record: QARecord) -> random.Random:
    return random.Random(f"{seed}\x00{kind}\x00{record.id}")  # str seeds are hashed stably (not hash())


def paraphrase_messages(question: str) -> list[dict[str, str]]:
    """The instruction, one worked example, then the question."""
    contents = (PARAPHRASE_INSTRUCTION, *PARAPHRASE_EXAMPLE, question)
    return [{"role": r, "content": c} for r, c in zip(("system", "user", "assistant", "user"), contents, strict=True)]


def clean_paraphrase(text: str) -> str:
    """The first line of a model's reply, without quotes or a leading label."""
    line = next((s.strip() for s in text.splitlines() if s.strip()), "")
    return _PREFIX.sub("", line).strip().strip("\"'“”").strip()


def paraphrase_problem(original: str, candidate: str) -> str | None:
    """Why ``candidate`` is not a usable rewrite of ``original`` (None if it is)."""
    if not candidate:
        return "empty"
    if not candidate.endswith("?"):
        return "not_a_question"
    if normalize_text(candidate) == normalize_text(original):
        return "unchanged"
    words, original_words = len(candidate.split()), len(original.split())
    if not 0.5 * original_words <= words <= 2 * original_words:
        return "length"
    return None


def paraphrase(
    records: Sequence[QARecord], generator, max_new_tokens: int = 48, batch_size: int = 8
) -> tuple[list[QARecord], dict[str, int]]:
    """Questions rewritten by the local model; returns the valid variants and the drops by reason."""
    if not records:
        return [], {}
    sampling = SamplingSpec(max_new_tokens=max_new_tokens, stop=("\n",))
    completions = generator.generate([paraphrase_messages(r.question) for r in records], sampling, batch_size)
    made, dropped = [], Counter()
    for record, completion in zip(records, completions, strict=True):
        candidate = clean_paraphrase(completion.text)
        problem = paraphrase_problem(record.question, candidate)
        if not problem and (variant := derive(record, "paraphrase", question=candidate)):
            made.append(variant)
        else:
            dropped[problem or "unchanged"] += 1
    return made, dict(dropped)


def context_pool(records: Iterable[QARecord]) -> list[Context]:
    """The distinct contexts of the records (by title and text), in first-seen order."""
    return list({(c.title, c.text): c for r in records for c in r.contexts if c.text.strip()}.values())


def _excluder(record: QARecord) -> Callable[[Context], bool]:
    """Whether a passage is not a distractor for ``record``: it shares a passage's text, title or
    document with it, or states its answer (so may support it; yes/no answers aside)."""
    texts = {normalize_text(c.text) for c in record.contexts}
    titles = {c.title for c in record.contexts if c.title}
    doc_ids = {c.doc_id for c in record.contexts if c.doc_id} | set(record.doc_ids)
    answer = normalize_text(record.answer)

    def excludes(candidate: Context) -> bool:
        text = normalize_text(candidate.text)
        if not text or text in texts or candidate.title in titles or candidate.doc_id in doc_ids:
            return True
        return answer not in ("", "yes", "no") and f" {answer} " in f" {text} "

    return excludes


def inject_distractors(
    records: Sequence[QARecord], source: Sequence[Context] | Retrieve, n: int = 2, seed: int = 0
) -> list[QARecord]:
    """Records with up to ``n`` non-gold passages shuffled into their contexts, taken from ``source``:
    a ``retrieve(question, k)`` callable (the most similar first) or a pool of passages (at random).
    A record for which no passage qualifies is skipped."""
    if n < 1:
        raise InputError("Add at least one distractor.")
    retrieve = source if callable(source) else None
    pool = [] if retrieve else list(source)
    made = []
    for record in records:
        rng = _rng(seed, "distractors", record)
        if retrieve:
            candidates = list(retrieve(record.question, n + len(record.contexts) + 5))
        else:
            candidates = [pool[i] for i in rng.sample(range(len(pool)), min(len(pool), max(200, 50 * n)))]
        excludes, chosen = _excluder(record), {}
        for candidate in candidates:
            key = normalize_text(candidate.text)
            if key not in chosen and not excludes(candidate):
                chosen[key] = candidate
            if len(chosen) == n:
                break
        if not chosen:
            continue
        contexts = list(record.contexts) + list(chosen.values())
        rng.shuffle(contexts)
        if variant := derive(record, "distractors", contexts=contexts, distractors=len(chosen)):
            made.append(variant)
    return made


def shuffle_contexts(records: Sequence[QARecord], seed: int = 0) -> list[QARecord]:
    """Records with their contexts in another order (records with fewer than 2 contexts are skipped)."""
    made = []
    for record in records:
        n = len(record.contexts)
        if n < 2:
            continue
        order = list(range(n))
        _rng(seed, "shuffle", record).shuffle(order)
        if order == sorted(order):
            order = order[1:] + order[:1]  # never the original order
        if variant := derive(record, "shuffle", contexts=[record.contexts[i] for i in order]):
            made.append(variant)
    return made


def _typo(word: str, rng: random.Random) -> str:
    """One swap, drop or duplication of an inner letter (the first letter stays)."""
    i = rng.randrange(1, len(word) - 1)
    op = rng.choice(("swap", "drop", "duplicate"))
    if op == "swap" and word[i] != word[i + 1]:
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if op == "duplicate":
        return word[:i] + word[i] + word[i:]
    return word[:i] + word[i + 1 :]


def add_typos(text: str, rate: float, rng: random.Random, protected: Iterable[str] = ()) -> str:
    """``text`` with typos in words of 4+ letters not in ``protected`` (lower case): one in a word of ``L``
    letters with probability ``1 - (1 - rate) ** L``, and at least one in all if any word qualifies."""
    protected = set(protected)
    words = [m for m in _WORD.finditer(text) if len(m.group()) > 3 and m.group().lower() not in protected]
    if not words:
        return text
    chosen = [m for m in words if rng.random() < 1 - (1 - rate) ** len(m.group())] or [rng.choice(words)]
    pieces, last = [], 0
    for m in chosen:
        pieces += [text[last : m.start()], _typo(m.group(), rng)]
        last = m.end()
    return "".join(pieces) + text[last:]


def typo_noise(records: Sequence[QARecord], rate: float = 0.03, seed: int = 0) -> list[QARecord]:
    """Records whose question has typos; the answer, and the answer's words in the question, stay intact."""
    made = []
    for record in records:
        protected = {w.lower() for w in _WORD.findall(record.answer)}
        question = add_typos(record.question, rate, _rng(seed, "typos", record), protected)
        if variant := derive(record, "typos", question=question):
            made.append(variant)
    return made


def augment(
    records: Sequence[QARecord],
    spec: AugmentSpec = AugmentSpec(),
    generator=None,
    retrieve: Retrieve | None = None,
    pool: Sequence[Context] | None = None,
) -> tuple[list[QARecord], dict]:
    """The new records of every kind in ``spec``, and a report: counts made and skipped per kind,
    paraphrases dropped by reason, and the total. Distractors come from ``retrieve`` if given,
    else ``pool``, else the records' own contexts."""
    records = list(records)
    if "paraphrase" in spec.kinds and generator is None:
        raise InputError("Paraphrasing needs the local model: load one, or leave 'paraphrase' out of the kinds.")
    report: dict = {"origins": len(records), "made": {}, "skipped": {}, "dropped": {}, "total": 0}
    seen = {r.id for r in records}
    made: list[QARecord] = []
    for kind in spec.kinds:
        if kind == "paraphrase":
            out, report["dropped"] = paraphrase(records, generator, spec.max_new_tokens)
        elif kind == "distractors":
            out = inject_distractors(records, retrieve or pool or context_pool(records), spec.distractors, spec.seed)
        elif kind == "shuffle":
            out = shuffle_contexts(records, spec.seed)
        else:
            out = typo_noise(records, spec.typo_rate, spec.seed)
        fresh = [r for r in out if r.id not in seen]
        seen.update(r.id for r in fresh)
        made += fresh
        report["made"][kind] = len(fresh)
        report["skipped"][kind] = len(records) - len(fresh)
    report["total"] = len(made)
    return made, report


HELD_OUT = ("validation", "test")  # splits whose records are never trained on, nor varied into training
Nearest = Callable[[str, Sequence[QARecord], int], Sequence[QARecord]]  # (question, training records, n)


def word_overlap_nearest(question: str, candidates: Sequence[QARecord], n: int) -> list[QARecord]:
    """The ``n`` candidates whose questions share the most words with ``question`` (Jaccard; ties: order)."""
    words = set(normalize_text(question).split())

    def overlap(r: QARecord) -> float:
        other = set(normalize_text(r.question).split())
        return len(words & other) / max(1, len(words | other))

    return sorted(candidates, key=overlap, reverse=True)[:n]


def hard_cases(
    rows: Sequence[dict],
    records: Sequence[QARecord],
    threshold: float = 50.0,
    spec: AugmentSpec = AugmentSpec(),
    generator=None,
    retrieve: Retrieve | None = None,
    pool: Sequence[Context] | None = None,
    nearest: Nearest | None = None,
    per_miss: int = 2,
) -> tuple[list[QARecord], dict]:
    """Variants of the records an evaluation got wrong (row ``f1`` under ``threshold``, on 0-100).

    A row matches a record by ``id``, else by its normalized question. A missed record of the training
    split (or of a version that is not split) is varied itself. A missed validation or test record never
    is (a variant keeps its origin's split, and a test item must not leak into training): the
    ``per_miss`` training records ``nearest`` to it (by question words unless given) are varied instead,
    so the test's misses become training items about what was missed. In a split version, a missed
    question that is not one of its records (people's questions, evaluated as a set of their own) is
    held out the same way. Variants are marked ``hard_case`` with the miss's ``origin_f1`` (and
    ``for_miss``, the held-out miss's id); distractors default to all ``records``' contexts. Rows
    without an F1 (questions without a gold answer) are not misses.
    """
    if not 0 < threshold <= 100:
        raise InputError(f"The F1 threshold is on a 0-100 scale; {threshold} is out of range.")
    if not isinstance(per_miss, int) or not 1 <= per_miss <= 20:
        raise InputError(f"Training records per held-out miss must be from 1 to 20, not {per_miss!r}.")
    by_id = {r.id: r for r in records}
    by_question = {normalize_text(r.question): r for r in reversed(records)}  # the first record wins
    wrong, matched, unmatched = 0, {}, []
    for number, row in enumerate(rows, start=1):
        if "f1" in row and (row["f1"] is None or row["f1"] != row["f1"]):
            continue  # a question without a gold answer has no F1 (None, or NaN from a table): not wrong
        try:
            f1 = float(row["f1"])
        except (KeyError, TypeError, ValueError):
            raise InputError(f"Row {number} of the evaluation results has no numeric 'f1' score.") from None
        if not f1 < threshold:
            continue
        wrong += 1
        record = by_id.get(str(row.get("id", ""))) or by_question.get(normalize_text(str(row.get("question", ""))))
        if record is not None:
            matched.setdefault(record.id, (record, f1))
        elif str(row.get("question", "")).strip():
            unmatched.append((str(row["question"]), f1, str(row.get("id", ""))))
    origins = {i: (r, f1, "") for i, (r, f1) in matched.items() if r.metadata.get("split") not in HELD_OUT}
    held = [(r.question, f1, r.id) for r, f1 in matched.values() if r.metadata.get("split") in HELD_OUT]
    training = [r for r in records if r.metadata.get("split") == "train"]
    external = unmatched if training else []  # only a split version can say what is safe to train on
    for question, f1, miss in sorted(held + external, key=lambda m: m[1]):  # the worst misses pick first
        for near in (nearest or word_overlap_nearest)(question, training, per_miss):
            origins.setdefault(near.id, (near, f1, miss))
    pool = context_pool(records) if retrieve is None and pool is None else pool
    variants, report = augment([r for r, _, _ in origins.values()], spec, generator, retrieve, pool)
    variants = [mark_hard(v, *origins[v.metadata["origin"]][1:]) for v in variants]
    counts = {
        "rows": len(rows),
        "wrong": wrong,
        "matched": len(matched),
        "held_out": len(held),
        "external": len(external),
        "neighbours": sum(1 for _, _, miss in origins.values() if miss),
        "variants": len(variants),
    }
    return variants, counts | report


def mark_hard(variant: QARecord, f1: float, miss: str) -> QARecord:
    return variant.with_metadata(hard_case=True, origin_f1=f1, **({"for_miss": miss} if miss else {}))
