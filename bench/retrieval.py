"""Distractor-setting retrieval on a HotpotQA split: the embedding ranking against a hop along
mentions of the first N passages (engine/rag/links.py), at k sources per question.

    .venv/bin/python bench/retrieval.py --split test --out docs/fine-tuning.md

Per setting: recall@k (share of gold paragraphs among the k), the share of questions with every
gold paragraph among the k, the share whose answer is in their text (yes/no count as found), and
the mean seconds to rank one question (embeddings come from the on-disk cache after a first run).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import emit  # noqa: E402


def main() -> int:
    from engine.evaluation.hotpotqa import distractor_retriever
    from engine.evaluation.metrics import answer_in_context
    from engine.evaluation.splits import split_items
    from engine.settings import load_settings

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--split", default="test", choices=["train", "validation", "test"])
    p.add_argument("--k", default="4,5,6", help="sources per question, comma-separated")
    p.add_argument("--follow", default="0,1,2,3", help="follow_links settings to compare, comma-separated")
    p.add_argument("--out")
    a = p.parse_args()
    settings = load_settings()
    items = split_items(settings.shared_data_dir / "hotpotqa-dev.jsonl", settings, a.split)
    questions = [item.question for item in items]
    distractor_retriever(items, settings).retrieve(questions, 1)  # embeds (or reads) everything once
    lines = [
        f"Retrieval on the {len(items)} {a.split} questions of the fixed split ({time.strftime('%Y-%m-%d')}; "
        "each question's own 10 paragraphs, MiniLM-L6 embeddings).",
        "",
        "| k | links followed from the first | recall@k | all gold in the k | answer in the k | ms / question |",
        "| ---: | --- | ---: | ---: | ---: | ---: |",
    ]
    for k in (int(x) for x in a.k.split(",")):
        for follow in (int(x) for x in a.follow.split(",")):
            retriever = distractor_retriever(items, settings, follow_links=follow)
            start = time.perf_counter()
            ranked = retriever.retrieve(questions, k)
            ms = 1000 * (time.perf_counter() - start) / len(items)
            recall = full = found = 0.0
            for item, hits in zip(items, ranked, strict=True):
                gold = set(item.supporting_titles)
                got = len(gold & {h.title for h in hits}) / len(gold)
                recall, full = recall + got, full + (got == 1)
                found += answer_in_context(item.answer, "\n".join(h.text for h in hits))
            n = len(items)
            name = f"{follow} passage{'s' if follow > 1 else ''}" if follow else "none (embedding ranking)"
            lines.append(f"| {k} | {name} | {recall / n:.3f} | {full / n:.3f} | {found / n:.3f} | {ms:.1f} |")
    emit("\n".join(lines) + "\n", a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
