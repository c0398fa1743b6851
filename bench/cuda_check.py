"""The CUDA paths, checked on a GPU machine: loading in fp16 / 8-bit / 4-bit nf4 and fp4 (bitsandbytes),
batched and streamed generation, quantizing a loaded model in memory, LoRA / QLoRA training steps
through the Studio's trainer, an adapter on a 4-bit base, and the benchmark's speed figures per precision.

    python bench/cuda_check.py --model-dir MODEL --data-dir DATA --out cuda.md

MODEL is a model folder (config and tokenizer; weights are optional: without them the model
is built with random weights, which is enough to exercise the paths where the bundled
weights cannot be copied). DATA holds hotpotqa-dev.jsonl. Prints and writes a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def model_folder(source: Path, work: Path) -> Path:
    """``source`` if it has weights, else a copy of it with random weights."""
    if any(source.glob("*.safetensors")):
        return source
    import shutil

    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    target = work / "random-model"
    shutil.copytree(source, target)
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(source)).save_pretrained(target)
    return target


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model-dir", required=True)
    p.add_argument("--data-dir", required=True)
    p.add_argument("--out")
    a = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="studio-cuda-"))
    os.environ["STUDIO_DATA_DIR"] = str(work / "data")
    os.environ["STUDIO_SHARED_DATA"] = str(Path(a.data_dir).resolve())

    import torch

    from engine.finetune.curve import read_curve
    from engine.finetune.examples import RagExampleSpec
    from engine.finetune.runs import run_dir_for
    from engine.finetune.spec import TrainSpec
    from engine.finetune.trainer import train
    from engine.models.generation import Generator, SamplingSpec
    from engine.models.loader import load_model
    from engine.models.spec import ModelSpec, resolve_device
    from engine.settings import load_settings

    settings = load_settings()
    device = resolve_device("auto")
    folder = model_folder(Path(a.model_dir).resolve(), work)
    lines = [f"Device: {torch.cuda.get_device_name(0)}; torch {torch.__version__}; auto device -> {device}.", "",
             "| path | result | seconds | peak GPU memory (MB) |", "| --- | --- | ---: | ---: |"]  # fmt: skip
    prompts = [[{"role": "user", "content": f"Question {n}: what is {n} plus {n}?"}] for n in range(8)]

    def record(name: str, fn) -> None:
        torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        try:
            result = fn()
        except Exception as exc:  # noqa: BLE001 - each path is reported, not fatal to the others
            result = f"FAILED: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        seconds = time.perf_counter() - start
        lines.append(f"| {name} | {result} | {seconds:.1f} | {torch.cuda.max_memory_allocated() / 2**20:.0f} |")
        print(lines[-1], flush=True)

    for quant in ("none", "8bit", "4bit", "4bit-fp4"):

        def generate(quant=quant) -> str:
            spec = ModelSpec(name="check", source=str(folder), gguf_file=None, quantization=quant)
            loaded = load_model(spec, settings)
            generator = Generator(loaded)
            out = generator.generate(prompts, SamplingSpec(max_new_tokens=16), batch_size=8)
            pieces = list(generator.stream(prompts[0], SamplingSpec(max_new_tokens=16)))
            dtype = next(loaded.model.parameters()).dtype
            return (f"loaded on {loaded.device} ({dtype}); 8 answers batched "
                    f"({sum(c.new_tokens for c in out)} tokens); stream {len(pieces)} pieces")  # fmt: skip

        record(f"load + generate, quantization {quant}", generate)

    for quant in ("none", "4bit"):

        def steps(quant=quant) -> str:
            name = f"cuda-{quant}"
            spec = TrainSpec(
                adapter=name, base=str(folder), quantization=quant, rag=RagExampleSpec(distractors=2),
                train_limit=128, batch_size=8, max_length=1024, val_limit=16, val_f1=False, stop_on="loss",
                patience=0, eval_every=8,
            )  # fmt: skip
            result = train(spec, settings, None, lambda f, m: None)
            rows = [r for r in read_curve(run_dir_for(name, settings)) if "loss" in r]
            rate = sum(r["tokens_per_s"] for r in rows[1:]) / max(1, len(rows) - 1)
            return (f"{result.steps} steps, loss {rows[0]['loss']:.2f} -> {rows[-1]['loss']:.2f}, "
                    f"{rate:.0f} tokens/s, adapter saved")  # fmt: skip

        record(f"LoRA training, base {quant}", steps)

    from engine.models.quantize import quantize_loaded

    for quant in ("8bit", "4bit"):

        def in_memory(quant=quant) -> str:
            loaded = load_model(ModelSpec(name="check", source=str(folder), gguf_file=None), settings)
            quantized = quantize_loaded(loaded, quant)
            layer = type(quantized.model.model.layers[0].mlp.up_proj).__name__
            out = Generator(quantized).generate(prompts, SamplingSpec(max_new_tokens=16), batch_size=8)
            return f"fp16 -> {quant} in memory in {quantized.load_seconds:.2f} s ({layer}); {len(out)} answers"

        record(f"quantize a loaded model, {quant}", in_memory)

    def adapter_on_4bit() -> str:
        spec = ModelSpec(name="check", source=str(folder), gguf_file=None, quantization="4bit", adapter="cuda-none")
        loaded = load_model(spec, settings)
        lora = sum("lora" in type(m).__module__ for m in loaded.model.modules())
        out = Generator(loaded).generate(prompts[:2], SamplingSpec(max_new_tokens=8))
        return f"adapter cuda-none on a 4-bit base: {lora} LoRA modules, {len(out)} answers"

    record("adapter on a 4-bit base", adapter_on_4bit)

    from engine.benchmark.speed import SpeedSpec, measure_generator

    speed = SpeedSpec(prompt_tokens=300, new_tokens=64, batch_sizes=(4, 16), batch_new_tokens=32, repeats=3)
    for quant in ("none", "8bit", "4bit"):

        def timings(quant=quant) -> str:
            spec = ModelSpec(name="check", source=str(folder), gguf_file=None, quantization=quant)
            m = measure_generator(Generator(load_model(spec, settings)), speed, Path(a.data_dir).resolve())
            return (f"TTFT {m['ttft_s'] * 1000:.0f} ms, 300+64 tokens {m['e2e_s']:.2f} s, "
                    f"decode {m['decode_tok_s']:.0f} tok/s, batch 4 {m['batch4_tok_s']:.0f}, "
                    f"batch 16 {m['batch16_tok_s']:.0f} tok/s")  # fmt: skip

        record(f"benchmark speed, {'float16' if quant == 'none' else quant}", timings)

    table = "\n".join(lines) + "\n"
    print(table)
    if a.out:
        Path(a.out).write_text(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
