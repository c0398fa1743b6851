"""A pairwise judge: a local model says which of two answers to a question is better.

Small models favour whichever answer they read first (position bias), so every pair is judged twice,
once in each order, and a verdict counts only when it picks the same *answer* both times; a verdict
that follows the position instead (answer 1 both times, or answer 2 both times) is a tie, and the
share of such flips is reported as the judge's position-flip rate.

The model call (:func:`judge_pairs`) is kept apart from the pure parts: building the prompt
(:func:`judge_messages`), reading a verdict (:func:`parse_verdict`), combining the two orders
(:func:`combine`) and counting (:func:`judge_from_texts`).
"""

from __future__ import annotations

import math
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from engine.errors import InputError
from engine.evaluation.metrics import normalize_answer
from engine.evaluation.verdicts import combine, read_verdict
from engine.models.generation import SamplingSpec, load_generator

OUTCOMES = ("A", "B", "tie")  # what a pair's two judgements say together

SYSTEM = "You are a strict grader. You compare two answers to a question and say which one is better."
TEMPLATE = (
    "Question: {question}\n"
    "{reference}"
    "Answer 1: {answer_1}\n"
    "Answer 2: {answer_2}\n\n"
    "Which answer is better, 1 or 2? A better answer is correct and to the point. "
    "If they are equally good, say tie. Reply with 1, 2 or tie only."
)
REFERENCE_LINE = "Correct answer: {reference}\n"  # what {reference} becomes when a reference is given
PREFILL = "The better answer is"  # the start of the judge's reply: a tiny model then names a number
FIELDS = {"question", "reference", "answer_1", "answer_2"}
PROGRESS_BATCHES = 4  # generate calls of this many batches between two progress reports


@dataclass(frozen=True)
class JudgeSpec:
    """How to judge: ``model`` as the Models page names it (empty: the bundled model), the reply's length
    and the prompt. ``template`` has the fields ``{question}``, ``{reference}`` (the ``reference_line``
    filled in, or nothing when there is no reference), ``{answer_1}`` and ``{answer_2}``; ``prefill`` starts
    the judge's reply (empty: none). Pairs whose two answers are the same after SQuAD normalization are
    ties without asking the model when ``skip_identical`` is set."""

    model: str = ""
    max_new_tokens: int = 8
    system: str = SYSTEM
    template: str = TEMPLATE
    reference_line: str = REFERENCE_LINE
    prefill: str = PREFILL
    skip_identical: bool = True

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise InputError("The judge needs at least one new token for its verdict.")
        used = _fields(self.template, "template")
        if {"question", "answer_1", "answer_2"} - used:
            missing = sorted({"question", "answer_1", "answer_2"} - used)
            raise InputError(f"The judge's template must contain {', '.join('{' + f + '}' for f in missing)}.")
        if _fields(self.reference_line, "reference line") - {"reference"}:
            raise InputError("The judge's reference line may only use the field {reference}.")


def _fields(template: str, what: str) -> set[str]:
    """The named fields of a ``str.format`` template; InputError for unknown or malformed ones."""
    try:
        names = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise InputError(f"The judge's {what} is not a valid template: {exc}.") from None
    unknown = names - FIELDS
    if unknown:
        raise InputError(
            f"The judge's {what} has unknown fields {', '.join(sorted(unknown))}: use {', '.join(sorted(FIELDS))}."
        )
    return names


DEFAULT_JUDGE = JudgeSpec()


def judge_messages(
    question: str, first: str, second: str, reference: str = "", spec: JudgeSpec = DEFAULT_JUDGE
) -> list[dict[str, str]]:
    """The chat asking which of ``first`` (answer 1) and ``second`` (answer 2) better answers ``question``
    (with the correct ``reference`` answer, when given), ending with the start of the judge's reply."""
    ref = spec.reference_line.format(reference=reference.strip()) if reference.strip() else ""
    user = spec.template.format(
        question=question.strip(),
        reference=ref,
        answer_1=first.strip() or "(no answer)",
        answer_2=second.strip() or "(no answer)",
    )
    messages = [{"role": "system", "content": spec.system}] if spec.system else []
    messages.append({"role": "user", "content": user})
    if spec.prefill:
        messages.append({"role": "assistant", "content": spec.prefill})
    return messages


@dataclass(frozen=True)
class JudgeResult:
    """A pairwise judgement of variant ``a`` against ``b`` on the same items.

    Per item: the outcome (``verdicts``: ``"A"``, ``"B"`` or ``"tie"``), the judge's raw replies with A in
    position 1 (``first_texts``) and with B in position 1 (``second_texts``), what each reply picked
    (``first_verdicts`` / ``second_verdicts``: ``"1"``, ``"2"`` or ``"tie"``), whether the two picks named
    different answers (``flipped``) and whether the model was asked at all (``judged``: False for
    identical answers, a tie without a model call; their texts are empty)."""

    verdicts: list[str]
    first_texts: list[str] = field(repr=False)
    second_texts: list[str] = field(repr=False)
    first_verdicts: list[str] = field(repr=False)
    second_verdicts: list[str] = field(repr=False)
    flipped: list[bool] = field(repr=False)
    judged: list[bool] = field(repr=False)
    unparsed: int = 0  # replies (of 2 per judged item) with no verdict, read as ties
    a: str = "A"
    b: str = "B"
    item_ids: list[str] = field(default_factory=list, repr=False)
    model: str = ""

    @property
    def n(self) -> int:
        return len(self.verdicts)

    @property
    def wins_a(self) -> int:
        return self.verdicts.count("A")

    @property
    def wins_b(self) -> int:
        return self.verdicts.count("B")

    @property
    def ties(self) -> int:
        return self.verdicts.count("tie")

    @property
    def flip_rate(self) -> float:
        """Share of the judged items whose two judgements named different answers (NaN when none was judged)."""
        judged = sum(self.judged)
        return sum(self.flipped) / judged if judged else math.nan

    @property
    def position_1_rate(self) -> float:
        """Share of the decisive judgements (1 or 2, both orders) that picked position 1: 0.5 for a judge
        without position bias, 1.0 for one that always picks the first answer (NaN when none was decisive)."""
        picks = [
            v
            for v, j in zip(self.first_verdicts + self.second_verdicts, self.judged * 2, strict=True)
            if j and v != "tie"
        ]
        return picks.count("1") / len(picks) if picks else math.nan

    @property
    def follows_positions(self) -> bool:
        """Whether most judged items' verdicts followed the answers' positions: then the verdicts say little."""
        return math.isfinite(self.flip_rate) and self.flip_rate > 0.5

    def summary(self) -> dict[str, float | int | str]:
        """The counts and rates, for MLflow and the report."""
        return {
            "a": self.a,
            "b": self.b,
            "items": self.n,
            "judged": sum(self.judged),
            "wins_a": self.wins_a,
            "wins_b": self.wins_b,
            "ties": self.ties,
            "flip_rate": self.flip_rate,
            "position_1_rate": self.position_1_rate,
            "unparsed": self.unparsed,
            "model": self.model,
        }

    def rows(self) -> list[dict]:
        """One row per item: its id, the outcome and both orders' replies."""
        ids = self.item_ids or [str(i) for i in range(self.n)]
        return [
            {
                "item_id": i,
                "verdict": v,
                "a_first": t1,
                "b_first": t2,
                "a_first_pick": v1,
                "b_first_pick": v2,
                "flipped": f,
                "judged": j,
            }
            for i, v, t1, t2, v1, v2, f, j in zip(
                ids,
                self.verdicts,
                self.first_texts,
                self.second_texts,
                self.first_verdicts,
                self.second_verdicts,
                self.flipped,
                self.judged,
                strict=True,
            )
        ]


def judge_from_texts(
    first_texts: Sequence[str],
    second_texts: Sequence[str],
    judged: Sequence[bool] | None = None,
    a: str = "A",
    b: str = "B",
    item_ids: Sequence[str] = (),
    model: str = "",
) -> JudgeResult:
    """The JudgeResult of the judge's replies with A in position 1 (``first_texts``) and with B in position 1
    (``second_texts``), item by item; items not ``judged`` (identical answers) are ties."""
    if len(first_texts) != len(second_texts):
        raise InputError(f"Each item needs a reply in both orders: {len(first_texts)} against {len(second_texts)}.")
    judged = [True] * len(first_texts) if judged is None else list(judged)
    if len(judged) != len(first_texts) or (item_ids and len(item_ids) != len(first_texts)):
        raise InputError("The judge's replies, items and ids must line up one to one.")
    verdicts, firsts, seconds, flipped, unparsed = [], [], [], [], 0
    for t1, t2, asked in zip(first_texts, second_texts, judged, strict=True):
        (v1, ok1), (v2, ok2) = (read_verdict(t1), read_verdict(t2)) if asked else (("tie", True), ("tie", True))
        unparsed += (not ok1) + (not ok2)
        verdict, flip = combine(v1, v2)
        verdicts.append(verdict)
        firsts.append(v1)
        seconds.append(v2)
        flipped.append(flip)
    return JudgeResult(
        verdicts=verdicts,
        first_texts=list(first_texts),
        second_texts=list(second_texts),
        first_verdicts=firsts,
        second_verdicts=seconds,
        flipped=flipped,
        judged=judged,
        unparsed=unparsed,
        a=a,
        b=b,
        item_ids=list(item_ids),
        model=model,
    )


def judge_pairs(
    generator,
    items: Sequence[tuple[str, str, str, str]],
    batch_size: int = 8,
    spec: JudgeSpec = DEFAULT_JUDGE,
    a: str = "A",
    b: str = "B",
    item_ids: Sequence[str] = (),
    on_progress: Callable[[int, int], None] | None = None,
) -> JudgeResult:
    """Judge each ``(question, answer_a, answer_b, reference)`` twice, A in position 1 and then B in position
    1, with greedy batched ``generator.generate`` calls, and combine the two orders (see :func:`combine`).
    ``on_progress(done, total)`` follows the judge's prompts (what it raises stops the judging)."""
    items = [tuple(it) for it in items]
    for it in items:
        if len(it) != 4:
            raise InputError("Each pair to judge is (question, answer A, answer B, reference).")
    asked = [not (spec.skip_identical and normalize_answer(x) == normalize_answer(y)) for _, x, y, _ in items]
    todo = [it for it, ask in zip(items, asked, strict=True) if ask]
    prompts = [judge_messages(q, x, y, ref, spec) for q, x, y, ref in todo]
    prompts += [judge_messages(q, y, x, ref, spec) for q, x, y, ref in todo]
    sampling = SamplingSpec(max_new_tokens=spec.max_new_tokens, temperature=0.0)
    texts = generate_in_slices(generator, prompts, sampling, batch_size, on_progress)
    if len(texts) != len(prompts):
        raise InputError(f"The judge answered {len(texts)} of {len(prompts)} prompts.")
    replies = iter(zip(texts[: len(todo)], texts[len(todo) :], strict=True))
    first, second = [], []
    for ask in asked:
        t1, t2 = next(replies) if ask else ("", "")
        first.append(t1)
        second.append(t2)
    model = getattr(generator, "name", "")
    model = model if isinstance(model, str) else ""
    return judge_from_texts(first, second, asked, a, b, item_ids, model)


def generate_in_slices(generator, prompts, sampling, batch_size: int, on_progress=None) -> list[str]:
    """The replies to ``prompts``, generated a few batches at a time; ``on_progress(done, total)`` between."""
    texts: list[str] = []
    step = max(1, batch_size) * PROGRESS_BATCHES
    for start in range(0, len(prompts), step):
        texts += [c.text for c in generator.generate(prompts[start : start + step], sampling, batch_size=batch_size)]
        if on_progress:
            on_progress(len(texts), len(prompts))
    return texts


def load_judge(spec: JudgeSpec = DEFAULT_JUDGE, settings=None):
    """A Generator for the judge's model (the bundled model when ``spec.model`` is empty)."""
    return load_generator(spec.model or None, settings)
