"""The export round trip on a trained adapter: base + adapter exported as GGUF F16 and Q8_0, each file loaded
back through transformers (``gguf_file=``), and its greedy answers to HotpotQA test questions compared with the
merged float32 model's, token for token, asked as the Studio asks them (the adapter's prompt, distractor sources).

    .venv/bin/python bench/export_round_trip.py --adapter hotpotqa-v7 --out docs/serving.md

The test (tests/engine/models/test_gguf_export.py) checks the same on a random adapter, closed book, in CI; this
script measures it on the adapter a user deploys. The exports go to a temporary folder and are removed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import emit  # noqa: E402

FORMATS = {"gguf-f16": "F16", "gguf-q8_0": "Q8_0"}


def load_back(folder: Path, spec):
    """A Generator over the exported file as transformers loads it (float32), with the tokenizer it carries."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from engine.models.generation import Generator
    from engine.models.loader import LoadedModel

    name = next(p.name for p in folder.glob("*.gguf"))
    start = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(str(folder), gguf_file=name, dtype=torch.float32).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(folder), gguf_file=name)
    loaded = LoadedModel(replace(spec, name=name), model, tokenizer, "cpu", time.perf_counter() - start, False)
    return Generator(loaded), name


def main() -> int:
    from engine.allocator import restart_with_allocator

    restart_with_allocator(sys.argv)
    from engine.evaluation.runner import EvalSpec, run_evaluation
    from engine.models.adapters import AdapterRegistry
    from engine.models.export import export_model
    from engine.models.generation import load_generator
    from engine.rag.embedder import Embedder
    from engine.settings import load_settings

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--adapter", default="hotpotqa-v7", help="a trained adapter in the data dir's registry")
    p.add_argument("--questions", type=int, default=20, help="HotpotQA test questions")
    p.add_argument("--source-chars", type=int, default=450, help="each source cut to N characters (recipe 7: 450)")
    p.add_argument("--out", help="append the Markdown table to this file")
    a = p.parse_args()

    settings = load_settings()
    info = AdapterRegistry(settings).get(a.adapter)
    reference = replace(info.base_spec(), adapter=a.adapter, dtype="float32", quantization="none", device="cpu")
    spec = EvalSpec(mode="distractor", split="test", limit=a.questions, adapter=a.adapter,
                    max_source_chars=a.source_chars)  # fmt: skip
    embedder = Embedder.shared()

    def answers(generator) -> list[dict]:
        return run_evaluation(spec, generator, embedder, settings=settings).rows

    merged = answers(load_generator(reference, settings))
    lines = [
        f"Export round trip of base + `{a.adapter}` ({time.strftime('%Y-%m-%d')}, 2 CPU cores): greedy answers to "
        f"the first {a.questions} HotpotQA test questions (distractor sources, the adapter's prompt) from each "
        "exported file loaded back through transformers, against the merged float32 model's.",
        "",
        "| file | answers identical to the merged model's | F1 (merged: {:.1f}) | export s | size MB |".format(
            sum(r["f1"] for r in merged) / len(merged)
        ),
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    with tempfile.TemporaryDirectory(prefix="round-trip-") as tmp:
        for fmt in FORMATS:
            start = time.perf_counter()
            folder = export_model(settings, a.adapter, fmt, Path(tmp) / fmt)
            seconds = time.perf_counter() - start
            generator, name = load_back(folder, reference)
            rows = answers(generator)
            same = sum(x["raw"] == y["raw"] for x, y in zip(rows, merged, strict=True))
            size = (folder / name).stat().st_size / 1e6
            f1 = sum(r["f1"] for r in rows) / len(rows)
            lines.append(f"| {name} | {same} of {len(rows)} | {f1:.1f} | {seconds:.1f} | {size:.0f} |")
            for x, y in zip(rows, merged, strict=True):
                if x["raw"] != y["raw"]:
                    print(f"{name} differs on {x['question']!r}: {x['raw']!r} vs merged {y['raw']!r}", flush=True)
    emit("\n".join(lines), a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
