"""Knobs: a spec's help, choices and bounds written once, read by the command line and the checks."""

from __future__ import annotations

import argparse

import pytest

from engine.errors import InputError
from engine.evaluation.runner import MODES, EvalSpec
from engine.knobs import add_knob_arguments, check_knobs, knob_values, knobs_of


def test_the_command_line_takes_the_specs_defaults_choices_and_help():
    parser = argparse.ArgumentParser()
    add_knob_arguments(parser, EvalSpec, ("mode", "limit", "k", "answer_style", "model"))
    assert EvalSpec(**knob_values(EvalSpec, parser.parse_args([]), ("mode", "limit", "k"))) == EvalSpec()
    a = parser.parse_args(["--mode", "kb", "--limit", "7", "--k", "3", "--answer-style", "auto"])
    spec = EvalSpec(**knob_values(EvalSpec, a, ("mode", "limit", "k", "answer_style")))
    assert (spec.mode, spec.limit, spec.k, spec.answer_style) == ("kb", 7, 3, "auto")
    with pytest.raises(SystemExit):  # argparse refuses a value outside the knob's choices
        parser.parse_args(["--mode", "open-book"])
    mode = next(a for a in parser._actions if a.dest == "mode")
    assert (
        tuple(mode.choices) == MODES and mode.help == knobs_of(EvalSpec)["mode"].help and mode.default == "distractor"
    )


def test_a_value_outside_a_knob_is_an_input_error():
    with pytest.raises(InputError, match="Unknown mode 'open-book'"):
        EvalSpec(mode="open-book")
    with pytest.raises(InputError, match="limit must be at least 1"):
        EvalSpec(limit=0)
    with pytest.raises(InputError, match="follow links must be at least 0"):
        EvalSpec(follow_links=-1)
    check_knobs(EvalSpec(limit=None))  # no limit: all the questions
    assert knobs_of(EvalSpec)["limit"].label == "Questions (at most)" and knobs_of(EvalSpec)["k"].kind is int


def test_every_command_prints_its_help(capsys):
    from engine.cli import parser

    commands = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    for name in commands:
        with pytest.raises(SystemExit) as done:
            parser().parse_args([name, "--help"])
        assert done.value.code == 0, name
    assert "about 30% more time" in capsys.readouterr().out  # a knob's help, as written on the spec


def test_the_train_flags_change_only_what_is_given():
    from engine.cli import parser
    from engine.finetune.lora import LoraSpec
    from engine.finetune.spec import TrainSpec

    a = parser().parse_args(["train", "--lr", "1e-4", "--mlp"])
    assert (a.lr, a.mlp, a.epochs, a.r) == (1e-4, True, None, None)  # None: the preset's value stays
    lr = next(x for x in parser()._actions if isinstance(x, argparse._SubParsersAction)).choices["train"]
    flags = {f for action in lr._actions for f in action.option_strings}
    assert {"--r", "--lr", "--limit", "--source-chars", "--answer-style"} <= flags
    assert knobs_of(LoraSpec)["r"].max == 256 and knobs_of(TrainSpec)["learning_rate"].format == "%.0e"
