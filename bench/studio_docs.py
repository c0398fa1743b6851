"""Questions about the Studio's own docs, answered as `engine ask` answers them: hits of the key fact.

    .venv/bin/python bench/studio_docs.py --out docs/answers.md

Builds the ``studio-docs`` knowledge base from the bundled README.md and docs/ in a temporary data
directory (as the app does at every start), then answers every question of
``tests/data/studio-docs-questions.jsonl`` through ``engine.rag.ask.ask`` with the default model and
settings (or the ones given). An answer is a hit when one of its question's key facts, normalized as
HotpotQA normalizes answers (lower case, no punctuation or articles), occurs in the normalized answer:
the key facts of a question are alternative wordings of one fact, any of which answers it.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import emit  # noqa: E402

QUESTIONS = Path(__file__).resolve().parent.parent / "tests" / "data" / "studio-docs-questions.jsonl"


def hit(answer: str, key_facts: list[str]) -> bool:
    """Whether one of ``key_facts`` occurs in ``answer``, both normalized."""
    from engine.evaluation.metrics import normalize_answer

    said = normalize_answer(answer)
    return any(normalize_answer(fact) in said for fact in key_facts)


def cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def main() -> int:
    from engine.models.generation import load_generator
    from engine.rag.ask import AskSpec, ask, ask_model_spec
    from engine.rag.embedder import Embedder
    from engine.rag.focus import FocusSpec
    from engine.rag.ingest import DOCS_KB, ensure_docs_kb
    from engine.rag.store import KnowledgeBaseStore
    from engine.rag.styles import ASK_STYLES
    from engine.settings import Settings, load_settings

    d = AskSpec()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--questions", default=str(QUESTIONS), help="JSONL: question, key_facts")
    p.add_argument("--k", type=int, default=d.k)
    p.add_argument("--style", default=d.style, choices=ASK_STYLES)
    p.add_argument("--source-chars", type=int, default=None, help="each source cut to N characters")
    p.add_argument("--focus", default="", help="SHORT,SENTENCES: sentences shown per style (0,0: whole chunks)")
    p.add_argument("--no-ground", action="store_true", help="sentence answers as the model wrote them")
    p.add_argument("--model", default="", help="default: the Studio's default model (as `engine ask`)")
    p.add_argument("--out", help="append the table to this Markdown file")
    a = p.parse_args()
    items = [json.loads(line) for line in Path(a.questions).read_text(encoding="utf-8").splitlines() if line.strip()]
    focus = d.focus
    if a.focus:
        short, sentences = (int(x) for x in a.focus.split(","))
        focus = FocusSpec(short, sentences) if short else None
    if a.no_ground and focus:
        focus = replace(focus, ground=False)
    spec = AskSpec(k=a.k, style=a.style, max_source_chars=a.source_chars, focus=focus)
    model = ask_model_spec(a.model)
    real = load_settings()
    real.models_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="studio-docs-bench-") as tmp:
        (Path(tmp) / "models").symlink_to(real.models_dir, target_is_directory=True)  # the converted model cache
        settings = Settings(data_dir=Path(tmp), shared_data_dir=real.shared_data_dir)
        store = KnowledgeBaseStore(settings, Embedder.shared())
        report = ensure_docs_kb(store)
        chunks = store.count(DOCS_KB)
        generator = load_generator(model, settings)
        rows, hits, start = [], 0, time.perf_counter()
        for n, item in enumerate(items, start=1):
            answer = ask(item["question"], spec, store, generator, settings)
            ok = hit(answer.answer, item["key_facts"])
            hits += ok
            rows.append(f"| {n} | {cell(item['question'])} | {answer.style} | {cell(answer.answer) or '(none)'} | "
                        f"{cell(' / '.join(item['key_facts']))} | {'yes' if ok else 'no'} |")  # fmt: skip
            print(f"{n}/{len(items)} {'hit ' if ok else 'miss'} {answer.answer[:100]}", file=sys.stderr)
        seconds = time.perf_counter() - start
    source_chars = spec.max_source_chars or "the prompt's default"
    f = spec.focus
    shown = "the prompt shows whole chunks"
    if f:
        grounded = ", sentence answers grounded" if f.ground else ""
        shown = f"the prompt shows the {f.short} (short) or {f.sentences} (sentences) best sentences{grounded}"
    lines = [
        f"**{hits} of {len(items)}** questions answered with their key fact ({time.strftime('%Y-%m-%d')}; "
        f"model {model.name} ({model.quantization if model.quantization != 'none' else model.dtype}), "
        f"k = {spec.k}, style {spec.style}, {shown}, sources cut to {source_chars} characters; the `studio-docs` "
        f"knowledge base of {report.documents} documents in {chunks} chunks; {seconds:.0f} s in all).",
        "",
        "| # | question | style | answer | key facts (any) | hit |",
        "| ---: | --- | --- | --- | --- | --- |",
        *rows,
    ]
    emit("\n".join(lines) + "\n", a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
