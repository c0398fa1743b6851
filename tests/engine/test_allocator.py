"""The allocator of long runs: tcmalloc preloaded into jobs and the train/eval commands."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine import jobs
from engine.allocator import MARK, allocator_env, find_allocator
from engine.settings import ROOT

TCMALLOC = find_allocator("tcmalloc")
needs_tcmalloc = pytest.mark.skipif(TCMALLOC is None, reason="tcmalloc is not installed (make install adds it)")
MAPS = "print(open('/proc/self/maps').read())"


def clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in (MARK, "LD_PRELOAD", "STUDIO_ALLOCATOR")}
    return env | extra


def test_system_choice_and_other_platforms_preload_nothing(monkeypatch):
    assert find_allocator("system") is None
    env = allocator_env(clean_env(STUDIO_ALLOCATOR="system"))
    assert "LD_PRELOAD" not in env and env[MARK] == "1"
    monkeypatch.setattr(sys, "platform", "darwin")
    assert find_allocator("auto") is None


@needs_tcmalloc
def test_auto_means_tcmalloc_and_keeps_other_preloads():
    assert find_allocator("auto") == TCMALLOC == find_allocator("no-such-allocator")  # unknown: auto
    env = allocator_env(clean_env(LD_PRELOAD="libother.so"))
    assert env["LD_PRELOAD"].split() == [TCMALLOC, "libother.so"]
    assert allocator_env(env)["LD_PRELOAD"] == env["LD_PRELOAD"]  # never twice


@needs_tcmalloc
def test_a_process_started_with_it_runs_on_tcmalloc():
    maps = subprocess.run([sys.executable, "-c", MAPS], env=allocator_env(clean_env()), capture_output=True,
                          text=True, check=True).stdout  # fmt: skip
    assert "tcmalloc" in maps
    plain = subprocess.run([sys.executable, "-c", MAPS], env=clean_env(), capture_output=True, text=True).stdout
    assert "tcmalloc" not in plain


@needs_tcmalloc
def test_restart_replaces_the_process_with_one_on_tcmalloc():
    code = (
        f"from engine.allocator import restart_with_allocator; restart_with_allocator(['-c', {MAPS!r}]); "
        "print('not restarted')"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean_env(), capture_output=True, text=True,
                         check=True).stdout  # fmt: skip
    assert "tcmalloc" in out and "not restarted" not in out
    # Started with it already (or with `system` chosen): the process goes on as it is.
    for env in (allocator_env(clean_env()), clean_env(STUDIO_ALLOCATOR="system")):
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True).stdout
        assert "not restarted" in out


@pytest.mark.parametrize(
    ("command", "restarts", "release"), [("train", True, False), ("eval", True, False), ("ingest", True, True),
                                         ("loop", True, False), ("ab", True, False), ("kbs", False, False)],
)  # fmt: skip
def test_long_commands_restart_on_the_allocator(command, restarts, release, monkeypatch):
    import engine.allocator
    from engine.cli import main

    calls = []
    monkeypatch.setattr(
        engine.allocator, "restart_with_allocator", lambda argv, freed=False: calls.append((argv, freed))
    )
    monkeypatch.setattr(sys, "argv", ["engine", command, "--help"])
    with pytest.raises(SystemExit):
        main()
    assert calls == ([(["-m", "engine", command, "--help"], release)] if restarts else [])
    calls.clear()
    with pytest.raises(SystemExit):
        main([command, "--help"])  # called from Python (tests, scripts): never replaced
    assert calls == []


@needs_tcmalloc
def test_ingestion_has_tcmalloc_hand_freed_pages_back_and_other_work_not():
    assert allocator_env(clean_env(), release_freed=True)["TCMALLOC_AGGRESSIVE_DECOMMIT"] == "true"
    assert "TCMALLOC_AGGRESSIVE_DECOMMIT" not in allocator_env(clean_env())
    assert "TCMALLOC_AGGRESSIVE_DECOMMIT" not in allocator_env(clean_env(STUDIO_ALLOCATOR="system"), release_freed=True)


@needs_tcmalloc
def test_jobs_run_on_tcmalloc(settings):
    job = jobs.start_job("sleep", {"seconds": 2, "steps": 20}, settings)
    try:
        deadline = time.time() + 20
        while not (pid := jobs.get_job(job.id, settings).pid) and time.time() < deadline:
            time.sleep(0.05)
        assert "tcmalloc" in Path(f"/proc/{pid}/maps").read_text()
    finally:
        jobs.cancel_job(job.id, settings)
        jobs.wait_job(job.id, timeout=20, settings=settings)
