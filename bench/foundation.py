"""The foundation issue's two targets in one run: batched evaluation against a
one-question-at-a-time loop (200 questions), and app cold start to first answer.

    .venv/bin/python bench/foundation.py --out docs/benchmarks.md

Cold start runs first, while this process holds no model. Run it with nothing else busy:
on a 2-core machine any other torch process halves both numbers.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import batching, cold_start  # noqa: E402
from bench.report import emit  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--limit", type=int, default=200)
    p.add_argument("--modes", nargs="+", default=["closed-book"])
    p.add_argument("--runs", type=int, default=3, help="cold starts")
    p.add_argument("--out", help="append the Markdown tables to this file")
    a = p.parse_args()
    began = time.perf_counter()
    cold = cold_start.measure(a.runs)
    batch = batching.measure(a.modes, a.limit)
    emit(f"### One run of `bench/foundation.py` ({time.perf_counter() - began:.0f} s)\n\n{batch}\n{cold}", a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
