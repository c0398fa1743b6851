"""Training examples for LoRA fine-tuning: grounded (HotpotQA, generated) and Dolly examples,
and weighted mixing (tokenization is in :mod:`engine.finetune.encoding`)."""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from engine.errors import InputError, check_choice
from engine.evaluation.hotpotqa import QAItem
from engine.evaluation.instructions import Example
from engine.knobs import knob
from engine.rag.hits import Hit
from engine.rag.prompt import AUTO, EXAMPLES, TRAINED_STYLES, PromptTemplate, answer_sentences, sentences_reply
from engine.rag.styles import question_template

log = logging.getLogger(__name__)

SOURCES = ("gold", "retrieved")
SOURCES_HELP = (
    "gold + distractors: each question's gold paragraphs and N others, shuffled; retrieved: the paragraphs the "
    "evaluation's retriever ranks first, in its order (a gold one it ranks lower replaces the last other one), so "
    "training shows what evaluation and the Query page show"
)
STYLE_HELP = (
    "what the adapter learns to write. short: the answer alone. auto (by the question): the answer alone for "
    "who/when/where/which/how many questions, one to three sentences of the sources for 'What is X?', 'What does X "
    "do?', why and how questions, as the Query page asks them. sentences: for every question the sentences of the "
    "sources that hold the answer, for collections whose people answer in sentences (the guided loop picks it from "
    "their answers). evidence: first the sentences of the sources HotpotQA marks as the evidence, then the answer "
    "(about 80 more tokens per question); evaluations and the Query page read the answer after 'Answer:'. Measured "
    "on HotpotQA, evidence is much worse than short answers (test F1 23.9 against 36.1; docs/fine-tuning.md)"
)


@dataclass(frozen=True)
class RagExampleSpec:
    """How grounded examples are built from a question's own paragraphs.

    ``sources="gold"``: the gold paragraphs plus ``distractors`` other ones, shuffled.
    ``sources="retrieved"``: the ``k`` paragraphs a retriever ranks first, in its order, as the
    evaluation shows them; a gold paragraph it ranks lower takes the place of the last non-gold one.
    """

    distractors: int = knob(
        2,
        "non-gold paragraphs shown with the gold ones, shuffled, so the model learns to pick (with gold + "
        "distractors sources)",
        min=0,
        max=8,
        label="Distractor passages",
    )
    max_source_chars: int = knob(
        600,
        "each passage cut to N characters: shorter trains faster; the answer must stay in",
        min=50,
        max=4000,
        label="Source length (chars)",
    )
    seed: int = 0
    few_shot: bool = False  # the three worked examples of the prompt; off, training teaches the format
    sources: str = knob("gold", SOURCES_HELP, SOURCES, label="Training sources")
    k: int = knob(5, "passages per example with retrieved sources", min=1)
    follow_links: int = knob(
        2,
        "retrieval's second hop (retrieved sources and validation): passages whose title the first N passages "
        "mention move up, as the evaluation ranks them; 0: the embedding ranking only",
        min=0,
        max=5,
        label="Follow links from the first N sources",
    )
    # short: the answer alone; evidence: the supporting sentences quoted first; auto: each question in the
    # style its form wants (short, or sentences for "What is X?"), as the Query page asks it
    answer_style: str = knob("short", STYLE_HELP, TRAINED_STYLES, label="Answer style")

    def __post_init__(self) -> None:
        if self.distractors < 0:
            raise InputError("distractors must be 0 or more.")
        if self.max_source_chars < 1:
            raise InputError("max_source_chars must be at least 1.")
        check_choice(self.sources, SOURCES, "training sources")
        if self.follow_links < 0:
            raise InputError("follow_links must be 0 or more.")
        check_choice(self.answer_style, TRAINED_STYLES, "answer style")
        if self.k < 1:
            raise InputError("k (sources per retrieved example) must be at least 1.")


def without_gold(items: Sequence[QAItem]) -> list[str]:
    """The ids of the items whose supporting paragraphs are missing: :func:`rag_examples` skips them."""
    return [item.id for item in items if not any(t in item.supporting_titles for t, _ in item.paragraphs)]


RANK_SLICE = 64  # questions ranked between two progress reports (a fresh data dir embeds every passage)


def rag_examples(
    items: Sequence[QAItem],
    spec: RagExampleSpec = RagExampleSpec(),
    retriever=None,
    source: str = "hotpotqa",
    depth: int = 0,
    on_progress=None,
) -> list[Example]:
    """Grounded examples: each question with its sources (see :class:`RagExampleSpec`) as numbered passages.

    ``retriever`` (``.retrieve(questions, k)``: a PoolRetriever over the items' paragraphs, or a
    knowledge base's) ranks the sources when ``spec.sources == "retrieved"``, ``depth`` deep (0: all of
    an item's paragraphs). Items without a gold paragraph are skipped (a warning is logged;
    :func:`without_gold` lists them). ``source`` names the pool the examples belong to.
    ``on_progress(done, total)`` follows the ranking (questions), a slice at a time.
    """
    template = template_for(spec)
    kept = [item for item in items if any(t in item.supporting_titles for t, _ in item.paragraphs)]
    if spec.sources == "retrieved":
        if retriever is None:
            raise ValueError("Retrieved training sources need a retriever.")
        depth = depth or max((len(i.paragraphs) for i in kept), default=1)
        ranked = []
        for start in range(0, len(kept), RANK_SLICE):
            ranked += retriever.retrieve([item.question for item in kept[start : start + RANK_SLICE]], depth)
            if on_progress:
                on_progress(len(ranked), len(kept))
        chosen_sources = [top_with_gold(item, hits, spec.k) for item, hits in zip(kept, ranked, strict=True)]
    else:
        chosen_sources = [gold_and_distractors(item, spec) for item in kept]
    examples = []
    for item, chosen in zip(kept, chosen_sources, strict=True):
        hits = [
            Hit(id=f"{item.id}:{n}", title=title, text=text, source=source, score=0.0)
            for n, (title, text) in enumerate(chosen)
        ]
        asked = asked_in(template, spec, item.question)
        evidence = shown_evidence(item, chosen, spec.max_source_chars)
        if spec.answer_style == "sentences":  # without marked facts (a QA set's items): the sentences holding it
            gold = [text[: spec.max_source_chars] for title, text in chosen if title in item.supporting_titles]
            target = sentences_reply(evidence or answer_sentences(gold, item.answer), item.answer)
        else:
            target = asked.reply(item.answer, evidence)
        examples.append(
            Example(messages=tuple(asked.messages(item.question, hits)), answer=target, source=source, id=item.id)
        )
    if skipped := len(items) - len(examples):
        log.warning("Skipped %d of %d %s items without a gold paragraph.", skipped, len(items), source)
    return examples


def template_for(spec: RagExampleSpec) -> PromptTemplate:
    examples = EXAMPLES if spec.few_shot else ()
    style = "short" if spec.answer_style == AUTO else spec.answer_style  # auto: short, or sentences per question
    return PromptTemplate(examples=examples, max_source_chars=spec.max_source_chars, answer_style=style)


def asked_in(template: PromptTemplate, spec: RagExampleSpec, question: str) -> PromptTemplate:
    """The prompt a training question is asked in: ``template``, or with ``auto`` the style the question's form
    wants (the Query page and the evaluation ask an ``auto`` adapter the same way)."""
    if spec.answer_style != AUTO:
        return template

    return question_template(template, question, trained=AUTO, adapter=True)


def shown_evidence(item: QAItem, chosen: Sequence[tuple[str, str]], max_chars: int) -> list[str]:
    """The item's supporting sentences that the sources as shown (cut to ``max_chars``) contain, in
    the order shown, those holding the answer last: the reasoning runs from the bridge to the answer."""
    found = []
    for n, (title, text) in enumerate(chosen):
        shown = text[:max_chars]
        for t, sentence in item.supporting_sentences:
            if t == title and sentence and (at := shown.find(sentence)) >= 0:
                found.append((n, at, sentence))
    found.sort()
    answer = item.answer.lower()
    return sorted((s for _, _, s in found), key=lambda s: answer in s.lower())


def gold_and_distractors(item: QAItem, spec: RagExampleSpec) -> list[tuple[str, str]]:
    gold = [p for p in item.paragraphs if p[0] in item.supporting_titles]
    others = [p for p in item.paragraphs if p[0] not in item.supporting_titles]
    # Seeded by the item as well, so an item gets the same sources whatever the order or subset.
    rng = random.Random(f"{spec.seed}:{item.id}")
    chosen = gold + rng.sample(others, min(spec.distractors, len(others)))
    rng.shuffle(chosen)
    return chosen


def top_with_gold(item: QAItem, ranked: Sequence[Hit], k: int) -> list[tuple[str, str]]:
    """The first ``k`` of ``ranked``, with any gold paragraph ranked lower in place of the last non-gold
    ones, in rank order: the passages the evaluation shows, but always with the evidence."""
    order = [(h.title, h.text) for h in ranked]
    missing = [p for p in order[k:] if p[0] in item.supporting_titles]
    # A knowledge base ranks only its top k: a gold passage it did not return comes from the item itself.
    if not any(p[0] in item.supporting_titles for p in order):
        missing = [p for p in item.paragraphs if p[0] in item.supporting_titles]
    top = order[:k]
    # The evidence outranks the weakest distractors; with fewer of those than gold, there are more than k.
    dropped = [p for p in reversed(top) if p[0] not in item.supporting_titles][: len(missing)]
    return [p for p in top if p not in dropped] + missing


def record_examples(records: Sequence, spec: RagExampleSpec = RagExampleSpec()) -> list[Example]:
    """Grounded examples from QA records (e.g. a generated dataset version): each record's own
    contexts plus ``spec.distractors`` contexts of other records, shuffled, as numbered sources."""
    template = template_for(spec)
    pool = list({(c.title, c.text): c for r in records for c in r.contexts}.values())
    examples = []
    for record in records:
        rng = random.Random(f"{spec.seed}:{record.id}")
        own = {(c.title, c.text) for c in record.contexts}
        others = [
            c for c in rng.sample(pool, min(len(pool), spec.distractors + len(own))) if (c.title, c.text) not in own
        ]
        chosen = list(record.contexts) + others[: spec.distractors]
        rng.shuffle(chosen)
        hits = [
            Hit(id=f"{record.id}:{n}", title=c.title, text=c.text, source="generated", score=0.0)
            for n, c in enumerate(chosen)
        ]
        evidence = answer_sentences([c.text[: spec.max_source_chars] for c in record.contexts], record.answer)
        asked = asked_in(template, spec, record.question)
        target = (
            sentences_reply(evidence, record.answer)
            if spec.answer_style == "sentences"
            else asked.reply(record.answer, evidence)
        )
        examples.append(
            Example(
                messages=tuple(asked.messages(record.question, hits)), answer=target, source="generated", id=record.id
            )
        )
    return examples


# Every Dolly category but closed_qa, which is never trained on: it is the held-out forgetting check.
DOLLY_CATEGORIES = (
    "open_qa",
    "general_qa",
    "information_extraction",
    "summarization",
    "classification",
    "brainstorming",
    "creative_writing",
)


@dataclass(frozen=True)
class MixSpec:
    """Which pools to train on and in what proportion; ``total=None``: as many as the pools allow."""

    sources: tuple[tuple[str, float], ...] = (("hotpotqa", 1.0),)
    total: int | None = None
    seed: int = 0

    def uses(self, pool: str) -> bool:
        """Whether ``pool`` has a positive weight in the mix."""
        return any(name == pool and weight > 0 for name, weight in self.sources)

    @classmethod
    def with_shares(
        cls, dolly: float = 0.0, generated: float = 0.0, seed: int = 0, primary: str = "hotpotqa", hotpotqa: float = 0.0
    ) -> MixSpec:
        """The primary pool's examples (HotpotQA, or a QA set's: ``"dataset"``) with shares (0..1) of Dolly
        instructions, generated QA pairs and (beside a QA set) HotpotQA mixed in."""
        others = {"dolly": dolly, "generated": generated, "hotpotqa": hotpotqa if primary != "hotpotqa" else 0.0}
        if not all(0 <= share <= 1 for share in others.values()) or sum(others.values()) > 1:
            raise InputError("The Dolly, generated and HotpotQA shares are between 0 and 1, and sum to at most 1.")
        shares = ((primary, 1 - sum(others.values())), *others.items())
        return cls(tuple((name, share) for name, share in shares if share > 0) or ((primary, 1.0),), seed=seed)


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
