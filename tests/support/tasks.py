"""Job kinds for the tests of the job machinery: a task that sleeps in steps, and one that fails."""

from __future__ import annotations

import time

from engine.errors import InputError
from engine.jobs.worker import JobContext


def sleep_task(args: dict, ctx: JobContext) -> dict:
    """The ``sleep`` kind: sleep ``seconds`` in ``steps`` steps (smoke test)."""
    seconds, steps = float(args.get("seconds", 1.0)), int(args.get("steps", 10))
    if seconds < 0 or steps < 1:
        raise InputError("sleep needs seconds >= 0 and steps >= 1.")
    for i in range(steps):
        ctx.check_cancelled()
        time.sleep(seconds / steps)
        ctx.progress((i + 1) / steps, f"step {i + 1}/{steps}")
    return {"slept": seconds}


def fail_task(args: dict, ctx: JobContext) -> dict:
    """The ``fail`` kind: raises ``InputError`` if ``args["user_error"]``, else ValueError."""
    ctx.progress(0.5, "about to fail")
    if args.get("user_error"):
        raise InputError(args.get("message", "bad input"))
    raise ValueError("boom")
