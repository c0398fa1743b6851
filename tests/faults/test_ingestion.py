"""The ingestion faults of the issue, on real files, real Chroma and the real embedder: an ingest cancelled or
killed part-way (it must show as incomplete, resume, or roll back, never pass for complete), and a folder with
bad files and links that leave it (every bad file listed, the rest ingested on request, links never followed).
Each test checks the message and that the user's files are byte for byte as they were."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from itertools import islice
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine.errors import InputError
from engine.rag import ingest
from engine.rag.ingest import ingest_path, ingest_source, kb_state, rollback_ingest
from engine.settings import ROOT

SECRET = "TOP SECRET: the user's password file"


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def stored(store, kb: str) -> dict[str, str]:
    """Every chunk of a knowledge base: id -> text."""
    res = store.collection(kb).get(include=["documents"])
    return dict(zip(res["ids"], res["documents"], strict=True))


@pytest.fixture(scope="module")
def passages(shared_data) -> list[str]:
    with (shared_data / "wiki-passages.jsonl").open(encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in islice(f, 400)]


@pytest.fixture
def docs_folder(tmp_path, passages) -> Path:
    """The user's folder: six text files of four Wikipedia paragraphs each (about a chunk a paragraph)."""
    folder = tmp_path / "user" / "docs"
    folder.mkdir(parents=True)
    for i in range(6):
        (folder / f"part-{i}.txt").write_text("\n\n".join(passages[4 * i : 4 * i + 4]), encoding="utf-8")
    return folder


class Cancelled(Exception):
    """What a job's cancel raises in the progress callback (JobCancelled in a real job)."""


def cancel_after(batches: int):
    calls = []

    def progress(done: int, total: int) -> None:
        calls.append(done)
        if len(calls) >= batches:
            raise Cancelled

    return progress


@pytest.fixture
def small_batches(monkeypatch):
    monkeypatch.setattr(ingest, "ADD_BATCH", 4)


def test_a_cancelled_ingest_keeps_its_chunks_says_incomplete_and_resumes_to_the_same_base(
    store, docs_folder, small_batches
) -> None:
    before = snapshot(docs_folder.parent)
    with pytest.raises(Cancelled):
        ingest_path(store, "cancelled", docs_folder, on_progress=cancel_after(2))
    assert len(stored(store, "cancelled")) == 8  # two batches of four: kept
    label = store.incomplete()["cancelled"]
    done = kb_state(store, "cancelled").done
    assert label == f"incomplete: {done} of 6 documents (8 chunks stored)" and done < 6
    info = next(i for i in store.list() if i.name == "cancelled")
    assert info.incomplete == label and info.chunks == 8

    report = ingest_source(store, kb_state(store, "cancelled").args)  # Resume: the same arguments again
    assert report.added == report.chunks - 8 and report.documents == 6
    assert "cancelled" not in store.incomplete() and kb_state(store, "cancelled") is None
    clean = ingest_path(store, "clean", docs_folder)
    assert stored(store, "cancelled") == stored(store, "clean") and clean.chunks == report.chunks
    assert snapshot(docs_folder.parent) == before


def test_rollback_removes_only_what_the_unfinished_ingest_added(store, docs_folder, tmp_path, small_batches) -> None:
    earlier = tmp_path / "user" / "earlier.txt"
    earlier.write_text("An earlier document, ingested whole before the interrupted one.", encoding="utf-8")
    before = snapshot(tmp_path / "user")
    ingest_path(store, "mixed", earlier)
    kept = stored(store, "mixed")
    with pytest.raises(Cancelled):
        ingest_path(store, "mixed", docs_folder, on_progress=cancel_after(2))
    assert len(stored(store, "mixed")) == len(kept) + 8
    assert rollback_ingest(store, "mixed") == 8
    assert stored(store, "mixed") == kept and "mixed" not in store.incomplete()
    with pytest.raises(InputError, match="'mixed' has no unfinished ingest to roll back"):
        rollback_ingest(store, "mixed")

    with pytest.raises(Cancelled):  # a knowledge base made by the interrupted ingest goes with it
        ingest_path(store, "fresh", docs_folder, on_progress=cancel_after(1))
    assert rollback_ingest(store, "fresh") == 4 and "fresh" not in store.names()
    assert snapshot(tmp_path / "user") == before


def cli(data_dir: Path, *args: str, **kwargs) -> subprocess.Popen:
    env = os.environ | {"STUDIO_DATA_DIR": str(data_dir)}
    return subprocess.Popen([sys.executable, "-m", "engine", *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)  # fmt: skip


def finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=600)
    return proc.returncode, out, err


def test_kill_9_mid_ingest_leaves_it_marked_incomplete_and_the_cli_resumes_it(settings, tmp_path, passages) -> None:
    """The issue's case: kill -9 left a partial knowledge base that looked complete."""
    source = tmp_path / "user" / "wiki.jsonl"
    source.parent.mkdir()
    source.write_text("".join(json.dumps({"title": f"p{i}", "text": t}) + "\n" for i, t in enumerate(passages)))
    before = snapshot(source.parent)
    proc = cli(settings.data_dir, "ingest", "--kb", "killed", "--path", str(source))
    buffer = ""
    while "of about" not in buffer:  # the first batch of 256 chunks is stored
        char = proc.stderr.read(1)
        assert char, f"the ingest ended early: {buffer}"
        buffer += char
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert "400 documents, about" in buffer  # the estimate came first

    code, out, err = finish(cli(settings.data_dir, "kbs"))
    assert code == 0, err
    assert out.startswith("killed: ") and ", incomplete: " in out and " of 400 documents" in out

    code, out, err = finish(cli(settings.data_dir, "ingest", "--kb", "killed", "--resume"))
    assert code == 0, err
    assert "killed: 400 documents," in out and "already there" in out
    code, out, _ = finish(cli(settings.data_dir, "kbs"))
    assert out.strip().endswith("chunks") and "incomplete" not in out
    assert snapshot(source.parent) == before


def test_the_jobs_cancel_keeps_the_stored_batches_and_the_page_offers_resume(settings, store, tmp_path, passages):
    """The page's Cancel: the ingest job ends cancelled, what it stored stays, marked incomplete."""
    from engine import jobs

    source = tmp_path / "user" / "wiki.jsonl"
    source.parent.mkdir()
    source.write_text("".join(json.dumps({"title": f"p{i}", "text": t}) + "\n" for i, t in enumerate(passages)))
    before = snapshot(source.parent)
    job = jobs.start_job("ingest", {"kb": "to-cancel", "path": str(source)}, settings)
    state = jobs.get_job(job.id, settings)
    while not state.done and "of about" not in state.message:  # a first batch is stored
        state = jobs.wait_job(job.id, 0.2, settings, poll=0.05)
    assert not state.done, jobs.tail_log(job.id, 20, settings)
    jobs.cancel_job(job.id, settings)
    state = jobs.wait_job(job.id, 120, settings)
    assert state.status == "cancelled", jobs.tail_log(job.id, 20, settings)
    label = store.incomplete()["to-cancel"]
    assert label.startswith("incomplete: ") and " of 400 documents (" in label and label.endswith(" chunks stored)")
    assert store.count("to-cancel") >= 256
    assert kb_state(store, "to-cancel").args == {"kb": "to-cancel", "path": str(source)}  # what Resume runs
    assert snapshot(source.parent) == before


@pytest.fixture
def hostile_folder(tmp_path, passages) -> Path:
    """Good files, bad files, and links out of the folder: to a secret file, to a folder, and to nowhere."""
    outside = tmp_path / "home" / "outside"
    outside.mkdir(parents=True)
    (outside / "secret.txt").write_text(SECRET, encoding="utf-8")
    (outside / "private.md").write_text(f"# Private\n{SECRET}", encoding="utf-8")
    folder = tmp_path / "home" / "docs"
    (folder / "sub").mkdir(parents=True)
    (folder / "good.txt").write_text(passages[0], encoding="utf-8")
    (folder / "sub" / "notes.md").write_text(f"# Notes\n\n{passages[1]}", encoding="utf-8")
    (folder / "latin1.txt").write_bytes("caf\u00e9".encode("latin-1"))
    (folder / "sub" / "broken.jsonl").write_text('{"text": "fine"}\n{not json\n', encoding="utf-8")
    (folder / "empty.md").write_text("", encoding="utf-8")
    (folder / "passwords.txt").symlink_to(outside / "secret.txt")
    (folder / "elsewhere").symlink_to(outside, target_is_directory=True)
    (folder / "gone.txt").symlink_to(tmp_path / "no-such-file.txt")
    (folder / "inside.txt").symlink_to(folder / "good.txt")  # stays in the folder: read
    return folder


BAD = ("latin1.txt is not UTF-8 text (byte 4).", "sub/broken.jsonl: 1 malformed line: line 2 (invalid JSON",
       "empty.md is empty.")  # fmt: skip


def test_a_folder_lists_every_bad_file_and_ingests_the_rest_only_on_request(store, hostile_folder, tmp_path) -> None:
    before = snapshot(hostile_folder.parent)
    with pytest.raises(InputError) as caught:
        ingest_path(store, "hostile", hostile_folder)
    message = str(caught.value)
    assert message.startswith("3 of 6 files cannot be ingested:")
    assert all(bad in message for bad in BAD) and "--skip-bad" in message and "the other 3 files" in message
    assert "hostile" not in store.names()  # nothing stored

    report = ingest_path(store, "hostile", hostile_folder, on_error="skip")
    assert report.documents == 3  # good.txt, inside.txt and sub/notes.md
    skipped = "\n".join(report.skipped)
    assert all(bad in skipped for bad in BAD)
    secret = hostile_folder.parent / "outside" / "secret.txt"
    assert f"passwords.txt -> {secret} (a link to a file outside docs/: skipped)" in skipped
    assert "elsewhere -> " in skipped and "(a link to a folder outside docs/: skipped)" in skipped
    assert "gone.txt -> " in skipped and "(a link that leads nowhere: skipped)" in skipped
    texts = stored(store, "hostile").values()
    assert texts and not any("SECRET" in t for t in texts)
    assert {m["source"] for m in store.stored_metadata("hostile").values()} == {"good.txt", "inside.txt",
                                                                                "sub/notes.md"}  # fmt: skip
    assert snapshot(hostile_folder.parent) == before


def test_the_cli_lists_the_bad_files_with_status_2_and_skips_them_on_request(settings, hostile_folder, tmp_path):
    before = snapshot(hostile_folder.parent)
    code, out, err = finish(cli(settings.data_dir, "ingest", "--kb", "hostile", "--path", str(hostile_folder)))
    assert code == 2 and "Traceback" not in err
    assert err.startswith("error: 3 of 6 files cannot be ingested:") and all(bad in err for bad in BAD)
    code, out, err = finish(cli(settings.data_dir, "ingest", "--kb", "hostile", "--path", str(hostile_folder),
                                "--skip-bad"))  # fmt: skip
    assert code == 0, err
    assert "hostile: 3 documents," in out
    left_out = [line for line in out.splitlines() if line.startswith("  left out: ")]
    assert len(left_out) == 6 and any("passwords.txt -> " in line for line in left_out)
    assert snapshot(hostile_folder.parent) == before


def panel() -> None:
    from ui import resources as r
    from ui.ingest import ingest_panel

    ingest_panel(r.store())


def test_the_page_estimates_first_lists_what_it_leaves_out_and_rolls_back(settings, store, hostile_folder,
                                                                          docs_folder, small_batches):  # fmt: skip
    import streamlit as st

    st.cache_resource.clear()
    before = snapshot(hostile_folder.parent)
    at = AppTest.from_function(panel, default_timeout=120).run()
    at.radio(key="ingest-source").set_value("Local path")
    at.text_input(key="ingest-path").input(str(hostile_folder))
    at.button[0].click().run()  # Check and estimate, without skipping: the bad files are the message
    assert not at.exception, at.exception
    assert at.error and at.error[0].value.startswith("3 of 6 files cannot be ingested:")
    at.checkbox(key="ingest-skip").check()
    next(b for b in at.button if b.label == "Check and estimate").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "3 files, 3 documents, about" in at.info[0].value and " s" in at.info[0].value
    assert any("passwords.txt -> " in m.value for m in at.markdown)
    assert any(b.label == "Start ingest" for b in at.button)

    with pytest.raises(Cancelled):
        ingest_path(store, "my-docs", docs_folder, on_progress=cancel_after(1))
    at = AppTest.from_function(panel, default_timeout=120).run()
    warning = next(w.value for w in at.warning if "my-docs" in w.value)
    assert "is incomplete: " in warning and " of 6 documents (4 chunks stored)" in warning
    at.button(key="rollback-my-docs").click().run()
    assert not at.exception, at.exception
    assert any("4 chunks of the unfinished ingest removed" in s.value for s in at.success)
    assert "my-docs" not in store.names()
    assert snapshot(hostile_folder.parent) == before
    st.cache_resource.clear()
