"""The OpenAI-compatible HTTP API over the models the Studio manages (FastAPI; streaming as server-sent events).

``GET /v1/models``, ``POST /v1/chat/completions`` and ``POST /v1/completions``. Models come from the
same :class:`~engine.models.manager.ModelManager` the pages use (its budget, leases and hot swap), so a
model swapped on the Models page is the next request's ``default``. At most ``concurrency`` requests
are answered at once and up to ``queue`` wait; past that a request gets 429. Every error is an OpenAI
error object and the server goes on serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
from collections.abc import AsyncIterator, Iterator

import anyio
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool

from engine.errors import NotFoundError, StudioError, first_line
from engine.serve.answers import ServeState, answer_chat, answer_completion, open_chat_stream, open_completion_stream
from engine.serve.protocol import MAX_PROMPT_CHARS, ApiError, ChatRequest, CompletionRequest, error_body
from engine.serve.routing import model_names

MAX_BODY_BYTES = MAX_PROMPT_CHARS * 4 + 65_536  # UTF-8 text of the longest prompt accepted, and the rest


class Gate:
    """At most ``concurrency`` requests at work, at most ``queue`` waiting; past that, 429."""

    def __init__(self, concurrency: int, queue: int):
        self.concurrency, self.queue = concurrency, queue
        self.waiting = 0
        self._sem: asyncio.Semaphore | None = None

    async def enter(self) -> None:
        if self._sem is None:  # made inside the server's event loop
            self._sem = asyncio.Semaphore(self.concurrency)
        if self._sem.locked() and self.waiting >= self.queue:
            raise ApiError(429, f"The server is busy: {self.waiting} requests are waiting. Try again shortly.",
                           kind="rate_limit_exceeded", code="server_busy")  # fmt: skip
        self.waiting += 1
        try:
            await self._sem.acquire()
        finally:
            self.waiting -= 1

    def leave(self) -> None:
        self._sem.release()

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        await self.enter()
        try:
            yield
        finally:
            self.leave()


def build_app(state: ServeState) -> FastAPI:
    """The API over ``state``'s manager, store and tracker."""
    app = FastAPI(title="The Studio", docs_url=None, redoc_url=None, openapi_url=None)  # offline: no CDN docs
    gate = Gate(state.concurrency, state.queue)

    async def guard(request: Request) -> None:
        """The key (when the server has one) and the body's size, before the body is read."""
        if request.url.path.startswith("/v1/") and state.api_key:
            sent = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
            if not hmac.compare_digest(sent.encode(), state.api_key.encode()):
                message = "Missing or wrong API key: send 'Authorization: Bearer <key>'."
                raise ApiError(401, message, code="invalid_api_key")
        if int(request.headers.get("content-length") or 0) > MAX_BODY_BYTES:
            raise ApiError(413, f"The request is larger than {MAX_BODY_BYTES:,} bytes.", code="request_too_large")

    app.router.dependencies.append(Depends(guard))

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, exc: RequestValidationError):
        return JSONResponse(error_body(validation_message(exc.errors())), status_code=400)

    @app.exception_handler(StudioError)
    async def studio_error(request: Request, exc: StudioError):
        status, code = (404, "not_found") if isinstance(exc, NotFoundError) else (400, None)
        return JSONResponse(error_body(str(exc), code=code), status_code=status)

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception):
        body = error_body(f"The server failed on this request: {first_line(exc)}", kind="server_error")
        return JSONResponse(body, status_code=500)

    @app.get("/health")
    async def health():
        active = state.manager.active_spec
        return {"status": "ok", "model": active.name if active else None, "waiting": gate.waiting}

    @app.get("/v1/models")
    async def models():
        names = await run_in_threadpool(lambda: model_names(state.manager, state.settings, state.kb_names()))
        data = [{"id": n, "object": "model", "created": 0, "owned_by": "studio"} for n in names]
        return {"object": "list", "data": data}

    async def respond(body, answer, open_stream):
        """The answer as one response, or streamed: either way through the gate."""
        if not body.stream:
            async with gate.slot():
                return await run_in_threadpool(answer, state, body)
        return await streamed(gate, lambda: open_stream(state, body))

    @app.post("/v1/chat/completions")
    async def chat(body: ChatRequest):
        return await respond(body, answer_chat, open_chat_stream)

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest):
        return await respond(body, answer_completion, open_completion_stream)

    return app


async def streamed(gate: Gate, open_stream) -> StreamingResponse:
    """Server-sent events from ``open_stream()``; errors before the first event are plain error responses."""
    await gate.enter()
    try:
        events: Iterator[str] = await run_in_threadpool(open_stream)
    except BaseException:
        gate.leave()
        raise

    async def relay() -> AsyncIterator[str]:
        try:
            async for event in iterate_in_threadpool(events):
                yield event
        finally:  # also when the client goes away mid-stream: the slot is free for the next request
            gate.leave()
            with contextlib.suppress(ValueError):  # still running in its thread: it ends on its own
                events.close()

    return ClosingStream(relay(), media_type="text/event-stream")


class ClosingStream(StreamingResponse):
    """A stream whose generator is closed when the response ends, however it ends: starlette leaves it
    suspended when the client goes away, and its slot in the gate would never be given back."""

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            with anyio.CancelScope(shield=True):
                await self.body_iterator.aclose()


def validation_message(errors) -> str:
    """The first of pydantic's complaints as a sentence naming the field."""
    if not errors:
        return "The request is not valid."
    e = errors[0]
    if e.get("type") == "json_invalid":
        return f"The request body is not valid JSON: {e.get('ctx', {}).get('error', e.get('msg'))}."
    where = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
    return f"{where}: {e.get('msg', 'invalid')}"
