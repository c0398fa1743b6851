"""``python -m engine data ...``: datasets from the shell (import, generate, topics, split, review, versions,
diff, augment, hard cases, export, knowledge-base refresh). Output is Markdown, ready for the docs."""

from __future__ import annotations

import argparse
import json
import sys

from engine.cli.rag import Here
from engine.configs import add_config_argument, parse_args
from engine.data import steps
from engine.data.augment import AugmentSpec
from engine.data.filters import FilterSpec
from engine.data.generation import GenerationSpec, generate_qa, teacher_spec
from engine.data.knowledge import IngestRun, refresh_job
from engine.data.review import read_decisions, save_review
from engine.data.splits import SplitSpec
from engine.data.topics import TopicSpec
from engine.errors import exit_status
from engine.knobs import add_knob_arguments, knob_values
from engine.models.generation import load_generator
from engine.qa.records import NORMALIZERS
from engine.qa.summary import diff
from engine.qa.versions import DatasetStore
from engine.rag.embedder import Embedder
from engine.settings import load_settings
from engine.tracking import Tracker


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m engine data", description="QA datasets: make, check and version them.")
    sub = p.add_subparsers(dest="command", required=True)
    im = sub.add_parser("import", help="import a JSONL/CSV file, a saved HF dataset folder or a hub name")
    im.add_argument("source")
    im.add_argument("--dataset", required=True)
    im.add_argument("--kind", default="auto", choices=["auto", *NORMALIZERS])
    im.add_argument("--skip-bad", action="store_true", help="leave malformed lines out instead of stopping")
    im.add_argument("--dedupe", action="store_true", help="keep one record of each repeated id instead of stopping")
    gen = sub.add_parser("generate", help="generate QA pairs from passages with the local model")
    add_knob_arguments(gen, GenerationSpec)
    add_knob_arguments(gen, FilterSpec)
    add_config_argument(
        gen, GenerationSpec, lambda spec: knob_values(GenerationSpec, spec) | knob_values(FilterSpec, spec.filters)
    )
    for name, helptext in (
        ("topics", "cluster a version into topics"),
        ("split", "80/10/10 split + leakage check"),
        ("augment", "add augmented copies"),
        ("hard-cases", "variants of what a run got wrong (a test miss: of its nearest training items)"),
        ("show", "a version's manifest and stats"),
        ("export", "write a version to a file"),
    ):
        sp = sub.add_parser(name, help=helptext)
        sp.add_argument("dataset")
        sp.add_argument("--version", default="", help="default: the newest")
        if name == "topics":
            add_knob_arguments(sp, TopicSpec)
        if name == "split":
            add_knob_arguments(sp, SplitSpec)
            sp.add_argument("--threshold", type=float, default=0.95, help="near-duplicate question cosine")
        if name in ("augment", "hard-cases"):
            sp.add_argument("--kinds", default="paraphrase,distractors,shuffle,typos")
        if name == "hard-cases":
            sp.add_argument("--run", required=True, help="the MLflow run id of an evaluation")
            sp.add_argument("--threshold", type=float, default=50.0, help="F1 (0-100) under which an answer is wrong")
        if name == "export":
            sp.add_argument("--to", required=True, help="a .jsonl or .csv file, or a folder (Hugging Face format)")
            sp.add_argument("--overwrite", action="store_true", help="replace an earlier export of the Studio there")
    rv = sub.add_parser("review", help="save a reviewed version: accepted, edited and rejected pairs")
    rv.add_argument("dataset", help="NAME or NAME@VERSION (default: the newest version)")
    rv.add_argument(
        "--decisions",
        default="",
        help="a JSON file: record id -> accept, reject or "
        '{"action": "edit", "question": ..., "answer": ...}; default: the decisions made on the page',
    )
    rv.add_argument("--only-reviewed", action="store_true", help="leave out the pairs without a decision")
    sub.add_parser("versions", help="list datasets and versions").add_argument("dataset", nargs="?", default="")
    df = sub.add_parser("diff", help="compare two versions")
    df.add_argument("dataset")
    df.add_argument("old")
    df.add_argument("new")
    kb = sub.add_parser("refresh-kb", help="build or refresh a knowledge base incrementally")
    kb.add_argument("--kb", required=True)
    kb.add_argument("--path", help="documents: a file or folder")
    kb.add_argument("--dataset", help="or a dataset version's contexts")
    kb.add_argument("--version", default="")
    return p


def table(rows: list[dict]) -> str:
    if not rows:
        return "(none)"
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "| " + " | ".join("---" for _ in keys) + " |"]
    return "\n".join(lines + ["| " + " | ".join(str(r.get(k, "")) for k in keys) + " |" for r in rows])


def funnel_table(report) -> str:
    rows = [{"step": "candidates (answer spans)", "in": "", "kept": report.candidates, "pass rate": ""}]
    rows += [
        {"step": s["name"], "in": s["entered"], "kept": s["passed"], "pass rate": f"{100 * s['rate']:.1f}%"}
        for s in report.funnel
    ]
    return table(rows)


def run(a, settings) -> str:
    """Run the parsed ``data`` command; its output as text."""
    store, tracker = DatasetStore(settings), Tracker(settings)
    version = ""
    if a.command in ("topics", "split", "augment", "hard-cases", "show", "export"):
        version = a.version or store.versions(a.dataset)[0].id  # the newest by default
    return COMMANDS[a.command](a, settings, store, tracker, version)


def import_data(a, settings, store, tracker, version) -> str:
    manifest, result = steps.import_source(
        settings,
        a.dataset,
        a.source,
        kind=a.kind,
        tracker=tracker,
        on_error="skip" if a.skip_bad else "abort",
        dedupe=a.dedupe,
    )
    skipped = "".join(f"\n  skipped {p}" for p in result.problems)
    dropped = "".join(f"\n  dropped {p}" for p in result.dropped)
    return f"{a.dataset}@{manifest.id}: {len(result.records)} records ({result.format}){skipped}{dropped}"


def generation_spec(a) -> GenerationSpec:
    """The GenerationSpec of parsed ``generate`` arguments (a flag for every setting, ``--config`` their defaults)."""
    return GenerationSpec(**knob_values(GenerationSpec, a), filters=FilterSpec(**knob_values(FilterSpec, a)))


def generate(a, settings, store, tracker, version) -> str:
    spec = generation_spec(a)

    def progress(fraction: float, message: str) -> None:
        print(f"\r[{100 * fraction:5.1f}%] {message}   ", end="", file=sys.stderr, flush=True)

    report = generate_qa(spec, load_generator(teacher_spec(spec), settings), Embedder.shared(), settings, progress)
    print(file=sys.stderr)
    times = table([{"step": k, "seconds": v} for k, v in report.seconds.items()])
    sample = table([{"question": s["question"], "answer": s["answer"]} for s in report.sample])
    head = f"{report.dataset}@{report.version}: kept {report.kept} of {report.candidates} candidates"
    return f"{head}{' (resumed)' if report.resumed else ''}\n\n{funnel_table(report)}\n\n{times}\n\n{sample}"


def topics(a, settings, store, tracker, version) -> str:
    spec = TopicSpec(**knob_values(TopicSpec, a))
    manifest, topics = steps.cluster_version(settings, a.dataset, version, spec, tracker)
    rows = [{"topic": t, "label": topics.names[t], "records": topics.sizes[t]} for t in sorted(topics.names)]
    scores = ", ".join(f"k={k}: {s:.3f}" for k, s in sorted(topics.silhouette.items()))
    return f"{a.dataset}@{manifest.id}: {topics.k} topics (silhouette {scores})\n\n{table(rows)}"


def split(a, settings, store, tracker, version) -> str:
    manifest, leaks, sizes = steps.split_version(
        settings, a.dataset, version, SplitSpec(**knob_values(SplitSpec, a)), a.threshold, tracker
    )
    return (
        f"{a.dataset}@{manifest.id}\n\n{table([sizes])}\n\nleakage (cosine >= {a.threshold}):\n\n"
        f"{table([leaks.counts()])}"
    )


def augment(a, settings, store, tracker, version) -> str:
    spec = AugmentSpec(kinds=tuple(k.strip() for k in a.kinds.split(",") if k.strip()))
    generator = None
    if "paraphrase" in spec.kinds:
        generator = load_generator(settings=settings)
    if a.command == "augment":
        manifest, report = steps.augment_version(settings, a.dataset, version, spec, generator, tracker)
    else:
        manifest, report = steps.hard_case_version(
            settings, a.dataset, version, a.run, a.threshold, spec, generator, tracker
        )
    return f"{a.dataset}@{manifest.id}\n\n{json.dumps(report, indent=1)}"


def show(a, settings, store, tracker, version) -> str:
    return json.dumps(
        {"manifest": store.manifest(a.dataset, version).to_dict(), "report": store.report(a.dataset, version)},
        indent=1,
    )


def export(a, settings, store, tracker, version) -> str:
    return str(steps.export_version(settings, a.dataset, version, a.to, overwrite=a.overwrite))


def review(a, settings, store, tracker, version) -> str:
    name, _, version = a.dataset.strip().partition("@")
    version = version or store.versions(name)[0].id
    decisions = read_decisions(a.decisions) if a.decisions else None
    manifest, _ = save_review(settings, name, version, decisions, not a.only_reviewed, tracker)
    return f"{name}@{manifest.id} (parent {version}, {manifest.counts['records']} records): {manifest.note}"


def versions(a, settings, store, tracker, version) -> str:
    names = [a.dataset] if a.dataset else store.datasets()
    return table([version_row(m) for n in names for m in store.versions(n)])


def version_row(m, count: str = "records", note=lambda text: text[:80], **extra) -> dict:
    """A dataset version as a row of a versions table: its record count under ``count``, then ``extra``."""
    row = {"dataset": m.dataset, "version": m.id, "parent": m.parent, "created": m.created[:19]}
    return row | {count: m.counts.get("records"), **extra, "note": note(m.note)}


def diff_versions(a, settings, store, tracker, version) -> str:
    d = diff(store.load(a.dataset, a.old), store.load(a.dataset, a.new))
    counts = {"added": len(d.added), "removed": len(d.removed), "changed": len(d.changed), "unchanged": d.unchanged}
    return f"{table([counts])}\n\n{table([{'stat': k, 'delta': v} for k, v in d.stat_deltas.items() if v])}"


def refresh_kb(a, settings, store, tracker, version) -> str:
    version = a.version or (store.versions(a.dataset)[0].id if a.dataset else "")
    run = IngestRun(a.kb, path=a.path or "", dataset=a.dataset or "", version=version, mirror=True)
    return table([refresh_job(run.args(), Here())])


COMMANDS = {
    "import": import_data,
    "generate": generate,
    "topics": topics,
    "split": split,
    "augment": augment,
    "hard-cases": augment,
    "show": show,
    "export": export,
    "review": review,
    "versions": versions,
    "diff": diff_versions,
    "refresh-kb": refresh_kb,
}


def main(argv: list[str]) -> int:
    a = parse_args(parser(), argv)
    note = "interrupted (what was generated is kept: run the same command again to resume)"
    return exit_status(lambda: print(run(a, load_settings())) or 0, note)
