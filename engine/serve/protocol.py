"""The OpenAI wire format the server speaks: request bodies, error objects, responses and stream chunks.

Only what the Studio honours is accepted; a field it cannot honour (``n`` > 1, tools) is a 400 that
says so, not silently ignored. Two extensions: a ``rag`` field (``{"kb": ..., "k": ...}``) answers
over a knowledge base like a ``rag:<kb>`` model does, and a RAG answer carries its ``sources``.
"""

from __future__ import annotations

import json
import time
import uuid

from pydantic import BaseModel, ConfigDict, Field, field_validator

MAX_NEW_TOKENS = 2048
MAX_PROMPT_CHARS = 200_000  # before tokenizing: a prompt past this is refused without reading it


class ApiError(Exception):
    """An error the client gets as an OpenAI error object, with its HTTP status."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error", code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.kind, self.code = status, message, kind, code

    def body(self) -> dict:
        return error_body(self.message, self.kind, self.code)


def error_body(message: str, kind: str = "invalid_request_error", code: str | None = None, param=None) -> dict:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


class RagOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kb: str
    k: int = Field(default=8, ge=1, le=10)


class Message(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: str
    content: str | list | None = ""

    @field_validator("role")
    @classmethod
    def known_role(cls, role: str) -> str:
        if role not in ("system", "developer", "user", "assistant"):
            raise ValueError(f"role {role!r} is not one of system, developer, user, assistant")
        return role

    def text(self) -> str:
        """The content as text: a string, or the text parts of a list of content parts."""
        if isinstance(self.content, list):
            return "".join(p.get("text", "") for p in self.content if isinstance(p, dict) and p.get("type") == "text")
        return self.content or ""


class Sampling(BaseModel):
    """What both endpoints take to decode. Greedy by default: the Studio's answers are greedy."""

    model_config = ConfigDict(extra="ignore")
    model: str = "default"
    stream: bool = False
    max_tokens: int | None = Field(default=None, ge=1, le=MAX_NEW_TOKENS)
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int = 1
    stream_options: dict | None = None

    @field_validator("n")
    @classmethod
    def one_choice(cls, n: int) -> int:
        if n != 1:
            raise ValueError("only n=1 is served (one answer per request)")
        return n

    def stops(self) -> tuple[str, ...]:
        return (self.stop,) if isinstance(self.stop, str) else tuple(self.stop or ())

    def include_usage(self) -> bool:
        return bool((self.stream_options or {}).get("include_usage"))


class ChatRequest(Sampling):
    messages: list[Message] = Field(min_length=1)
    max_completion_tokens: int | None = Field(default=None, ge=1, le=MAX_NEW_TOKENS)
    rag: RagOptions | None = None
    tools: list | None = None

    @field_validator("tools")
    @classmethod
    def no_tools(cls, tools):
        if tools:
            raise ValueError("tools are not served")
        return tools

    def plain_messages(self) -> list[dict]:
        return [{"role": "system" if m.role == "developer" else m.role, "content": m.text()} for m in self.messages]


class CompletionRequest(Sampling):
    prompt: str | list[str]

    def prompts(self) -> list[str]:
        return [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:24]}"


def usage(prompt_tokens: int, completion_tokens: int) -> dict:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def chat_response(model: str, text: str, finish: str, use: dict, extra: dict | None = None) -> dict:
    message = {"role": "assistant", "content": text}
    return {
        "id": new_id("chatcmpl"),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": use,
        **(extra or {}),
    }


def completion_response(model: str, texts: list[tuple[str, str]], use: dict) -> dict:
    return {
        "id": new_id("cmpl"),
        "object": "text_completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": i, "text": text, "finish_reason": finish, "logprobs": None}
            for i, (text, finish) in enumerate(texts)
        ],
        "usage": use,
    }


def chat_chunk(cid: str, model: str, delta: dict, finish: str | None = None, extra: dict | None = None) -> dict:
    choices = [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]
    return {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
            "choices": choices, **(extra or {})}  # fmt: skip


def completion_chunk(cid: str, model: str, text: str, finish: str | None = None) -> dict:
    choices = [{"index": 0, "text": text, "finish_reason": finish, "logprobs": None}]
    return {"id": cid, "object": "text_completion", "created": int(time.time()), "model": model, "choices": choices}


def sse(data: dict | str) -> str:
    """One server-sent event."""
    return f"data: {data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)}\n\n"
