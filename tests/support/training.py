"""Kill a background training job with SIGKILL once it has trained (and checkpointed) some steps."""

from __future__ import annotations

import contextlib
import os
import signal
import time

from engine import jobs
from engine.finetune.curve import read_curve
from engine.finetune.runs import last_checkpoint, run_dir_for


def kill_after_steps(job, adapter: str, steps: int, settings, timeout_s: float = 300) -> int:
    """SIGKILL the training job once its curve shows ``steps`` steps and a checkpoint is saved; returns the
    last step it logged. Fails the test if the job ended before it could be killed."""
    run_dir = run_dir_for(adapter, settings)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        done = [r["step"] for r in read_curve(run_dir) if "loss" in r]
        state = jobs.get_job(job.id, settings)
        if (len(done) >= steps and last_checkpoint(run_dir) is not None) or state.done:
            break
        time.sleep(0.05)
    assert not state.done, f"the job ended before it could be killed: {state}"
    os.kill(state.pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(state.pid, 0)
    return max(r["step"] for r in read_curve(run_dir) if "loss" in r)
