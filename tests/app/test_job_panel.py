"""The job panel's time left: from the rate so far, once there is one."""

from __future__ import annotations

import time

from engine.jobs import JobState
from ui.job_panel import eta_text


def running(progress: float, elapsed: float) -> JobState:
    now = time.time()
    return JobState("j", "eval", {}, "running", progress, "", now - elapsed, started=now - elapsed)


def test_the_time_left_follows_the_rate_so_far() -> None:
    assert eta_text(running(0.25, 60)).endswith("about 3 min left")  # 60 s for a quarter: 180 s to go
    assert eta_text(running(0.5, 20)).endswith("about 20 s left")
    assert "left" not in eta_text(running(0.01, 60))  # too early to tell
    assert "left" not in eta_text(running(0.5, 2))
    finished = JobState("j", "eval", {}, "succeeded", 1.0, "", 0.0, started=10.0, finished=70.0)
    assert eta_text(finished) == "60 s"
