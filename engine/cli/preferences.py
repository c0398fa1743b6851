"""``python -m engine preferences ...``: preference pairs from Human Eval sessions, the judge's verdicts on A/B
experiments and corrections (build), sampled answers scored against gold answers (sample), and their versions
(list, show, drop). Output is Markdown."""

from __future__ import annotations

import argparse
import json
import sys

from engine.cli.data import table, version_row
from engine.configs import parse_args
from engine.errors import exit_status
from engine.knobs import add_knob_arguments, knob_values
from engine.preferences import build_preferences, drop_pairs, preference_datasets
from engine.preferences.sampling import GoldPairSpec, make_gold_pairs
from engine.preferences.versions import newest, summary
from engine.qa.preference import counts_by_origin, origin_of, rejected_of
from engine.qa.versions import DatasetStore, check_dataset_name
from engine.ratings import default_store
from engine.settings import load_settings
from engine.tracking import Tracker


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m engine preferences", description="Preference pairs (chosen and rejected answers)."
    )
    sub = p.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build pairs from sessions, judged experiments and corrections")
    build.add_argument("--name", required=True, help="the dataset the pairs are saved to (a new version)")
    build.add_argument("--session", action="append", default=[], help="a Human Eval session id (repeatable)")
    build.add_argument("--judge", action="append", default=[], help="a judged A/B experiment id (repeatable)")
    build.add_argument("--corrections", action="store_true", help="every stored correction")
    build.add_argument("--note", default="", help="a note for the version")
    build.add_argument("--no-mlflow", action="store_true", help="do not log the version to MLflow")
    gold = sub.add_parser("sample", help="pairs without a person: sampled answers scored against gold answers")
    add_knob_arguments(gold, GoldPairSpec)
    gold.add_argument("--no-mlflow", action="store_true", help="do not log the version to MLflow")
    sub.add_parser("list", help="preference datasets and their versions")
    show = sub.add_parser("show", help="a version's pairs")
    show.add_argument("dataset", help="NAME or NAME@VERSION (default: the newest version)")
    show.add_argument("--limit", type=int, default=20, help="at most N pairs (0: all)")
    show.add_argument("--json", action="store_true", help="the pairs as JSON lines, whole")
    drop = sub.add_parser("drop", help="a new version without some pairs")
    drop.add_argument("dataset", help="NAME or NAME@VERSION (default: the newest version)")
    drop.add_argument("ids", nargs="+", help="the ids of the pairs to drop")
    drop.add_argument("--no-mlflow", action="store_true", help="do not log the version to MLflow")
    return p


def short(text: str, n: int = 60) -> str:
    text = " ".join(str(text).split()).replace("|", "/")
    return text if len(text) <= n else text[: n - 1] + "…"


def reference(settings, ref: str) -> tuple[str, str]:
    """(dataset, version) of NAME or NAME@VERSION (the newest version when none is given)."""
    name, _, version = ref.strip().partition("@")
    return name, version.strip() or newest(settings, name)


def build(a, settings) -> str:
    check_dataset_name(a.name)  # before MLflow opens its store
    tracker = None if a.no_mlflow else Tracker(settings)
    found = build_preferences(
        settings, a.name, a.session, a.judge, a.corrections, a.note, default_store(settings), tracker
    )
    lines = [f"{a.name}@{found.manifest.id}: {summary(found.counts, found.skipped)}"]
    if found.review:
        lines += ["", f"{len(found.review)} items both answers of which the raters found bad (write their answers):"]
        lines += ["", table([{"item": r.item_id, "question": short(r.question), "raters": ", ".join(r.raters)}
                            for r in found.review])]  # fmt: skip
    return "\n".join(lines)


def sample(a, settings) -> str:
    """Sample, score and save gold-scored pairs in this process, with progress on stderr."""
    spec = GoldPairSpec(**knob_values(GoldPairSpec, a))

    def say(fraction: float, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    manifest, tally, _ = make_gold_pairs(spec, settings, say, None if a.no_mlflow else Tracker(settings))
    funnel = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in tally.items())
    return f"{spec.name}@{manifest.id}: {tally['pairs']} pairs ({funnel})"


def list_versions(a, settings) -> str:
    store = DatasetStore(settings)
    rows = [
        version_row(m, "pairs", lambda text: short(text, 80),
                    origins=", ".join(f"{k} {v}" for k, v in (m.counts.get("sources") or {}).items()))
        for name in preference_datasets(settings)
        for m in store.versions(name)
    ]  # fmt: skip
    return table(rows)


def show(a, settings) -> str:
    name, version = reference(settings, a.dataset)
    records = DatasetStore(settings).load(name, version)
    shown = records[: a.limit] if a.limit else records
    if a.json:
        return "\n".join(json.dumps(r.to_dict(), ensure_ascii=False) for r in shown)
    counts = ", ".join(f"{n} {o}" for o, n in counts_by_origin(records).items())
    rows = [{"id": r.id, "origin": origin_of(r), "question": short(r.question), "chosen": short(r.answer, 40),
             "rejected": short(rejected_of(r), 40)} for r in shown]  # fmt: skip
    return f"{name}@{version}: {len(records)} pairs ({counts})\n\n{table(rows)}"


def drop(a, settings) -> str:
    name, version = reference(settings, a.dataset)
    manifest = drop_pairs(settings, name, version, a.ids, None if a.no_mlflow else Tracker(settings))
    return f"{name}@{manifest.id} (parent {version}): {manifest.note}"


COMMANDS = {"build": build, "sample": sample, "list": list_versions, "show": show, "drop": drop}


def main(argv: list[str]) -> int:
    a = parse_args(parser(), argv)
    return exit_status(lambda: print(COMMANDS[a.command](a, load_settings())) or 0)
