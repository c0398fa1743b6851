"""The grounded prompt: numbered sources, a question, and a request for an answer in a style.

The bundled 135M model tends to answer with a whole sentence, which F1 punishes. What
measured best on 40 HotpotQA questions (docs/baseline.md) is a short instruction plus three
worked examples given as earlier chat turns, with each source cut to 600 characters.

Answer styles: ``short`` replies with the answer alone; ``evidence`` (for adapters trained to
it) first quotes the source sentences that answer, then gives the short answer, on one line:
``Evidence: <sentences> Answer: <short answer>``; ``sentences`` (for descriptive questions: what is X
for, how does Y work) replies with one to three sentences in the sources' words. An adapter is
trained for ``short``, ``evidence`` or ``auto`` (:data:`TRAINED_STYLES`): ``auto`` asks each question
in the style its form wants, ``short`` or ``sentences``, as the Query page does; which style a
question is asked in is chosen in :mod:`engine.rag.styles`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from engine.errors import check_choice
from engine.models.adapters import AdapterRegistry
from engine.rag.hits import Hit
from engine.settings import Settings

SYSTEM = "Answer the question from the sources with a short answer of a few words, not a sentence."
EVIDENCE_SYSTEM = (
    "Quote the sentences of the sources that answer the question, then give a short answer of a few words."
)
SENTENCES_SYSTEM = "Answer the question with the one to three sentences of the sources that answer it, word for word."
ANSWER_STYLES = ("short", "evidence")  # the styles adapters are trained for and evaluations score
STYLES = (*ANSWER_STYLES, "sentences")
AUTO = "auto"  # per question: short or sentences by the question's form (see engine.rag.styles)
TRAINED_STYLES = (*ANSWER_STYLES, "sentences", AUTO)  # what an adapter is trained for and an evaluation may ask in
ANSWER_TOKENS = {"short": 32, "evidence": 256, "sentences": 96}  # new tokens an answer of each style needs
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
# Descriptive worked examples on topics far from any user's documents: the 135M model copies words
# of its examples into answers whose sources it cannot use ("The studio for the moon landing").
SENTENCE_EXAMPLES: tuple[tuple[str, str, str], ...] = (
    (
        "[1] Compost: Compost is decomposed organic matter such as leaves and food scraps. Compost is for feeding "
        "plants: gardeners mix it into the soil, where it also helps the soil hold water.\n"
        "[2] Mulch: Mulch is a layer of material spread on top of the soil.",
        "What is compost for?",
        "Compost is for feeding plants: gardeners mix it into the soil, where it also helps the soil hold water.",
    ),
    (
        "[1] Boiler: A boiler heats water for the radiators of a house.\n"
        "[2] Thermostat: A thermostat measures the temperature of a room. It switches the heating on when the "
        "room is colder than the set point and off again once it is warm enough.",
        "How does a thermostat work?",
        "A thermostat measures the temperature of a room. It switches the heating on when the room is colder "
        "than the set point and off again once it is warm enough.",
    ),
)
# Short answers over documents are paths, names and sizes more than Wikipedia's names and dates: their
# worked examples (from made-up documentation) teach the model to copy such a span whole. The HotpotQA
# evaluation keeps EXAMPLES, which its numbers were measured with.
DOCS_EXAMPLES: tuple[tuple[str, str, str], ...] = (
    (
        "[1] Backups: Nightly backups are written to /var/backups/site.tar.gz.\n"
        "[2] Restore: Run restore.sh to bring a backup back.",
        "Where are the nightly backups written?",
        "/var/backups/site.tar.gz",
    ),
    (
        "[1] Parser: The tool reads its input with the parser LexiPars-2B.\n[2] Output: Results are printed as CSV.",
        "Which parser does the tool read its input with?",
        "LexiPars-2B",
    ),
    ("[1] Limits: An upload may be at most 25 MB; larger files are refused.", "How large may an upload be?", "25 MB"),
)
STYLE_EXAMPLES = {"short": DOCS_EXAMPLES, "evidence": EXAMPLES, "sentences": SENTENCE_EXAMPLES}


@dataclass(frozen=True)
class PromptTemplate:
    """Chat messages for a question and its sources (``hits=None``: closed book, no sources)."""

    system: str = SYSTEM
    closed_book_system: str = CLOSED_BOOK_SYSTEM
    examples: tuple[tuple[str, str, str], ...] = EXAMPLES  # (sources, question, answer)
    max_source_chars: int = 600
    answer_style: str = "short"

    def __post_init__(self) -> None:
        check_choice(self.answer_style, STYLES, "answer style")

    @property
    def evidence(self) -> bool:
        return self.answer_style == "evidence"

    def styled(self, style: str) -> PromptTemplate:
        """This template asking for ``style``: with that style's worked examples where it shows any."""
        return replace(self, answer_style=style, examples=STYLE_EXAMPLES[style] if self.examples else ())

    def messages(self, question: str, hits: Sequence[Hit] | None) -> list[dict[str, str]]:
        closed = hits is None
        system = {"evidence": EVIDENCE_SYSTEM, "sentences": SENTENCES_SYSTEM}.get(self.answer_style, self.system)
        system = self.closed_book_system if closed else system
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


SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+")


def sentences_reply(evidence: Sequence[str], answer: str, most: int = 3) -> str:
    """What the ``sentences`` style teaches: the (at most ``most``) source sentences that answer, in their
    words; the answer itself where none was found (a descriptive answer is a sentence already)."""
    quoted = [" ".join(s.split()) for s in evidence if s.strip()][-most:]  # those holding the answer come last
    return " ".join(quoted) if quoted and len(answer.split()) < 6 else answer


def answer_sentences(texts: Sequence[str], answer: str) -> list[str]:
    """The sentences of ``texts`` that hold ``answer`` (the evidence of a record without marked facts)."""
    return [s for text in texts for s in SENTENCE_BREAK.split(text) if answer and answer.lower() in s.lower()]


def example_evidence(sources: str, answer: str) -> tuple[str, ...]:
    """The sentences of a worked example's sources that hold its answer (all of them for yes/no)."""
    texts = [line.split(": ", 1)[-1] for line in sources.splitlines()]
    if answer.lower() in ("yes", "no"):
        return tuple(texts)
    return tuple(t for t in texts if answer.lower() in t.lower())


def turn(question: str, sources: str | None) -> str:
    return f"Question: {question}" if sources is None else f"Sources:\n{sources}\n\nQuestion: {question}"


def format_sources(hits: Sequence[Hit], max_chars: int) -> str:
    """One line per source: its number, title and plain text (cut to ``max_chars``)."""
    return "\n".join(f"[{n}] {h.title}: {source_text(h)[:max_chars].strip()}" for n, h in enumerate(hits, start=1))


def source_text(hit: Hit) -> str:
    """A source's plain text, without a first heading that repeats its title (a Markdown file's)."""
    text = plain_text(hit.text)
    repeated = HEADING.match(hit.text) and text.startswith(hit.title + ".")
    return text[len(hit.title) + 1 :].lstrip() if repeated else text


FENCE = re.compile(r"^\s*(```|~~~)")
TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$")
HEADING = re.compile(r"^\s*#{1,6}\s+")
BULLET = re.compile(r"^\s*([-*+]|\d+[.)])\s+")
EMPHASIS = re.compile(r"\*\*|__|`")


def plain_text(text: str) -> str:
    """A source's text on one line, as the worked examples show sources, without Markdown's code fences,
    table rules, heading marks, bullets, bold and backticks: the 135M model imitates the line breaks and
    marks it reads, and generation stops at its first newline. Text on one line (a Wikipedia paragraph:
    the HotpotQA prompts) passes unchanged."""
    return markdown_text(text) if "\n" in text else text


def markdown_text(text: str) -> str:
    """Markdown as plain text on one line (see :func:`plain_text`)."""
    lines = []
    for line in text.splitlines():
        if FENCE.match(line) or TABLE_RULE.match(line):
            continue
        if HEADING.match(line):  # a heading ends like a sentence, so that it does not run into the next one
            line = HEADING.sub("", line).rstrip()
            line += "" if not line or line[-1] in ".:?!" else "."
        line = BULLET.sub("", line)
        if line.strip().startswith("|"):  # a table row: its cells, separated
            line = "; ".join(cell.strip() for cell in line.strip().strip("|").split("|"))
        lines.append(line)
    return " ".join(EMPHASIS.sub("", " ".join(lines)).split())


ANSWER_PREFIX = re.compile(r"^\s*(the answer is|short answer|final answer|answer)\b\s*[:\-]?\s*", re.IGNORECASE)
CITATION = re.compile(r"\s*\[(\d+)\]")
EVIDENCE_ANSWER = re.compile(r"\banswer\s*:", re.IGNORECASE)
SENTENCE_END = re.compile(r"[.!?](?=\s|$)")


def clean_answer(text: str, style: str = "short") -> str:
    """The answer in the model's output: first line, no 'Answer:' prefix, no [n] markers.

    A short answer loses a final full stop; sentences keep it but lose a last sentence left
    unfinished at the token limit. In the evidence style the answer is what follows the last
    ``Answer:``; an output that quotes evidence but never reaches an answer (cut off by the token
    limit) has none.
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
    if style == "sentences":
        return whole_sentences(line)
    return line.rstrip(".").strip()


def whole_sentences(text: str) -> str:
    """``text`` without a last sentence the token limit cut off (kept when it is the only one)."""
    ends = list(SENTENCE_END.finditer(text))
    if not ends or ends[-1].end() == len(text):
        return text
    return text[: ends[-1].end()].strip()


def cited_numbers(text: str) -> list[int]:
    """The source numbers the model cited as [n], in order, without repeats."""
    return list(dict.fromkeys(int(n) for n in CITATION.findall(text)))


def prompt_for(
    settings: Settings, adapter: str = "", prompt: str = "", max_source_chars: int | None = None, answer_style: str = ""
):
    """The prompt template to ask with: ``prompt`` (few-shot / zero-shot) when given, else the one
    the adapter was trained with, else few-shot; sources cut and answers styled as the adapter saw
    them in training (unless given)."""
    trained = AdapterRegistry(settings).get(adapter) if adapter else None
    prompt = prompt or (trained.prompt if trained else "") or "few-shot"
    rag = trained.train.get("rag", {}) if trained else {}
    if max_source_chars is None:
        max_source_chars = rag.get("max_source_chars", PromptTemplate.max_source_chars)
    answer_style = answer_style or rag.get("answer_style", PromptTemplate.answer_style)
    if answer_style == AUTO:
        answer_style = "short"  # each question is styled by its caller (engine.rag.styles.question_template)
    examples = () if prompt == "zero-shot" else PromptTemplate().examples
    return PromptTemplate(examples=examples, max_source_chars=max_source_chars, answer_style=answer_style)
