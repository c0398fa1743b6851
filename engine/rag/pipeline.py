"""Retrieval-augmented answering: retrieve, prompt, generate, cite. Parts are passed in."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from engine.errors import InputError
from engine.models.generation import Generator, SamplingSpec
from engine.rag.hits import Hit
from engine.rag.prompt import PromptTemplate, cited_numbers
from engine.text import normalize_answer, token_share

DEFAULT_SAMPLING = SamplingSpec(max_new_tokens=32, stop=("\n",))


def sampling_for(template: PromptTemplate, max_new_tokens: int = 0) -> SamplingSpec:
    """Greedy decoding to the end of the line, with room for an answer in the template's style
    (``max_new_tokens`` > 0 overrides it)."""
    return SamplingSpec(max_new_tokens=max_new_tokens or template.max_new_tokens, stop=DEFAULT_SAMPLING.stop)


class Retriever(Protocol):
    def retrieve(self, questions: Sequence[str], k: int) -> list[list[Hit]]: ...


class Focus(Protocol):
    """Picks what the prompt shows of the retrieved chunks, and finishes the answer (engine.rag.focus)."""

    def sources(self, question: str, hits: Sequence[Hit], style: str) -> list[Hit]: ...
    def finish(self, question: str, answer: str, shown: Sequence[Hit], style: str) -> str: ...


CITATION_MARK = re.compile(r"\[(\d+)\]")


def renumber(mark: re.Match, shown: Sequence[Hit], ids: Sequence[str]) -> str:
    """A ``[n]`` of the prompt's sources as the number of the retrieved chunk source n came from."""
    n = int(mark.group(1))
    if not 1 <= n <= len(shown) or shown[n - 1].id not in ids:
        return mark.group(0)
    return f"[{ids.index(shown[n - 1].id) + 1}]"


@dataclass(frozen=True)
class RagAnswer:
    """What answering one question produced, with everything needed to show and log it."""

    question: str
    answer: str  # the cleaned short answer
    raw: str  # the model's text as generated
    hits: tuple[Hit, ...]
    citations: tuple[int, ...]  # 1-based numbers of the sources that support the answer
    messages: tuple[dict, ...] = field(repr=False)
    retrieve_s: float = 0.0
    generate_s: float = 0.0
    prompt_tokens: int = 0
    new_tokens: int = 0
    style: str = "short"  # the answer style asked for (see engine.rag.prompt)

    @property
    def tokens_per_s(self) -> float:
        return self.new_tokens / self.generate_s if self.generate_s > 0 else 0.0

    @property
    def context(self) -> str:
        return "\n".join(h.text for h in self.hits)


def check_question(question: str) -> str:
    question = (question or "").strip()
    if not question:
        raise InputError("Please type a question.")
    return question


def find_citations(raw: str, answer: str, hits: Sequence[Hit], question: str = "") -> tuple[int, ...]:
    """Sources the model cited as [n]; failing that, the sources that contain most of the answer.

    Answer words that merely repeat the question say nothing about where the answer came
    from, so only the answer's other words are matched against each source.
    """
    cited = tuple(n for n in cited_numbers(raw) if 1 <= n <= len(hits))
    if cited:
        return cited
    asked = set(normalize_answer(question).split())
    content = " ".join(w for w in normalize_answer(answer).split() if w not in asked)
    if not content:
        return ()
    return tuple(n for n, h in enumerate(hits, start=1) if token_share(content, h.text) >= 0.5)


class RagPipeline:
    """Answers questions with a retriever (None: closed book), a generator and a prompt template."""

    def __init__(
        self,
        retriever: Retriever | None,
        generator: Generator,
        template: PromptTemplate = PromptTemplate(),
        sampling: SamplingSpec | None = None,
        focus: Focus | None = None,
    ):
        self.retriever = retriever
        self.generator = generator
        self.template = template
        self.sampling = sampling or sampling_for(template)
        self.focus = focus  # None: the prompt shows the retrieved chunks as they are

    def retrieve(self, questions: Sequence[str], k: int) -> tuple[list[list[Hit]] | None, float]:
        if self.retriever is None:
            return None, 0.0
        if k < 1:
            raise InputError("k (the number of sources) must be at least 1.")
        start = time.perf_counter()
        hits = self.retriever.retrieve(list(questions), k)
        return hits, time.perf_counter() - start

    def shown(self, question: str, hits: Sequence[Hit] | None) -> Sequence[Hit] | None:
        """The sources the prompt shows for ``hits``: the hits, or the sentences the focus picks from them."""
        if hits is None or self.focus is None:
            return hits
        return self.focus.sources(question, hits, self.template.answer_style)

    def build(self, question: str, shown: Sequence[Hit] | None) -> list[dict]:
        return self.template.messages(question, shown)

    def finish(self, question, raw, hits, shown, messages, retrieve_s, generate_s, prompt_tokens, new_tokens):
        answer = self.template.answer_from(raw)
        hits, cited = tuple(hits or ()), raw
        if self.focus is not None and hits:
            answer = self.focus.finish(question, answer, shown, self.template.answer_style)
            # [n] numbers the prompt's sources: lead each back to the retrieved chunk it came from
            ids = [h.id for h in hits]
            cited = CITATION_MARK.sub(lambda m: renumber(m, shown, ids), raw)
        return RagAnswer(
            question=question,
            answer=answer,
            raw=raw,
            hits=hits,
            citations=find_citations(cited, answer, hits, question),
            messages=tuple(messages),
            retrieve_s=retrieve_s,
            generate_s=generate_s,
            prompt_tokens=prompt_tokens,
            new_tokens=new_tokens,
            style=self.template.answer_style,
        )

    def answer(self, question: str, k: int = 5) -> RagAnswer:
        return self.answer_many([question], k)[0]

    def answer_many(
        self,
        questions: Sequence[str],
        k: int = 5,
        batch_size: int = 8,
        on_progress: Callable[[int, int], None] | None = None,
        hits: Sequence[Sequence[Hit]] | None = None,
    ) -> list[RagAnswer]:
        """Answer many questions: one batched retrieval, then batched generation.

        ``hits`` may be given (already retrieved) to skip retrieval.
        """
        questions = [check_question(q) for q in questions]
        retrieve_s = 0.0
        if hits is None:
            hits, retrieve_s = self.retrieve(questions, k)
        hits = [None] * len(questions) if hits is None else hits
        shown = [self.shown(q, hits[i]) for i, q in enumerate(questions)]
        conversations = [self.build(q, shown[i]) for i, q in enumerate(questions)]
        completions = self.generator.generate(conversations, self.sampling, batch_size, on_progress)
        share = retrieve_s / max(1, len(questions))
        return [
            self.finish(q, c.text, hits[i], shown[i], conversations[i], share, c.seconds, c.prompt_tokens, c.new_tokens)
            for i, (q, c) in enumerate(zip(questions, completions, strict=True))
        ]

    def stream(self, question: str, k: int = 5) -> AnswerStream:
        """An iterable of answer pieces; its ``result`` is the full RagAnswer once consumed."""
        question = check_question(question)
        hits, retrieve_s = self.retrieve([question], k)
        one = None if hits is None else hits[0]
        shown = self.shown(question, one)
        return AnswerStream(self, question, one, shown, self.build(question, shown), retrieve_s)


class AnswerStream:
    """Streams the generated text, then holds the finished :class:`RagAnswer`."""

    def __init__(self, pipeline: RagPipeline, question: str, hits, shown, messages, retrieve_s: float):
        self.pipeline, self.question, self.hits, self.shown, self.messages = pipeline, question, hits, shown, messages
        self.retrieve_s = retrieve_s
        self.result: RagAnswer | None = None

    def __iter__(self) -> Iterator[str]:
        gen = self.pipeline.generator
        start = time.perf_counter()
        pieces = []
        for piece in gen.stream(self.messages, self.pipeline.sampling):
            pieces.append(piece)
            yield piece
        raw = "".join(pieces)
        seconds = time.perf_counter() - start
        prompt_tokens = gen.count_tokens(gen.render(self.messages))
        self.result = self.pipeline.finish(
            self.question,
            raw,
            self.hits,
            self.shown,
            self.messages,
            self.retrieve_s,
            seconds,
            prompt_tokens,
            gen.count_tokens(raw),
        )
