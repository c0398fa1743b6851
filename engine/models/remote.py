"""Models behind an OpenAI-compatible server (llama.cpp's server, Ollama, vLLM, the Studio's own
``engine serve``), used wherever the Studio takes a model: the source ``openai:<base_url>#<model>``.

A :class:`RemoteGenerator` answers like a local :class:`~engine.models.generation.Generator` (the
same ``generate`` and ``stream``), so the Query page, an evaluation, QA generation, the judge and an
A/B variant take it as they take a local model. Its key comes from an environment variable
(``STUDIO_REMOTE_API_KEY``, else ``OPENAI_API_KEY``) and only when the server asks for one; a server
that is down or slow is a sentence (:class:`~engine.errors.InputError`), never a hang.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import urlparse

from engine.errors import InputError, first_line
from engine.models.sampling import Completion, Messages, SamplingSpec, cut_at_stop, until_stop
from engine.models.spec import ModelSpec, parse_remote
from engine.settings import Settings
from engine.write_policy import write_atomic

KEY_VARIABLES = ("STUDIO_REMOTE_API_KEY", "OPENAI_API_KEY")
TIMEOUT_S = float(os.environ.get("STUDIO_REMOTE_TIMEOUT", "120"))
RETRIES = 2  # the client's own retries (connection errors, 408/429/5xx), with backoff
CONNECT_TIMEOUT_S = 5.0
# Requests in flight at once for a batch: a local server answers them with its own batching or queue.
PARALLEL_REQUESTS = 4


def api_key() -> str:
    """The key from the environment; servers that need none get a placeholder (the client insists on one)."""
    return next((os.environ[v] for v in KEY_VARIABLES if os.environ.get(v)), "none")


@dataclass
class RemoteModel:
    """What stands for a loaded model: no weights here (0 bytes), the server as its device."""

    spec: ModelSpec
    device: str
    model: object = None
    tokenizer: object = None
    load_seconds: float = 0.0
    from_cache: bool = False
    served: list[str] = field(default_factory=list)


class RemoteGenerator:
    """Generates answers through an OpenAI-compatible chat completions endpoint."""

    def __init__(self, spec: ModelSpec, timeout_s: float = TIMEOUT_S, check: bool = True):
        from openai import OpenAI, Timeout  # noqa: PLC0415 - a second of imports that local models never need

        self.base_url, self.remote_model = parse_remote(spec.source)
        self.client = OpenAI(
            base_url=self.base_url,
            api_key=api_key(),
            timeout=Timeout(timeout_s, connect=CONNECT_TIMEOUT_S),
            max_retries=RETRIES,
        )
        began = time.perf_counter()
        self.loaded = RemoteModel(spec=spec, device=f"remote ({urlparse(self.base_url).netloc})")
        if check:
            self.loaded.served = self.check()
        self.loaded.load_seconds = time.perf_counter() - began
        self.model = None
        self.tokenizer = None
        self.decoder = None

    @property
    def name(self) -> str:
        return self.loaded.spec.name

    def check(self) -> list[str]:
        """The server's model names; a server that is down, refuses the key or lacks the model says so."""
        names = self.call(lambda: [m.id for m in self.client.models.list()])
        if names and self.remote_model not in names:
            raise InputError(
                f"The server at {self.base_url} has no model {self.remote_model!r}; it serves: {', '.join(names)}."
            )
        return names

    def call(self, request: Callable):
        """Run one client request, its errors as sentences."""
        import openai  # noqa: PLC0415 - see __init__

        where = f"The model server at {self.base_url}"
        try:
            return request()
        except openai.APITimeoutError as e:
            raise InputError(f"{where} did not answer within {TIMEOUT_S:.0f} s (tried {RETRIES + 1} times).") from e
        except openai.APIConnectionError as e:
            raise InputError(f"{where} cannot be reached: is it running, and is the address right?") from e
        except openai.AuthenticationError as e:
            raise InputError(f"{where} refused the key: set {KEY_VARIABLES[0]} to its API key.") from e
        except openai.NotFoundError as e:
            raise InputError(f"{where} does not know model {self.remote_model!r}: {error_text(e)}") from e
        except openai.APIStatusError as e:
            raise InputError(f"{where} answered {e.status_code}: {error_text(e)}") from e

    def warm_up_if_enabled(self, background: bool = True) -> None:
        """Nothing to compile here (the manager asks every generator)."""

    def decoding(self) -> str:
        return f"remote: {self.remote_model} at {self.base_url}"

    def fast(self, prompt_tokens: int, sampling: SamplingSpec) -> bool:
        return False

    def render(self, messages: Messages) -> str:
        """The messages as text (for logs and token estimates: the server applies its own template)."""
        return "\n\n".join(f"{m['role']}: {m['content']}" for m in messages)

    def count_tokens(self, text: str) -> int:
        """An estimate (about 4 characters a token): the server's tokenizer is not here."""
        return max(1, round(len(text) / 4)) if text else 0

    def request(self, messages: Messages, sampling: SamplingSpec, stream: bool = False) -> dict:
        kwargs = {
            "model": self.remote_model,
            "messages": list(messages),
            "max_tokens": sampling.max_new_tokens,
            "temperature": sampling.temperature,
            "stream": stream,
        }
        if sampling.temperature > 0:
            kwargs["top_p"] = sampling.top_p
        if sampling.stop:
            kwargs["stop"] = list(sampling.stop)[:4]  # the API takes up to 4
        if sampling.seed is not None:
            kwargs["seed"] = sampling.seed
        return kwargs

    def answer(self, messages: Messages, sampling: SamplingSpec) -> Completion:
        began = time.perf_counter()
        response = self.call(lambda: self.client.chat.completions.create(**self.request(messages, sampling)))
        text = response.choices[0].message.content or "" if response.choices else ""
        usage = response.usage
        return Completion(
            text=cut_at_stop(text, sampling.stop),
            prompt_tokens=usage.prompt_tokens if usage else self.count_tokens(self.render(messages)),
            new_tokens=usage.completion_tokens if usage else self.count_tokens(text),
            seconds=time.perf_counter() - began,
        )

    def generate(
        self,
        conversations: Sequence[Messages],
        sampling: SamplingSpec = SamplingSpec(),
        batch_size: int = 8,
        on_batch: Callable[[int, int], None] | None = None,
    ) -> list[Completion]:
        """Answer many conversations, a few requests in flight at once; results in the input order."""
        results: list[Completion] = []
        with ThreadPoolExecutor(max_workers=max(1, min(PARALLEL_REQUESTS, batch_size))) as pool:
            for start in range(0, len(conversations), max(1, batch_size)):
                batch = conversations[start : start + batch_size]
                results += list(pool.map(lambda m: self.answer(m, sampling), batch))
                if on_batch:
                    on_batch(len(results), len(conversations))
        return results

    def stream(self, messages: Messages, sampling: SamplingSpec = SamplingSpec()) -> Iterator[str]:
        """Yield the answer's text piece by piece (server-sent events)."""
        chunks = self.call(lambda: self.client.chat.completions.create(**self.request(messages, sampling, True)))
        with chunks:
            pieces = (chunk.choices[0].delta.content if chunk.choices else None for chunk in chunks)
            yield from until_stop(pieces, sampling.stop)


def error_text(error) -> str:
    """The message inside an OpenAI-style error body, else the error's first line."""
    body = getattr(error, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
    return first_line(error)


SPEED_FILE = "remote-speeds.json"
SPEED_PROMPT = [{"role": "user", "content": "Name three rivers in Europe, in one sentence."}]


def measure_speed(generator: RemoteGenerator, settings: Settings, new_tokens: int = 32) -> dict:
    """Time one short greedy answer from the server and keep it (the catalog lists it beside the model)."""
    done = generator.answer(SPEED_PROMPT, SamplingSpec(max_new_tokens=new_tokens))
    speed = {
        "seconds": round(done.seconds, 3),
        "new_tokens": done.new_tokens,
        "tokens_per_s": round(done.new_tokens / done.seconds, 2) if done.seconds > 0 else 0.0,
        "measured": time.strftime("%Y-%m-%d %H:%M"),
    }
    speeds = read_speeds(settings) | {generator.loaded.spec.source: speed}
    write_atomic(settings.data_dir / SPEED_FILE, json.dumps(speeds, indent=1))
    return speed


def read_speeds(settings: Settings) -> dict[str, dict]:
    """The measured speed of each remote source (empty when none was measured, or the file is unreadable)."""
    try:
        data = json.loads((settings.data_dir / SPEED_FILE).read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def speed_label(settings: Settings, source: str) -> str:
    """``"12.3 tokens/s (2026-12-07 10:00)"``, or ``""`` where none was measured."""
    speed = read_speeds(settings).get(source)
    return f"{speed['tokens_per_s']:.1f} tokens/s ({speed['measured']})" if speed else ""
