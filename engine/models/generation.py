"""Text generation with a loaded model: chat template, batched (left padding), streaming."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence

from engine.models.batching import MIN_SHARED_PREFIX, common_prefix_length, expand, pad_rows, prefill
from engine.models.loader import LoadedModel, load_model
from engine.models.sampling import Completion, Messages, SamplingSpec, cut_at_stop, until_stop
from engine.models.spec import ModelSpec, is_remote, spec_for

# Prompt-lookup decoding for the one-answer stream: draft tokens are copied from n-grams of
# the prompt and checked in one forward pass. Greedy output is unchanged; grounded answers
# copy from their sources, so on a CPU the stream finishes 1.2-2x sooner (measured on the
# docs KB). transformers supports it for one sequence at a time, so batches do not use it.
PROMPT_LOOKUP_TOKENS = 10


class Generator:
    """Generates answers from chat messages with one loaded model.

    Calls are serialized with a lock: the Streamlit server shares one generator between
    sessions, and two concurrent ``generate`` calls would only compete for the same cores.
    """

    def __init__(self, loaded: LoadedModel, shared_prefix: bool = True):
        self.loaded = loaded
        self.shared_prefix = shared_prefix
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self.lock = threading.Lock()
        self.last_prefix: tuple[tuple[int, ...], object] = ((), None)  # (tokens, their cache): see prefix_cache

        from engine.models.decoder import decoder_for  # noqa: PLC0415 - loads torch

        self.decoder = decoder_for(loaded)  # the fast one-answer path, where the model has one

    def warm_up_if_enabled(self, background: bool = True) -> None:
        """``warm_up`` unless ``STUDIO_COMPILE_DECODER=0`` (tests: a minute of CPU per model)."""
        if os.environ.get("STUDIO_COMPILE_DECODER", "1") != "0":
            self.warm_up(background)

    def warm_up(self, background: bool = True) -> None:
        """Compile the fast decoder, if any (until then it runs uncompiled, a third slower)."""
        if self.decoder is not None and not self.decoder.compiled.is_set():
            self.decoder.compile_in_background() if background else self.decoder.compile()

    def decoding(self) -> str:
        """How one answer is decoded, in words: the fast decoder's state, or transformers' generate."""
        return self.decoder.describe() if self.decoder is not None else "transformers generate"

    def fast(self, prompt_tokens: int, sampling: SamplingSpec) -> bool:
        """Whether an answer of this length goes through the fast decoder."""
        return self.decoder is not None and self.decoder.fits(prompt_tokens, sampling.max_new_tokens)

    def decode(self, row: list[int], sampling: SamplingSpec, forced: bool = False) -> Iterator[int]:
        """The fast decoder's new tokens for one prompt, up to the end-of-sequence token or a stop
        string (``forced``: exactly ``max_new_tokens``, for timing). The caller holds the lock."""
        ends = set() if forced else self.end_tokens()
        from engine.models.decoder import chooser  # noqa: PLC0415 - loads torch

        choose = chooser(sampling.temperature, sampling.top_p, sampling.seed)
        new: list[int] = []
        for token in self.decoder.decode(row, sampling.max_new_tokens, choose, ends.__contains__):
            new.append(token)
            yield token
            if sampling.stop and any(s in self.tokenizer.decode(new) for s in sampling.stop):
                return

    @property
    def name(self) -> str:
        spec = self.loaded.spec
        return f"{spec.name}+{spec.adapter}" if spec.adapter else spec.name

    def render(self, messages: Messages) -> str:
        return render(self.tokenizer, messages)

    def encode(self, messages: Messages) -> list[int]:
        return encode(self.tokenizer, messages)

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False).input_ids)

    def generate_kwargs(self, sampling: SamplingSpec) -> dict:
        kwargs = {
            "max_new_tokens": sampling.max_new_tokens,
            "pad_token_id": self.tokenizer.pad_token_id,
            "eos_token_id": self.tokenizer.eos_token_id,
            "do_sample": sampling.temperature > 0,
        }
        if sampling.temperature > 0:
            kwargs.update(temperature=sampling.temperature, top_p=sampling.top_p)
        else:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        if sampling.stop:
            kwargs.update(stop_strings=list(sampling.stop), tokenizer=self.tokenizer)
        return kwargs

    def generate(
        self,
        conversations: Sequence[Messages],
        sampling: SamplingSpec = SamplingSpec(),
        batch_size: int = 8,
        on_batch: Callable[[int, int], None] | None = None,
    ) -> list[Completion]:
        """Answer many conversations, batched; results come back in the input order.

        Prompts are sorted by length so that each batch pads little, and the prompt prefix
        they all share is computed once (see :mod:`engine.models.batching`).
        ``on_batch(done, total)`` is called after each batch.
        """
        return self.generate_rows([self.encode(m) for m in conversations], sampling, batch_size, on_batch)

    def complete(self, prompts: Sequence[str], sampling: SamplingSpec = SamplingSpec()) -> list[Completion]:
        """Continue raw prompt texts (no chat template), as ``/v1/completions`` does."""
        return self.generate_rows([self.prompt_row(p) for p in prompts], sampling)

    def prompt_row(self, prompt: str) -> list[int]:
        """The token ids of a raw prompt, with the tokenizer's beginning-of-sequence token where it adds one."""
        return self.tokenizer(prompt).input_ids

    def generate_rows(
        self,
        rows: list[list[int]],
        sampling: SamplingSpec = SamplingSpec(),
        batch_size: int = 8,
        on_batch: Callable[[int, int], None] | None = None,
    ) -> list[Completion]:
        """:meth:`generate` for prompts given as token ids."""
        import torch

        if all(self.fast(len(r), sampling) for r in rows):
            return self.generate_fast(rows, sampling, on_batch)
        shared = common_prefix_length(rows) if self.shared_prefix else 0
        prefix = rows[0][:shared] if shared >= MIN_SHARED_PREFIX else []
        prefix_cache = self.prefix_cache(prefix) if prefix else None
        order = sorted(range(len(rows)), key=lambda i: -len(rows[i]))
        results: list[Completion | None] = [None] * len(rows)
        kwargs = self.generate_kwargs(sampling)
        for start in range(0, len(order), max(1, batch_size)):
            idx = order[start : start + batch_size]
            input_ids, mask = pad_rows([rows[i][len(prefix) :] for i in idx], self.tokenizer.pad_token_id, prefix)
            if prefix_cache is not None:
                kwargs["cache"] = expand(prefix_cache, len(idx))
            began = time.perf_counter()
            with self.lock, torch.inference_mode():
                if sampling.seed is not None:
                    torch.manual_seed(sampling.seed)
                out = self.model.generate(
                    input_ids=input_ids.to(self.loaded.device), attention_mask=mask.to(self.loaded.device), **kwargs
                )
            seconds = time.perf_counter() - began
            new = out[:, input_ids.shape[1] :]
            for row, i in enumerate(idx):
                tokens = self.strip_padding(new[row].tolist())
                text = self.tokenizer.decode(tokens, skip_special_tokens=True)
                results[i] = Completion(
                    text=cut_at_stop(text, sampling.stop),
                    prompt_tokens=len(rows[i]),
                    new_tokens=len(tokens),
                    seconds=seconds,
                )
            if on_batch:
                on_batch(min(start + batch_size, len(order)), len(order))
        return results  # type: ignore[return-value]

    def prefix_cache(self, prefix: list[int]):
        """The key/value cache of a shared prompt prefix, kept for the next call: answering one prompt several
        ways (greedy, then sampled: engine.preferences.sampling) reads it once. Each batch extends a copy."""
        if self.last_prefix[0] != tuple(prefix):
            self.last_prefix = ((), None)  # the old cache is freed before the new one is made
            self.last_prefix = (tuple(prefix), prefill(self.model, prefix, self.loaded.device))
        return self.last_prefix[1]

    def generate_fast(self, rows: list[list[int]], sampling: SamplingSpec, on_batch) -> list[Completion]:
        """One answer after another through the fast decoder: as fast as a batch on a CPU, and
        the answers are the ones the Query page streams. Prompts that share a beginning (a
        template's examples) read it once: the decoder keeps its cache between answers."""
        results = []
        for n, row in enumerate(rows):
            began = time.perf_counter()
            with self.lock:
                tokens = list(self.decode(row, sampling))
            text = cut_at_stop(self.tokenizer.decode(tokens, skip_special_tokens=True), sampling.stop)
            results.append(
                Completion(
                    text=text, prompt_tokens=len(row), new_tokens=len(tokens), seconds=time.perf_counter() - began
                )
            )
            if on_batch and (n + 1 == len(rows) or (n + 1) % 8 == 0):
                on_batch(n + 1, len(rows))
        return results

    def end_tokens(self) -> set[int]:
        """The end-of-sequence token ids: the tokenizer's and the model's generation config's."""
        ends, config = set(), getattr(self.model, "generation_config", None)
        for eos in (self.tokenizer.eos_token_id, getattr(config, "eos_token_id", None)):
            ends |= {eos} if isinstance(eos, int) else set(eos or [])
        return ends

    def strip_padding(self, tokens: list[int]) -> list[int]:
        """Generated tokens up to and excluding the first end-of-sequence token."""
        ends = self.end_tokens() | {self.tokenizer.pad_token_id}
        for n, tok in enumerate(tokens):
            if tok in ends:
                return tokens[:n]
        return tokens

    def stream(self, messages: Messages, sampling: SamplingSpec = SamplingSpec()) -> Iterator[str]:
        """Yield the answer's text piece by piece as it is generated."""
        return self.stream_row(self.encode(messages), sampling)

    def stream_row(self, row: list[int], sampling: SamplingSpec = SamplingSpec()) -> Iterator[str]:
        """:meth:`stream` for a prompt given as token ids."""
        import torch
        from transformers import TextIteratorStreamer

        ids = torch.tensor([row], device=self.loaded.device)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=300)
        errors: list[BaseException] = []
        kwargs = self.generate_kwargs(sampling)
        if sampling.temperature == 0:
            kwargs["prompt_lookup_num_tokens"] = PROMPT_LOOKUP_TOKENS

        def work() -> None:
            try:
                with self.lock, torch.inference_mode():
                    if self.fast(len(row), sampling):
                        streamer.put(ids[0])  # the prompt, which the streamer skips
                        for token in self.decode(row, sampling):
                            streamer.put(torch.tensor([token]))
                        streamer.end()
                        return
                    if sampling.seed is not None:
                        torch.manual_seed(sampling.seed)
                    self.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), **kwargs, streamer=streamer)
            except BaseException as exc:  # surfaced in the consumer's thread below
                errors.append(exc)
                streamer.end()

        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        yield from until_stop(streamer, sampling.stop)
        thread.join()
        if errors:
            raise errors[0]


def render(tokenizer, messages: Messages) -> str:
    """The prompt text for chat messages, ending where the assistant's answer starts."""
    prefilled = bool(messages) and messages[-1]["role"] == "assistant"  # the answer's start is given
    if tokenizer.chat_template:
        return tokenizer.apply_chat_template(
            messages, add_generation_prompt=not prefilled, continue_final_message=prefilled, tokenize=False
        )
    # Base models without a chat template: plain role-prefixed turns.
    turns = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
    return "\n\n".join(turns) + ("" if prefilled else "\n\nAssistant:")


def encode(tokenizer, messages: Messages) -> list[int]:
    """The token ids of :func:`render`'s prompt."""
    return tokenizer(render(tokenizer, messages), add_special_tokens=False).input_ids


def load_generator(spec=None, settings=None) -> Generator:
    """A generator for ``spec``: a ModelSpec, a model source string (see ``spec_for``), or None
    for the bundled default model; a remote source (``openai:...``) answers through its server."""
    spec = spec if isinstance(spec, ModelSpec) else spec_for(spec)
    if is_remote(spec.source):
        from engine.models.remote import RemoteGenerator  # noqa: PLC0415 - it builds on this module

        return RemoteGenerator(spec)
    return Generator(load_model(spec, settings))
