"""The guided loop on a development collection, timed step by step, with the comparison that matters:
the collection-trained adapter against the base (and against a HotpotQA-trained adapter, if given),
on questions written by people, retrieving from the collection's knowledge base.

    .venv/bin/python bench/collection_loop.py --work /tmp/dev-loop --out docs/collections.md
    .venv/bin/python bench/collection_loop.py --work /tmp/dev-loop --hotpotqa-adapter hotpotqa-v7 --out ...

``--work`` is a new folder (or one this script made, to continue): the collection is made there by
``bench/dev_collection.py`` (200 Wikipedia documents, HotpotQA's test-split questions about them; with
``--source dolly``, Dolly's ``closed_qa`` passages and their instructions as the questions) and
the loop runs in a data dir inside it, exactly as ``python -m engine loop`` runs (the same steps, the
same recipe), so the minutes are what a user waits. A HotpotQA adapter is looked up in the data dir
given by STUDIO_DATA_DIR and copied in before the loop runs: as in a user's data dir, the loop's training
continues it where it fits the collection's answers (``--start-from auto``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import emit  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def engine(data_dir: Path, *args: str) -> None:
    env = dict(os.environ, STUDIO_DATA_DIR=str(data_dir))
    subprocess.run([sys.executable, "-m", "engine", *args], cwd=ROOT, env=env, check=True)


def hotpotqa_row(data_dir: Path, adapter: str, record: dict) -> dict:
    """The HotpotQA adapter on the loop's questions, paired with the base and the collection adapter."""
    from engine.evaluation.runner import prepare_evaluation, run_evaluation
    from engine.loop import LoopSpec
    from engine.loop.steps import eval_spec
    from engine.settings import Settings, load_settings
    from engine.stats.bootstrap import paired_bootstrap

    settings = Settings(data_dir=data_dir, shared_data_dir=load_settings().shared_data_dir)
    style = record["steps"]["baseline"].get("style", "auto")  # asked as the loop asked the base and its adapter
    spec = eval_spec(LoopSpec.from_dict(record["spec"]), record, adapter, style)
    began = time.perf_counter()
    result = run_evaluation(spec, *prepare_evaluation(spec, settings), settings)
    scores = {r["id"]: r["f1"] for r in result.rows}
    base, tuned = record["steps"]["baseline"]["scores"], record["steps"]["evaluate"]["scores"]
    ids = [i for i in scores if i in base and i in tuned]
    return {"f1": result.metrics["f1"], "em": result.metrics["em"], "minutes": (time.perf_counter() - began) / 60,
            "vs_base": paired_bootstrap([base[i] for i in ids], [scores[i] for i in ids]),
            "collection_vs": paired_bootstrap([scores[i] for i in ids], [tuned[i] for i in ids])}  # fmt: skip


SOURCES = {
    "hotpotqa": ("Wikipedia documents",
                 "HotpotQA questions about them written by people (test split, never trained on)"),
    "dolly": ("Dolly `closed_qa` passages as documents",
              "of their records' instructions as questions with the people's responses as answers (never trained on)"),
}  # fmt: skip


def table(record: dict, hotpot: dict | None, adapter: str, source: str = "hotpotqa") -> str:
    steps, spec = record["steps"], record["spec"]
    base, tuned, compare = steps["baseline"], steps["evaluate"], steps["compare"]
    n = compare["n"]
    lines = [
        f"Development collection ({time.strftime('%Y-%m-%d')}, 2 CPU cores): {steps['ingest']['documents']} "
        f"{SOURCES[source][0]}, {n} {SOURCES[source][1]}, knowledge-base RAG (k = {spec['k']}), the default "
        f"model at the app's precision.", "",
        "| model | EM | F1 | F1 difference, 95% paired bootstrap CI |", "| --- | ---: | ---: | --- |",
        f"| base | {base['em']:.1f} | {base['f1']:.1f} | |",
        f"| base + collection adapter `{steps['train']['adapter']}` | {tuned['em']:.1f} | {tuned['f1']:.1f} | "
        f"{compare['gain']:+.1f} [{compare['low']:+.1f}, {compare['high']:+.1f}] over the base |",
    ]  # fmt: skip
    if hotpot:
        vb, cv = hotpot["vs_base"], hotpot["collection_vs"]
        lines.append(f"| base + HotpotQA adapter `{adapter}` | {hotpot['em']:.1f} | {hotpot['f1']:.1f} | "
                     f"{vb.mean:+.1f} [{vb.low:+.1f}, {vb.high:+.1f}] over the base; the collection adapter "
                     f"{cv.mean:+.1f} [{cv.low:+.1f}, {cv.high:+.1f}] over it |")  # fmt: skip
    lines += ["", "| step | minutes | result |", "| --- | ---: | --- |"]
    lines += [f"| {name} | {found['seconds'] / 60:.1f} | {found.get('summary', '')} |" for name, found in steps.items()]
    total = sum(found["seconds"] for found in steps.values()) / 60
    lines.append(f"| **the whole loop** | **{total:.1f}** | |")
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", required=True, help="a new folder, or one this script made (to continue)")
    p.add_argument("--documents", type=int, default=200)
    p.add_argument("--source", choices=sorted(SOURCES), default="hotpotqa", help="see bench/dev_collection.py")
    p.add_argument("--skip", type=int, default=0, help="see bench/dev_collection.py: another HotpotQA collection")
    p.add_argument("--hotpotqa-adapter", default="", help="a HotpotQA-trained adapter to compare with")
    p.add_argument("--out")
    a = p.parse_args()
    work = Path(a.work)
    data_dir = work / "data"
    if not (work / "questions.jsonl").is_file():
        subprocess.run([sys.executable, str(ROOT / "bench" / "dev_collection.py"), "--documents", str(a.documents),
                        "--source", a.source, "--skip", str(a.skip), "--out", str(work)], check=True)  # fmt: skip
        engine(data_dir, "data", "import", str(work / "questions.jsonl"), "--dataset", "dev-questions")
        engine(data_dir, "loop", "dev", "--folder", str(work / "documents"), "--questions", "dev-questions",
               "--until", "ingest")  # fmt: skip
    if a.hotpotqa_adapter:  # copied in first: the loop's training continues it where it fits (--start-from auto)
        import shutil

        from engine.settings import load_settings

        source = load_settings().data_dir / "adapters" / a.hotpotqa_adapter
        target = data_dir / "adapters" / a.hotpotqa_adapter
        if not target.exists():
            shutil.copytree(source, target)
    engine(data_dir, "loop", "dev")
    record = json.loads((data_dir / "loops" / "dev.json").read_text(encoding="utf-8"))
    hotpot = hotpotqa_row(data_dir, a.hotpotqa_adapter, record) if a.hotpotqa_adapter else None
    emit(table(record, hotpot, a.hotpotqa_adapter, a.source), a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
