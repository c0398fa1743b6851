"""Speed and memory of one model configuration: load time, time to first token, decoding rate,
batched throughput, peak memory, and perplexity on a fixed text; llama.cpp measured the same way.

Every number comes from a real RAG prompt: a HotpotQA question with its paragraphs as sources,
cut to about ``prompt_tokens`` tokens. Generation is greedy and forced to its full length (the
end-of-sequence token is not allowed to stop it), so configurations are timed on the same work.
"""

from __future__ import annotations

import json
import math
import resource
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from engine.errors import InputError
from engine.machine import GB
from engine.models.batching import pad_rows
from engine.models.generation import SamplingSpec
from engine.rag.hits import Hit
from engine.rag.prompt import PromptTemplate

# Zero-shot, the sources one block without the template's cut of each source to 600 characters (which
# kept every prompt under about 270 tokens): the prompt's length is the sources', cut to the target.
TEMPLATE = PromptTemplate(examples=(), max_source_chars=1_000_000)
SHORT_ANSWER = 8  # new tokens of a typical short RAG answer (the Studio's default answer style)


@dataclass(frozen=True)
class SpeedSpec:
    """What the speed measurements run: prompt and answer lengths, batch sizes, repeats."""

    prompt_tokens: int = 300
    new_tokens: int = 64
    batch_sizes: tuple[int, ...] = (4, 16)
    batch_new_tokens: int = 32
    repeats: int = 3  # the median of this many timed runs, after one warm-up
    ppl_tokens: int = 1024  # perplexity over this many tokens of Wikipedia text, in windows of 512


def rag_prompts(
    shared_data: Path, count: int, target_tokens: int, encode: Callable[[list[dict]], list[int]]
) -> list[list[dict]]:
    """``count`` RAG conversations of the HotpotQA dev file, each cut to ``target_tokens`` (or a token more)."""
    prompts = []
    with (shared_data / "hotpotqa-dev.jsonl").open(encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)
            hits = [
                Hit(id=str(n), title=title, text=" ".join(sentences), source="hotpotqa", score=1.0)
                for n, (title, sentences) in enumerate(record["context"])
            ]
            sources = "\n".join(f"{h.title}: {h.text}" for h in hits)
            if len(encode(conversation(record["question"], sources))) < target_tokens:
                continue  # too short to reach the target: every prompt is at least that long
            low, high = 50, len(sources)
            while low < high:  # the fewest characters of sources that reach the target length
                mid = (low + high) // 2
                if len(encode(conversation(record["question"], sources[:mid]))) >= target_tokens:
                    high = mid
                else:
                    low = mid + 1
            prompts.append(conversation(record["question"], sources[:low]))
            if len(prompts) == count:
                return prompts
    return prompts


def conversation(question: str, sources: str) -> list[dict]:
    hits = [Hit(id="0", title="Sources", text=sources, source="hotpotqa", score=1.0)]
    return TEMPLATE.messages(question, hits) if sources else TEMPLATE.messages(question, None)


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up: first-call allocations and kernel selection are not what a user waits for twice
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def forced_generate(generator, rows: list[list[int]], new_tokens: int) -> None:
    """Greedy generation of exactly ``new_tokens`` for each row: through the fast decoder one after
    another where the generator answers that way, else as one left-padded batch."""
    import torch

    sampling = SamplingSpec(max_new_tokens=new_tokens)
    if all(generator.fast(len(row), sampling) for row in rows):
        for row in rows:
            with generator.lock:
                generator.decoder.forget()  # read every prompt in full, as llama.cpp is made to
                for _ in generator.decode(row, sampling, forced=True):
                    pass
        return

    ids, mask = pad_rows(rows, generator.tokenizer.pad_token_id, [])
    device = generator.loaded.device
    with generator.lock, torch.inference_mode():
        generator.model.generate(
            input_ids=ids.to(device),
            attention_mask=mask.to(device),
            max_new_tokens=new_tokens,
            min_new_tokens=new_tokens,
            do_sample=False,
            temperature=None,
            top_p=None,
            top_k=None,
            pad_token_id=generator.tokenizer.pad_token_id,
        )


def measure_generator(generator, spec: SpeedSpec, shared_data: Path) -> dict[str, float]:
    """TTFT, end-to-end time, decoding rate at batch 1 and throughput at each batch size."""
    return measure_runs(lambda rows, n: forced_generate(generator, rows, n), generator.encode, spec, shared_data)


def measure_runs(run: Callable[[list[list[int]], int], None], encode, spec: SpeedSpec, shared_data: Path) -> dict:
    """The speed figures of ``run(rows, new_tokens)`` (forced-length greedy generation) on RAG prompts."""
    most = max((1, *spec.batch_sizes))
    prompts = [encode(m) for m in rag_prompts(shared_data, most, spec.prompt_tokens, encode)]
    if len(prompts) < most:
        raise InputError(f"Only {len(prompts)} HotpotQA records reach {spec.prompt_tokens} tokens; {most} are needed.")
    one = prompts[:1]
    ttft = median_seconds(lambda: run(one, 1), spec.repeats)
    e2e = median_seconds(lambda: run(one, spec.new_tokens), spec.repeats)
    short = median_seconds(lambda: run(one, SHORT_ANSWER), spec.repeats)
    metrics = timing(len(one[0]), ttft, e2e, spec.new_tokens) | {"short_s": short}
    for size in spec.batch_sizes:
        seconds = median_seconds(lambda size=size: run(prompts[:size], spec.batch_new_tokens), 1)
        metrics[f"batch{size}_tok_s"] = size * spec.batch_new_tokens / seconds
    return metrics


def timing(prompt_tokens: int, ttft: float, e2e: float, new_tokens: int) -> dict[str, float]:
    """The batch-1 figures: end-to-end tokens/s counts the prompt's reading, decoding tokens/s does not."""
    return {
        "prompt_tokens": float(prompt_tokens),
        "ttft_s": ttft,
        "e2e_s": e2e,
        "e2e_tok_s": new_tokens / e2e,
        "decode_tok_s": (new_tokens - 1) / max(e2e - ttft, 1e-9),
    }


def fixed_text(shared_data: Path, chars: int = 20_000) -> str:
    """The perplexity text: the first Wikipedia passages of the shared data, about ``chars`` long."""
    parts, total = [], 0
    with (shared_data / "wiki-passages.jsonl").open(encoding="utf-8") as f:
        for line in f:
            text = json.loads(line)["text"]
            parts.append(text)
            total += len(text)
            if total >= chars:
                break
    return "\n\n".join(parts)


def perplexity(generator, text: str, tokens: int, window: int = 512) -> float:
    """exp(mean negative log-likelihood) of ``text``'s first ``tokens`` tokens, in windows of ``window``."""
    import torch

    ids = generator.tokenizer(text, return_tensors="pt").input_ids[0][:tokens]
    nll, count = 0.0, 0
    with generator.lock, torch.inference_mode():
        for start in range(0, len(ids) - 1, window):
            chunk = ids[start : start + window].unsqueeze(0).to(generator.loaded.device)
            if chunk.shape[1] < 2:
                break
            out = generator.model(input_ids=chunk, labels=chunk)
            nll += float(out.loss) * (chunk.shape[1] - 1)
            count += chunk.shape[1] - 1
    return math.exp(nll / count)


def peak_memory_gb(device: str) -> float:
    """This process's peak memory: the GPU's allocations on CUDA, else the peak resident set."""
    if device.startswith("cuda"):
        import torch

        return torch.cuda.max_memory_allocated() / GB
    # VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so a spawned process would report
    # its parent's peak when that was higher; the high-water mark belongs to this process's memory.
    status = Path("/proc/self/status")
    if status.is_file():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024 / GB
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / GB if sys.platform == "darwin" else peak * 1024 / GB  # bytes on macOS, KiB elsewhere


def measure_llama_cpp(gguf: Path, spec: SpeedSpec, shared_data: Path, encode, threads: int) -> dict[str, float]:
    """The same measurements through llama.cpp (``llama-cpp-python``) on the GGUF file itself.

    Prompts are tokenized with the Studio's tokenizer (the GGUF's own vocabulary) and given as token
    ids; the cache is reset before every call, so each one reads its prompt in full. llama.cpp runs
    one sequence at a time here: its batch figures are sequential throughput.
    """
    from llama_cpp import Llama

    start = time.perf_counter()
    llm = Llama(model_path=str(gguf), n_ctx=4096, n_threads=threads, n_batch=512, verbose=False)
    load = time.perf_counter() - start
    no_eos = {llm.token_eos(): -1e9}

    def run(rows: list[list[int]], new_tokens: int) -> None:
        for row in rows:
            llm.reset()
            llm.create_completion(prompt=row, max_tokens=new_tokens, temperature=0.0, logit_bias=no_eos)

    return {"load_s": load} | measure_runs(run, encode, spec, shared_data)
