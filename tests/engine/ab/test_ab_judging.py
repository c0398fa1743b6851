"""The local judge on a saved experiment: verdicts kept beside it, logged to its MLflow run and report, the
pair checked before a model loads, the CLI, and one real judge job with the bundled model."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace

import pytest

from engine.ab.judging import judge_file, load_judges, run_judge, verdicts_for
from engine.ab.results import ExperimentResult, VariantResult, save_result
from engine.ab.runner import compare_result, log_experiment
from engine.ab.spec import ExperimentSpec, VariantSpec
from engine.cli import main
from engine.errors import InputError, NotFoundError
from engine.tracking import AB, Tracker

GOLDS = ["Paris", "Jupiter", "Shakespeare", "100", "Everest", "Pacific"]


class GoldJudge:
    """Picks whichever answer contains the correct answer, in either order; counts its prompts."""

    name = "gold-judge"

    def __init__(self):
        self.prompts = 0

    def generate(self, conversations, sampling, batch_size=8):
        out = []
        for conv in conversations:
            user = next(m["content"] for m in conv if m["role"] == "user")
            first = re.search(r"^Answer 1: (.*)$", user, re.M).group(1)
            ref = re.search(r"^Correct answer: (.*)$", user, re.M).group(1)
            out.append(SimpleNamespace(text="1" if ref in first else "2"))
        self.prompts += len(out)
        return out


class NoModel:
    def generate(self, *args, **kwargs):
        raise AssertionError("the judge's model was called")


def experiment(settings, tracker=None, run_id: bool = True) -> ExperimentResult:
    """'weak' is right on the first two items only, 'strong' on all six."""

    def variant(name: str, right: int) -> VariantResult:
        rows = [{"item_id": f"q{i}", "question": f"Question {i}?", "gold": g,
                 "prediction": g if i < right else "no idea", "em": 100.0 * (i < right), "f1": 100.0 * (i < right),
                 "latency_s": 0.1, "prompt_tokens": 10, "new_tokens": 2} for i, g in enumerate(GOLDS)]  # fmt: skip
        return VariantResult(name, {"name": name}, rows, 1.0, 1.0, 0.5, "cpu", 1.0)

    spec = ExperimentSpec("judged", (VariantSpec("weak"), VariantSpec("strong"))).to_dict()
    variants = {"weak": variant("weak", 2), "strong": variant("strong", 6)}
    result = ExperimentResult("20261127-120000-judged", spec, variants, "2026-11-27T12:00:00")
    if tracker is not None and run_id:
        result.run_id = log_experiment(tracker, result, compare_result(result, resamples=200))
    save_result(result, settings)
    return result


def test_a_judgement_is_kept_beside_the_experiment_and_logged_to_its_run(settings):
    tracker = Tracker(settings)
    result = experiment(settings, tracker)
    judge_model = GoldJudge()
    seen = []
    judge = run_judge(result.id, "weak", "strong", settings=settings, tracker=tracker, generator=judge_model,
                      batch_size=1, on_progress=lambda f, m: seen.append((f, m)))  # fmt: skip
    # the first two items are identical answers: ties without a model call; the other four go to B both ways
    assert judge.verdicts == ["tie", "tie", "B", "B", "B", "B"] and judge.flip_rate == 0.0
    assert judge_model.prompts == 8
    assert seen[0][0] == 0.0 and seen[-1][0] == 1.0 and "4/8 judgements" in [m for _, m in seen][1]
    path = judge_file(result.id, "weak", "strong", settings)
    assert path.is_file() and json.loads(path.read_text())["with_reference"] is True
    (saved,) = load_judges(result.id, settings)
    assert saved == judge
    expected = {"q0": "tie", "q1": "tie"} | {f"q{i}": "strong" for i in range(2, 6)}
    assert verdicts_for([saved], "strong", "weak") == expected
    assert verdicts_for([saved], "strong", "other") is None

    run = tracker.client.get_run(result.run_id)
    assert run.data.metrics["judge/strong vs weak/wins_b"] == 4
    assert run.data.metrics["judge/strong vs weak/flip_rate"] == 0.0
    artifacts = {a.path for a in tracker.client.list_artifacts(result.run_id)}
    assert {"judge-weak-strong.json", "report.md", "report.html"} <= artifacts
    report = tracker.client.download_artifacts(result.run_id, "report.md", str(settings.data_dir))
    text = open(report, encoding="utf-8").read()
    assert "| strong preferred | 4 |" in text and "Position-flip rate 0%" in text

    # the pair judged the other way round replaces the earlier judgement
    again = run_judge(result.id, "strong", "weak", settings=settings, generator=GoldJudge())
    assert again.verdicts == ["tie", "tie", "A", "A", "A", "A"]
    (saved,) = load_judges(result.id, settings)
    assert (saved.a, saved.b) == ("strong", "weak")
    assert verdicts_for([saved], "weak", "strong") == verdicts_for([judge], "weak", "strong")


def test_the_pair_is_checked_before_a_model_loads(settings):
    result = experiment(settings)
    with pytest.raises(InputError, match="No variant 'medium'"):
        run_judge(result.id, "weak", "medium", settings=settings, generator=NoModel())
    with pytest.raises(InputError, match="two different variants"):
        run_judge(result.id, "weak", "weak", settings=settings, generator=NoModel())
    with pytest.raises(NotFoundError):
        run_judge("20260101-000000-none", "weak", "strong", settings=settings, generator=NoModel())
    assert load_judges(result.id, settings) == []


def test_the_cli_reports_bad_input_without_a_traceback(settings, capsys):
    result = experiment(settings)
    assert main(["judge", result.id, "weak", "medium", "--no-mlflow"]) != 0
    err = capsys.readouterr().err
    assert "No variant 'medium'" in err and "Traceback" not in err


def test_the_judge_job_runs_the_bundled_model_and_logs_a_run(settings):
    """A real 'judge' job: the bundled model judges the experiment in its own process."""
    from engine import jobs

    result = experiment(settings)  # no MLflow run yet: the judge starts one in studio-ab
    started = jobs.start_job("judge", {"experiment": result.id, "a": "weak", "b": "strong"}, settings)
    state = jobs.wait_job(started.id, timeout=300, settings=settings, poll=0.5)
    log = "\n".join(jobs.tail_log(started.id, 40, settings))
    assert state.status == "succeeded", f"{state.error}\n{log}"
    (judge,) = load_judges(result.id, settings)
    assert judge.n == 6 and judge.judged == [False, False, True, True, True, True]
    assert all(t.strip() for t in judge.first_texts[2:] + judge.second_texts[2:])  # the model replied, both orders
    assert judge.model and state.result["summary"]["items"] == 6
    assert "position-flip rate" in log
    tracker = Tracker(settings)
    runs = tracker.client.search_runs([tracker.experiment_id(AB)])
    (run,) = [r for r in runs if r.data.params.get("experiment_id") == result.id]
    assert run.data.metrics["judge/strong vs weak/judged"] == 4
