"""App cold start to first answer, with a warm cache (model converted, docs indexed).

    .venv/bin/python bench/cold_start.py --runs 3 --out docs/benchmarks.md

Each run launches the app (``python -m ui.serve``, as ``make run`` does) as a fresh process, opens the Query page in
headless Chromium, asks "What is the Studio for?" and stops the clock when the answer box
shows. The data dir is prepared first (not timed): the bundled model converted to
safetensors, the studio-docs knowledge base indexed and the MLflow store created, as after
a first start.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report import emit  # noqa: E402
from engine.settings import Settings, load_settings  # noqa: E402
from tests.support.appserver import start_app  # noqa: E402

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
QUESTION = "What is the Studio for?"


def warm(data_dir: Path) -> None:
    """Convert the model and index the docs in ``data_dir``, as a first start would."""
    from engine.models.generation import load_generator
    from engine.rag.embedder import Embedder
    from engine.rag.ingest import ensure_docs_kb
    from engine.rag.store import KnowledgeBaseStore
    from engine.tracking import QUERY, Tracker

    settings = Settings(data_dir=data_dir)
    load_generator(settings=settings)
    ensure_docs_kb(KnowledgeBaseStore(settings, Embedder.shared()))
    Tracker(settings).experiment_id(QUERY)  # the MLflow store exists after a first start


def one_run(browser, data_dir: Path) -> tuple[float, float, str]:
    server = start_app(data_dir)
    try:
        ready = server.wait_healthy()
        page = browser.new_page()
        page.goto(f"{server.url}/Query")
        page.get_by_label("Question").fill(QUESTION)
        page.get_by_role("button", name="Ask").click()
        answer = page.get_by_test_id("stAlertContentSuccess")
        answer.wait_for(timeout=120_000)
        total = time.perf_counter() - server.started
        text = answer.inner_text().strip()
        page.close()
        return ready, total, text
    finally:
        server.stop()


FLOOR = """
import os, time
began = float(os.environ["FLOOR_T0"])  # set by the parent just before it starts this process
from engine.models.generation import load_generator
from engine.rag.embedder import Embedder
from engine.rag.pipeline import RagPipeline
from engine.rag.retriever import KnowledgeBaseRetriever
from engine.rag.store import KnowledgeBaseStore
from engine.settings import load_settings
pipeline = RagPipeline(KnowledgeBaseRetriever(KnowledgeBaseStore(load_settings(), Embedder.shared()), "studio-docs"),
                       load_generator())
"".join(pipeline.stream(%r, 3))
print(time.time() - began)
"""


def floor(data_dir: Path) -> float:
    """Seconds from process start to the same answer in a bare process: no server, no browser."""
    import os
    import subprocess

    # The parent's clock, not psutil's process create time: that one was off by a second here.
    env = {**os.environ, "STUDIO_DATA_DIR": str(data_dir), "FLOOR_T0": repr(time.time())}
    out = subprocess.run([sys.executable, "-c", FLOOR % QUESTION], env=env, capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parent.parent, check=True)  # fmt: skip
    return float(out.stdout.strip().splitlines()[-1])


def measure(runs: int = 3, data_dir: str | None = None) -> str:
    """Launch the app ``runs`` times and ask once each; the Markdown table."""
    from playwright.sync_api import sync_playwright

    given = data_dir
    data_dir = Path(given or tempfile.mkdtemp(prefix="studio-cold-"))
    if not given:
        models = load_settings().models_dir
        models.mkdir(parents=True, exist_ok=True)
        (data_dir / "models").symlink_to(models.resolve(), target_is_directory=True)
    warm(data_dir)
    results = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS)
        for n in range(runs):
            ready, total, text = one_run(browser, data_dir)
            results.append((ready, total))
            print(f"run {n + 1}: server healthy {ready:.1f} s, first answer {total:.1f} s: {text!r}", flush=True)
        browser.close()
    bare = [floor(data_dir) for _ in range(runs)]
    return (
        f"Cold start to first answer ({runs} runs, {time.strftime('%Y-%m-%d')}; warm cache; "
        f"`{QUESTION}` on the Query page).\n\n"
        "| measure | median (s) | min (s) | max (s) |\n| --- | ---: | ---: | ---: |\n"
        + "".join(
            f"| {name} | {statistics.median(v):.1f} | {min(v):.1f} | {max(v):.1f} |\n"
            for name, v in (
                ("server healthy", [r[0] for r in results]),
                ("first answer shown", [r[1] for r in results]),
                ("floor: the same answer in a bare Python process (no server, no browser)", bare),
            )
        )
    )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--data-dir", help="a data dir to use (default: a temp dir sharing the model cache)")
    p.add_argument("--out", help="append the Markdown table to this file")
    a = p.parse_args()
    emit(measure(a.runs, a.data_dir), a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
