"""The concurrency and duplicate-id faults of the issue, on real files in temp folders: four processes creating
the MLflow store of a fresh data dir at once, an import that repeats a record id (and the diff that then named
the wrong record), and two trainings of one adapter name. Each test checks the message and that the user's
files are byte for byte as they were."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from engine.errors import InputError
from engine.qa.schema import QARecord

ROOT = Path(__file__).resolve().parents[2]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def child_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "STUDIO_CHROMA_URL")}
    return env | {"STUDIO_DATA_DIR": str(data_dir), "PYTHONPATH": str(ROOT)}


# --------------------------------------------------------------------------- 4: MLflow store creation

TRACKER_CHILD = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from engine.settings import load_settings
    from engine.tracking import QUERY, Tracker

    i, go = sys.argv[1], Path(sys.argv[2])
    settings = load_settings()
    (go.parent / f"ready-{i}").touch()
    while not go.exists():  # all four start on the fresh store together
        time.sleep(0.001)
    tracker = Tracker(settings)
    run = tracker.start(QUERY, f"proc-{i}", {"proc": i})
    tracker.log_metrics(run, {"latency_s": 0.5})
    tracker.end(run)
    """
)


def test_four_processes_opening_a_fresh_store_at_once_all_log_their_run(tmp_path) -> None:
    """Before the fix 3 of 4 processes died creating the SQLite tables; now the store is made one process at a
    time (a lock beside it), the first experiment is created once, and every process logs its run."""
    from engine.settings import Settings
    from engine.tracking import LOCK, QUERY, Tracker

    data_dir, sync = tmp_path / "data", tmp_path / "sync"
    data_dir.mkdir()
    sync.mkdir()
    notes = data_dir / "notes.txt"  # a user's file in the data dir
    notes.write_bytes(b"my notes\n")
    go = sync / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", TRACKER_CHILD, str(i), str(go)],
            cwd=tmp_path,
            env=child_env(data_dir),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        for i in range(4)
    ]
    try:
        deadline = time.monotonic() + 60
        while len(list(sync.glob("ready-*"))) < 4 and time.monotonic() < deadline:
            if any(p.poll() is not None for p in procs):
                break
            time.sleep(0.01)
        assert not (data_dir / "mlflow.db").exists()  # the store is fresh when they start
        go.touch()
        outcomes = [(p.wait(timeout=90), p.stderr.read().decode()) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    failed = [err[-2000:] for code, err in outcomes if code != 0]
    assert failed == [], "\n---\n".join(failed)
    runs = Tracker(Settings(data_dir=data_dir)).recent(QUERY, limit=10)
    assert sorted(r.name for r in runs) == [f"proc-{i}" for i in range(4)]
    assert all(r.status == "FINISHED" and r.metrics == {"latency_s": 0.5} for r in runs)
    assert notes.read_bytes() == b"my notes\n"
    assert (data_dir / LOCK).is_file()  # lock files stay (see engine.file_locks)


# --------------------------------------------------------------------------- 6: repeated ids


def studio_line(id_: str, question: str, answer: str) -> str:
    return json.dumps({"id": id_, "question": question, "answer": answer, "contexts": [f"{question} {answer}."]})


@pytest.fixture
def repeated_file(tmp_path) -> Path:
    """A Studio-form JSONL whose lines 1 and 3 share the id ``q-1`` (two different records)."""
    path = tmp_path / "user" / "qa.jsonl"
    path.parent.mkdir()
    lines = [
        studio_line("q-1", "Who wrote Hamlet?", "Shakespeare"),
        studio_line("q-2", "What is the capital of France?", "Paris"),
        studio_line("q-1", "How many legs has a spider?", "Eight"),
        studio_line("q-3", "What colour is the sky?", "Blue"),
    ]
    path.write_bytes(("\n".join(lines) + "\n").encode())
    return path


def test_an_import_with_a_repeated_id_is_refused_naming_both_lines(settings, repeated_file) -> None:
    from engine.data.steps import import_source

    before = snapshot(repeated_file.parent)
    with pytest.raises(InputError) as caught:
        import_source(settings, "shared-ids", repeated_file)
    message = str(caught.value)
    assert "qa.jsonl has 1 id(s) used by more than one record: id q-1 on line 1 and line 3" in message
    assert "--dedupe" in message and "Keep one record of each repeated id" in message
    assert snapshot(repeated_file.parent) == before
    assert not (settings.data_dir / "datasets" / "shared-ids").exists()  # no version saved


def test_dedupe_keeps_the_first_record_of_an_id_and_lists_the_dropped_line(settings, repeated_file) -> None:
    from engine.data.steps import import_source
    from engine.qa.versions import DatasetStore

    before = snapshot(repeated_file.parent)
    manifest, result = import_source(settings, "shared-ids", repeated_file, dedupe=True)
    assert result.dropped == ("line 3: the same id (q-1) as line 1",)
    assert [(r.id, r.answer) for r in result.records] == [("q-1", "Shakespeare"), ("q-2", "Paris"), ("q-3", "Blue")]
    saved = DatasetStore(settings).load("shared-ids", manifest.id)
    assert [r.to_dict() for r in saved] == [r.to_dict() for r in result.records]
    assert manifest.counts["records"] == 3 and "1 repeated ids left out" in manifest.note
    assert snapshot(repeated_file.parent) == before


def test_dolly_copies_have_the_same_content_id_and_are_refused(settings, shared_data, tmp_path) -> None:
    """Dolly records have no id field: the id is the content hash, so a copied line repeats it."""
    from engine.data.steps import import_source

    lines = (shared_data / "dolly-15k-mini.jsonl").read_bytes().splitlines()[:3]
    path = tmp_path / "dolly-copy.jsonl"
    path.write_bytes(b"\n".join([*lines, lines[0]]) + b"\n")  # line 4: a copy of line 1
    before = path.read_bytes()
    with pytest.raises(InputError, match=r"dolly-copy.jsonl has 1 id\(s\) used by more than one record: "
                                         r"id [0-9a-f]{16} on line 1 and line 4\."):  # fmt: skip
        import_source(settings, "dolly-copy", path)
    assert path.read_bytes() == before and not (settings.data_dir / "datasets").exists()
    _, result = import_source(settings, "dolly-copy", path, dedupe=True)
    assert len(result.records) == 3 and len(result.dropped) == 1
    assert result.dropped[0].startswith("line 4: the same id (") and result.dropped[0].endswith(") as line 1")


def test_the_cli_import_refuses_repeats_with_status_2_and_dedupes_on_request(settings, repeated_file, capsys) -> None:
    from engine.cli import main

    before = snapshot(repeated_file.parent)
    assert main(["data", "import", str(repeated_file), "--dataset", "cli-ids"]) == 2
    err = capsys.readouterr().err
    # MLflow logs its first creation of the store's tables (INFO lines) when this test runs first
    errors = [line for line in err.splitlines() if " INFO mlflow." not in line]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert errors[0].startswith("error: qa.jsonl has 1 id(s) used by more than one record: id q-1 on line 1 and line 3")
    assert not (settings.data_dir / "datasets" / "cli-ids").exists()

    assert main(["data", "import", str(repeated_file), "--dataset", "cli-ids", "--dedupe"]) == 0
    out = capsys.readouterr().out
    assert ": 3 records (studio)" in out
    assert "\n  dropped line 3: the same id (q-1) as line 1" in out
    assert snapshot(repeated_file.parent) == before


def test_diff_names_the_record_that_changed_or_went(settings) -> None:
    """A version that holds one id twice (a file's own ids, saved before imports refused repeats): the diff
    matched on the id alone, so it named the wrong one of the two as removed. Now it matches id and content."""
    from engine.qa.summary import diff
    from engine.qa.versions import DatasetStore

    store = DatasetStore(settings)
    hamlet = QARecord("Who wrote Hamlet?", "Shakespeare", id="q-1")
    spider = QARecord("How many legs has a spider?", "Eight", id="q-1")  # the same id as hamlet
    paris = QARecord("What is the capital of France?", "Paris", id="q-2")
    old = store.save("ids", [hamlet, spider, paris])
    gone = store.save("ids", [spider, paris], parent=old.id)  # hamlet removed: the first of the two q-1
    edited = store.save("ids", [hamlet, spider, QARecord(paris.question, "Paris, on the Seine", id="q-2")])
    before = snapshot(store.root)

    d = diff(store.load("ids", old.id), store.load("ids", gone.id))
    assert [r.question for r in d.removed] == ["Who wrote Hamlet?"]
    assert d.added == () and d.changed == () and d.unchanged == 2

    d = diff(store.load("ids", gone.id), store.load("ids", old.id))  # and the other way: hamlet added
    assert [r.question for r in d.added] == ["Who wrote Hamlet?"] and d.removed == () and d.unchanged == 2

    d = diff(store.load("ids", old.id), store.load("ids", edited.id))  # the same id, a new answer: changed
    assert [(o.answer, n.answer) for o, n in d.changed] == [("Paris", "Paris, on the Seine")]
    assert d.added == () and d.removed == () and d.unchanged == 2
    assert snapshot(store.root) == before


# --------------------------------------------------------------------------- 7: two trainings of one adapter


def quiet(fraction: float, message: str) -> None:
    pass


@pytest.fixture
def no_model_load(monkeypatch):
    """Fail the test if a training gets as far as loading the base model."""
    import engine.finetune.inputs
    import engine.finetune.trainer

    def load_base(*args, **kwargs):
        raise AssertionError("load_base was reached: the claim was not checked first")

    # Where it is defined and where train() looks it up (imported at the trainer's top).
    monkeypatch.setattr(engine.finetune.inputs, "load_base", load_base)
    monkeypatch.setattr(engine.finetune.trainer, "load_base", load_base)


def existing_run(settings, adapter: str) -> Path:
    """A run folder of ``adapter`` as an earlier training left it: its spec and curve."""
    from engine.finetune.runs import run_dir_for
    from engine.finetune.spec import TrainSpec

    run_dir = run_dir_for(adapter, settings)
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "spec.json").write_text(json.dumps(TrainSpec(adapter=adapter).to_dict(), indent=1))
    (run_dir / "curve.jsonl").write_text('{"step": 1, "loss": 2.5}\n')
    return run_dir


def test_a_second_training_of_a_claimed_name_is_refused_before_the_model_loads(settings, no_model_load) -> None:
    from engine.finetune.runs import claim
    from engine.finetune.spec import TrainSpec
    from engine.finetune.trainer import train

    run_dir = existing_run(settings, "busy-lora")
    before = snapshot(run_dir)
    with claim("busy-lora", settings):  # the first training, in this process
        with pytest.raises(InputError, match="Adapter 'busy-lora' is being trained by another training in this "
                                             "process: wait for it to end or stop it, or choose another "
                                             "name."):  # fmt: skip
            train(TrainSpec(adapter="busy-lora"), settings, None, quiet, overwrite=True)  # overwrite: would remove
    assert snapshot(run_dir) == before


CLAIM_CHILD = textwrap.dedent(
    """
    import sys
    from engine.finetune.runs import claim
    from engine.settings import load_settings

    held = claim(sys.argv[1], load_settings())
    print("held", flush=True)
    sys.stdin.read()  # until the test closes stdin, or kills this process
    """
)


def test_a_claim_held_by_another_process_names_its_pid_and_is_free_once_it_is_killed(settings, no_model_load) -> None:
    from engine.file_locks import holder
    from engine.finetune.runs import CLAIMS, claim
    from engine.finetune.spec import TrainSpec
    from engine.finetune.trainer import train

    run_dir = existing_run(settings, "other-lora")
    before = snapshot(run_dir)
    child = subprocess.Popen([sys.executable, "-c", CLAIM_CHILD, "other-lora"], cwd=settings.data_dir,
                             env=child_env(settings.data_dir), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)  # fmt: skip
    try:
        assert child.stdout.readline() == b"held\n", child.stderr.read().decode()
        with pytest.raises(InputError, match=rf"Adapter 'other-lora' is being trained by another process "
                                             rf"\(pid {child.pid}\): wait for it to end"):  # fmt: skip
            train(TrainSpec(adapter="other-lora"), settings, None, quiet, overwrite=True)
        with pytest.raises(InputError, match=rf"another process \(pid {child.pid}\)"):
            claim("other-lora", settings)
        assert snapshot(run_dir) == before
    finally:
        child.kill()  # SIGKILL: the trainer crashes with its claim held
        child.wait()
    assert child.returncode == -signal.SIGKILL
    lock = settings.data_dir / "finetune" / CLAIMS / "other-lora.lock"
    assert holder(lock) == child.pid  # the dead holder's pid is still written there
    with claim("other-lora", settings) as mine:  # but the kernel freed the lock with the process
        assert mine.active and holder(lock) == os.getpid()
    assert holder(lock) is None
    # free for a training too: it now gets past the claim and the run checks (to the stubbed model load),
    # and gives the claim up when it fails
    with pytest.raises(AssertionError, match="load_base was reached"):
        train(TrainSpec(adapter="other-lora"), settings, None, quiet, resume=True)
    claim("other-lora", settings).release()
    assert snapshot(run_dir) == before  # resuming changes nothing before the model loads
