"""The guided loop: from a folder of documents to a measurably better model on the user's questions.

Steps, in order, each resumable and recorded in ``data_dir/loops/<name>.json`` as it ends:

1. ``ingest``: the folder becomes the knowledge base ``<name>``;
2. ``generate``: QA pairs generated from its chunks (dataset ``<name>-qa``);
3. ``split``: split by document, so no document's pairs are in two splits;
4. ``baseline``: the base model on the evaluation questions, retrieving from the knowledge base;
5. ``train``: a LoRA adapter ``<name>-lora`` on the training split, with the measured collection recipe,
   continuing a HotpotQA-trained adapter where one fits (``loop_steps.starting_adapter``);
6. ``evaluate``: the adapter on the same questions;
7. ``compare``: the paired difference (adapter - base) with its 95% bootstrap interval;
8. ``activate``: the adapter becomes the model the Query page and ``engine ask`` answer with, if it won.

Where the people answer the collection's questions in sentences, the loop trains and asks in sentences
(``loop_steps.collection_style``); else each question in the style its form wants.

The evaluation questions are the user's own (``questions``: a dataset of questions written by people,
e.g. imported from a file) or, without them, the generated test split, which the report then says.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

from engine.errors import InputError, NotFoundError
from engine.job_kinds import register_job_kind
from engine.knobs import knob
from engine.loop import steps as loop_steps
from engine.loop.steps import AUTO
from engine.names import check_safe_name
from engine.settings import Settings, load_settings
from engine.write_policy import write_atomic

STEPS = ("ingest", "generate", "split", "baseline", "train", "evaluate", "compare", "activate")
Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class LoopSpec:
    name: str  # the collection: its knowledge base; the QA set is <name>-qa, the adapter <name>-lora
    folder: str  # the documents
    questions: str = knob(
        "",
        "evaluation questions written by people, with their answers: a dataset NAME[@VERSION] (all its records; "
        "import a JSONL/CSV on the Datasets page). Every claim of 'better' should rest on them; empty: the generated "
        "test split, a weaker check, and the report says so",
        label="Your test questions",
    )
    passages: int = knob(
        0, "chunks to generate QA from (0: every chunk)", min=0, max=100_000, label="Passages to generate from"
    )
    answers_per_passage: int = knob(4, "answer spans asked about per chunk", min=1, max=8)
    eval_limit: int = knob(
        300, "at most N evaluation questions", min=2, max=5000, label="Evaluation questions (at most)"
    )
    k: int = 5  # sources per question, as the Query page retrieves
    train: tuple[tuple[str, object], ...] = ()  # changes to the collection recipe (TrainSpec fields)
    start_from: str = knob(
        AUTO,
        "auto: the best HotpotQA-trained adapter saved here that was trained for your kind of answers, continued on "
        "your documents' QA pairs (measured: +5.5 F1 over that adapter on a HotpotQA collection); a new adapter "
        "where there is none. Or an adapter's name, or none (a new adapter)",
        label="Training starts from",
    )

    def __post_init__(self) -> None:
        check_safe_name(self.name, "collection")
        if not str(self.folder).strip():
            raise InputError("Name the folder of documents the loop starts from.")
        if self.start_from not in (AUTO, ""):
            object.__setattr__(self, "start_from", check_safe_name(self.start_from, "adapter"))
        if self.eval_limit < 2 or self.k < 1 or self.passages < 0 or self.answers_per_passage < 1:
            raise InputError("The loop needs at least 2 evaluation questions, k >= 1, answers per passage >= 1.")

    @property
    def dataset(self) -> str:
        return f"{self.name}-qa"

    @property
    def adapter(self) -> str:
        return f"{self.name}-lora"

    @classmethod
    def from_dict(cls, data: dict) -> LoopSpec:
        data = dict(data)
        data["train"] = tuple((k, v) for k, v in dict(data.get("train") or {}).items())
        return cls(**data)


def state_path(settings: Settings, name: str):
    return settings.data_dir / "loops" / f"{check_safe_name(name, 'collection')}.json"


def read_loop(settings: Settings, name: str) -> dict:
    """The loop's record: its spec and each finished step's result and seconds."""
    path = state_path(settings, name)
    if not path.is_file():
        raise NotFoundError(f"There is no loop {name!r} yet: start one on the Home page or with `engine loop`.")
    return json.loads(path.read_text(encoding="utf-8"))


def start_loop(settings: Settings, spec: LoopSpec, restart: bool = False) -> dict:
    """Record a loop's spec (an existing loop of that name keeps its finished steps unless ``restart``)."""
    path = state_path(settings, spec.name)
    record = {"spec": asdict(spec) | {"train": dict(spec.train)}, "steps": {}}
    if path.is_file() and not restart:
        old = json.loads(path.read_text(encoding="utf-8"))
        kept = LoopSpec.from_dict(old["spec"])  # a record from before a field was added gets its default
        if asdict(kept) | {"train": dict(kept.train)} != record["spec"]:
            raise InputError(f"A loop {spec.name!r} with other settings exists: restart it, or choose another name.")
        return old
    write_atomic(path, json.dumps(record, indent=1))
    return record


def next_step(record: dict) -> str | None:
    return next((s for s in STEPS if s not in record["steps"]), None)


def run_loop(
    settings: Settings, name: str, progress: Progress = lambda f, m: None, check=lambda: None, until: str = ""
) -> dict:
    """Run the loop's unfinished steps in order (up to and including ``until``); each is saved as it ends."""
    record = read_loop(settings, name)
    spec = LoopSpec.from_dict(record["spec"])
    while (step := next_step(record)) is not None:
        check()
        base = STEPS.index(step) / len(STEPS)

        def report(fraction: float, message: str, base=base, step=step) -> None:
            progress(base + fraction / len(STEPS), f"{step}: {message}")

        began = time.perf_counter()
        result = getattr(loop_steps, step)(spec, record, settings, report, check)
        record["steps"][step] = {"seconds": round(time.perf_counter() - began, 1), **result}
        write_atomic(state_path(settings, name), json.dumps(record, indent=1))
        if step == until:
            break
    return record


def loop_job(args: dict, ctx) -> dict:
    """The background-job form (kind ``loop``): args ``name`` (and optionally ``until``)."""
    record = run_loop(load_settings(), args["name"], ctx.progress, ctx.check_cancelled, args.get("until", ""))
    return {"steps": {k: v.get("summary", "") for k, v in record["steps"].items()}}


def with_train_changes(spec: LoopSpec, **changes) -> LoopSpec:
    return replace(spec, train=tuple({**dict(spec.train), **changes}.items()))


def misses_args(record: dict, threshold: float = 50.0) -> dict | None:
    """The dataset job (kind ``dataset``) that turns the adapter's misses on the test questions into
    training items, once the loop has evaluated its adapter (else None): the hard-case path, which never
    trains on a test question but varies the training items nearest to each miss."""
    steps = record.get("steps", {})
    run, version = (steps.get("evaluate") or {}).get("run_id"), (steps.get("split") or {}).get("version")
    if not (run and version):
        return None
    return {
        "step": "hard-cases",
        "dataset": LoopSpec.from_dict(record["spec"]).dataset,
        "version": version,
        "run_id": run,
        "threshold": threshold,
        "spec": {"kinds": ["distractors", "shuffle", "typos"]},
    }


def list_loops(settings: Settings) -> list[str]:
    """The loops recorded in the data dir, newest first."""
    folder = settings.data_dir / "loops"
    if not folder.is_dir():
        return []
    return [p.stem for p in sorted(folder.glob("*.json"), key=lambda p: -p.stat().st_mtime)]


def step_rows(record: dict, running: str = "") -> list[dict]:
    """One row per step: done (minutes, what it found), running, or to do."""
    rows = []
    for step in STEPS:
        found = record["steps"].get(step)
        state = "done" if found else "running" if step == running else "to do"
        rows.append(
            {
                "step": step,
                "state": state,
                "minutes": round(found["seconds"] / 60, 1) if found else None,
                "result": (found or {}).get("summary", ""),
            }
        )
    return rows


@dataclass(frozen=True)
class LoopRun:
    """A loop job: the loop ``name``'s unfinished steps, up to and including ``until`` (empty: all)."""

    name: str
    until: str = knob(
        "",
        "stop after this step, e.g. generate: review the pairs on the Datasets page, then continue",
        ("", *STEPS),
        label="Stop after",
    )


register_job_kind("loop", loop_job, LoopRun)
