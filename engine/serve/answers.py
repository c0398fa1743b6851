"""What the server does for a request, away from HTTP: borrow the model from the manager, check the
prompt fits, answer (over a knowledge base for ``rag:`` models), and log the request to MLflow as the
Query page logs its questions (experiment ``studio-query``; in the background, off the answer's time)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from engine.models.generation import SamplingSpec
from engine.models.manager import ModelManager
from engine.models.spec import is_remote, parse_remote
from engine.rag.ask import AskSpec, ask_pipeline
from engine.rag.history import log_query
from engine.rag.ingest import DOCS_KB, ensure_docs_kb
from engine.rag.pipeline import RagAnswer
from engine.serve.protocol import (
    ApiError,
    ChatRequest,
    CompletionRequest,
    Sampling,
    chat_chunk,
    chat_response,
    completion_chunk,
    completion_response,
    new_id,
    sse,
    usage,
)
from engine.serve.routing import Target, resolve
from engine.settings import Settings
from engine.tracking import QUERY

DEFAULT_MAX_TOKENS = 256  # a chat answer without max_tokens; a RAG answer takes its answer style's length


@dataclass
class ServeState:
    """What the server answers with: the settings, the shared model manager, and (made on first need)
    the knowledge-base store and the MLflow tracker."""

    settings: Settings
    manager: ModelManager
    api_key: str = ""
    concurrency: int = 1
    queue: int = 64
    log_requests: bool = True
    url: str = ""  # where this server listens (``http://host:port/v1``), set when it starts
    _store: object = None
    _tracker: object = None
    _docs_checked: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _logger: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(1, "serve-mlflow"))

    def store(self):
        from engine.rag.embedder import Embedder  # noqa: PLC0415 - loads sentence-transformers; RAG requests only
        from engine.rag.store import KnowledgeBaseStore  # noqa: PLC0415 - loads chromadb

        with self._lock:
            if self._store is None:
                self._store = KnowledgeBaseStore(self.settings, Embedder.shared())
            return self._store

    def kb_names(self) -> list[str]:
        return self.store().names()

    def knowledge_base(self, kb: str):
        """The store, with ``kb`` checked to exist (the Studio's docs brought up to date once, as the app does)."""
        store = self.store()
        if kb == DOCS_KB and not self._docs_checked:
            ensure_docs_kb(store)
            self._docs_checked = True
        if kb not in store.names():
            raise ApiError(404, f"No knowledge base {kb!r}; there are: {', '.join(store.names()) or 'none'}.",
                           code="model_not_found")  # fmt: skip
        return store

    def log(self, write) -> None:
        """Run ``write(tracker)`` in the background; a failure to log never fails an answer."""
        if not self.log_requests:
            return

        def run() -> None:
            from engine.tracking import Tracker  # noqa: PLC0415 - loads mlflow

            with contextlib.suppress(Exception):
                self._tracker = self._tracker or Tracker(self.settings)
                write(self._tracker)

        self._logger.submit(run)

    def drain(self, timeout: float = 30.0) -> None:
        """Wait for the requests' logging to finish (tests, shutdown)."""
        self._logger.submit(lambda: None).result(timeout=timeout)


def target_of(state: ServeState, body, kb: str = "") -> Target:
    """The request's model; a remote model that is this very server is refused (it would ask itself forever)."""
    target = resolve(body.model, state.manager, state.settings, kb)
    if is_remote(target.spec.source) and state.url and parse_remote(target.spec.source)[0] == state.url:
        raise ApiError(400, f"{target.spec.name} is this server itself: make a local model active to serve it.")
    return target


def sampling_of(body: Sampling, max_tokens: int | None, default: int = DEFAULT_MAX_TOKENS) -> SamplingSpec:
    return SamplingSpec(
        max_new_tokens=max_tokens or default,
        temperature=body.temperature,
        top_p=body.top_p,
        stop=body.stops(),
        seed=body.seed,
    )


def check_fits(generator, prompt_tokens: int, sampling: SamplingSpec) -> None:
    """400 ``context_length_exceeded`` for a prompt that, with the answer asked for, overflows the model."""
    config = getattr(generator.model, "config", None)
    context = getattr(config, "max_position_embeddings", None)
    if context and prompt_tokens + sampling.max_new_tokens > context:
        raise ApiError(
            400,
            f"This model's context is {context} tokens: the prompt has {prompt_tokens} and "
            f"{sampling.max_new_tokens} more were asked for.",
            code="context_length_exceeded",
        )


def finish_reason(new_tokens: int, sampling: SamplingSpec) -> str:
    return "length" if new_tokens >= sampling.max_new_tokens else "stop"


def question_of(messages: list[dict]) -> str:
    asked = [m["content"] for m in messages if m["role"] == "user" and m["content"].strip()]
    if not asked:
        raise ApiError(400, "A RAG request needs a user message: the question.")
    return asked[-1]


def sources_of(answer: RagAnswer) -> list[dict]:
    return [
        {
            "n": n,
            "id": h.id,
            "title": h.title,
            "source": h.source,
            "score": round(h.score, 4),
            "cited": n in answer.citations,
            "text": h.text,
        }  # fmt: skip
        for n, h in enumerate(answer.hits, start=1)
    ]


def rag_pipeline(state: ServeState, body: ChatRequest, kb: str, spec, generator):
    k = body.rag.k if body.rag else AskSpec().k
    question = question_of(body.plain_messages())
    ask = AskSpec(kb=kb, k=k, adapter=spec.adapter)
    pipeline = ask_pipeline(question, ask, state.knowledge_base(kb), generator, state.settings)
    # The answer style's length and stop unless the request sets them; greedy unless it asks for sampling.
    asked, sampling = body.max_completion_tokens or body.max_tokens, pipeline.sampling
    if asked:
        sampling = replace(sampling, max_new_tokens=asked)
    if body.stops():
        sampling = replace(sampling, stop=body.stops())
    if body.temperature:
        sampling = replace(sampling, temperature=body.temperature, top_p=body.top_p, seed=body.seed)
    pipeline.sampling = sampling
    return pipeline, question, k


def log_chat(state: ServeState, endpoint: str, model: str, prompt, text: str, use: dict, seconds: float) -> None:
    def write(tracker) -> None:
        params = {"endpoint": endpoint, "model": model, "answer": text[:500], "kb": "(closed book)"}
        run_id = tracker.start(QUERY, f"api {endpoint}", params, tags={"source": "api"})
        new = use["completion_tokens"]
        metrics = {"generation_s": seconds, "prompt_tokens": use["prompt_tokens"], "new_tokens": new}
        tracker.log_metrics(run_id, metrics | {"tokens_per_s": new / seconds if seconds else 0.0})
        tracker.log_dict(run_id, {"prompt": prompt, "answer": text}, "request.json")
        tracker.end(run_id)

    state.log(write)


def answer_chat(state: ServeState, body: ChatRequest) -> dict:
    target = target_of(state, body, body.rag.kb if body.rag else "")
    messages = body.plain_messages()
    with state.manager.use(target.spec) as generator:
        if target.kb:
            pipeline, question, k = rag_pipeline(state, body, target.kb, target.spec, generator)
            answer = pipeline.answer(question, k)
            state.log(lambda tracker: log_query(tracker, answer, target.kb, generator.name, k))
            use = usage(answer.prompt_tokens, answer.new_tokens)
            finish = finish_reason(answer.new_tokens, pipeline.sampling)
            return chat_response(body.model, answer.answer, finish, use, {"sources": sources_of(answer)})
        sampling = sampling_of(body, body.max_completion_tokens or body.max_tokens)
        if hasattr(generator, "encode"):
            check_fits(generator, len(generator.encode(messages)), sampling)
        began = time.perf_counter()
        done = generator.generate([messages], sampling)[0]
    use = usage(done.prompt_tokens, done.new_tokens)
    log_chat(state, "chat", generator.name, messages, done.text, use, time.perf_counter() - began)
    return chat_response(body.model, done.text, finish_reason(done.new_tokens, sampling), use)


def answer_completion(state: ServeState, body: CompletionRequest) -> dict:
    target = target_of(state, body)
    sampling = sampling_of(body, body.max_tokens, 16)  # the OpenAI API's default for completions
    with state.manager.use(target.spec) as generator:
        rows = raw_rows(generator, body.prompts(), sampling)
        began = time.perf_counter()
        done = generator.generate_rows(rows, sampling)
    use = usage(sum(d.prompt_tokens for d in done), sum(d.new_tokens for d in done))
    log_chat(state, "completions", generator.name, body.prompts(), done[0].text, use, time.perf_counter() - began)
    return completion_response(body.model, [(d.text, finish_reason(d.new_tokens, sampling)) for d in done], use)


def raw_rows(generator, prompts: list[str], sampling: SamplingSpec) -> list[list[int]]:
    if not hasattr(generator, "prompt_row"):
        raise ApiError(400, f"{generator.name} is a remote model: ask it for chat completions.")
    rows = [generator.prompt_row(p) for p in prompts]
    for row in rows:
        check_fits(generator, len(row), sampling)
    return rows


def open_chat_stream(state: ServeState, body: ChatRequest) -> Iterator[str]:
    """Borrow the model and check the request (errors here are plain responses), then stream its events."""
    target = target_of(state, body, body.rag.kb if body.rag else "")
    held = contextlib.ExitStack()
    generator = held.enter_context(state.manager.use(target.spec))
    try:
        messages = body.plain_messages()
        if target.kb:
            pipeline, question, k = rag_pipeline(state, body, target.kb, target.spec, generator)
            pieces, sampling = pipeline.stream(question, k), pipeline.sampling
        else:
            sampling = sampling_of(body, body.max_completion_tokens or body.max_tokens)
            if hasattr(generator, "encode"):
                check_fits(generator, len(generator.encode(messages)), sampling)
            pieces = generator.stream(messages, sampling)
    except BaseException:
        held.close()
        raise
    return chat_events(state, body, target, generator, messages, pieces, sampling, held)


def chat_events(state, body, target, generator, messages, pieces, sampling, held) -> Iterator[str]:
    cid, began, text = new_id("chatcmpl"), time.perf_counter(), ""
    with held:
        yield sse(chat_chunk(cid, body.model, {"role": "assistant", "content": ""}))
        for piece in pieces:
            text += piece
            yield sse(chat_chunk(cid, body.model, {"content": piece}))
        answer = getattr(pieces, "result", None)
        if answer is not None:  # RAG: the finished answer and its sources close the stream
            state.log(lambda tracker: log_query(tracker, answer, target.kb, generator.name, len(answer.hits)))
            use = usage(answer.prompt_tokens, answer.new_tokens)
            extra = {"answer": answer.answer, "sources": sources_of(answer)}
        else:
            use = usage(generator.count_tokens(generator.render(messages)), generator.count_tokens(text))
            log_chat(state, "chat", generator.name, messages, text, use, time.perf_counter() - began)
            extra = {}
        yield sse(chat_chunk(cid, body.model, {}, finish_reason(use["completion_tokens"], sampling), extra))
        if body.include_usage():
            yield sse({"id": cid, "object": "chat.completion.chunk", "model": body.model, "choices": [], "usage": use})
        yield sse("[DONE]")


def open_completion_stream(state: ServeState, body: CompletionRequest) -> Iterator[str]:
    if len(body.prompts()) != 1:
        raise ApiError(400, "A streamed completion takes one prompt.")
    target = target_of(state, body)
    sampling = sampling_of(body, body.max_tokens, 16)
    held = contextlib.ExitStack()
    generator = held.enter_context(state.manager.use(target.spec))
    try:
        row = raw_rows(generator, body.prompts(), sampling)[0]
    except BaseException:
        held.close()
        raise
    return completion_events(state, body, generator, row, sampling, held)


def completion_events(state, body, generator, row, sampling, held) -> Iterator[str]:
    cid, began, text = new_id("cmpl"), time.perf_counter(), ""
    with held:
        for piece in generator.stream_row(row, sampling):
            text += piece
            yield sse(completion_chunk(cid, body.model, piece))
        use = usage(len(row), generator.count_tokens(text))
        log_chat(state, "completions", generator.name, body.prompts(), text, use, time.perf_counter() - began)
        yield sse(completion_chunk(cid, body.model, "", finish_reason(use["completion_tokens"], sampling)))
        yield sse("[DONE]")
