"""The forgetting check: base model against base + adapter on Dolly records the adapter never
trained on (``closed_qa``), scored with SQuAD token F1, with a paired bootstrap 95% CI.

    .venv/bin/python bench/forgetting.py --adapter hotpotqa-r16 --out docs/fine-tuning.md
    .venv/bin/python bench/forgetting.py --adapter hotpotqa-v7-dpo --against hotpotqa-v7   # against another adapter
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import emit  # noqa: E402


def main() -> int:
    from engine.allocator import restart_with_allocator

    restart_with_allocator(sys.argv)  # tcmalloc where installed: see engine.allocator
    from engine.evaluation.instructions import InstructionSpec, run_instructions
    from engine.models.generation import load_generator
    from engine.models.spec import DEFAULT_MODEL
    from engine.settings import load_settings
    from engine.stats import paired_bootstrap

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--adapter", required=True)
    p.add_argument("--against", default="", help="the adapter compared with (default: the base model)")
    p.add_argument("--category", default="closed_qa")
    p.add_argument("--limit", type=int, default=None)
    p.add_argument("--dtype", default="bfloat16")
    p.add_argument("--out")
    a = p.parse_args()
    settings = load_settings()
    spec = InstructionSpec(category=a.category, limit=a.limit)
    results = {}
    reference = f"base + `{a.against}`" if a.against else "base"
    for name, adapter in ((reference, a.against), (f"base + `{a.adapter}`", a.adapter)):
        generator = load_generator(replace(DEFAULT_MODEL, dtype=a.dtype, adapter=adapter), settings)
        results[name] = run_instructions(spec, generator, settings)
    (base, tuned) = results.values()
    diff = paired_bootstrap([r["f1"] for r in base.rows], [r["f1"] for r in tuned.rows])
    lines = [
        f"Forgetting check ({time.strftime('%Y-%m-%d')}): Dolly `{a.category}`, {len(base.rows)} records never "
        f"trained on, greedy, up to {spec.max_new_tokens} new tokens, {a.dtype}.",
        "",
        "| model | F1 | EM | answer tokens (mean) | minutes |",
        "| --- | ---: | ---: | ---: | ---: |",
        *(
            f"| {n} | {r.metrics['f1']:.1f} | {r.metrics['em']:.1f} | {r.metrics['new_tokens']:.0f} | "
            f"{r.seconds / 60:.1f} |"
            for n, r in results.items()
        ),  # fmt: skip
        "",
        f"F1 difference (`{a.adapter}` - {reference}): {diff.mean:+.1f}, 95% CI [{diff.low:+.1f}, {diff.high:+.1f}].",
        "",
    ]
    emit("\n".join(lines), a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
