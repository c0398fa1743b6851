"""The command line of a job's spec: ``cli_command(kind, spec)`` writes the ``python -m engine ...`` command that
runs the same job, with only the flags that change the command's defaults into ``spec``.

The command is checked by parsing it back with the command's own parser and spec builder: a setting that no flag
can say (one the form keeps but the command has no flag for) is named in a trailing comment. A saved settings
file says everything: with ``config`` the command reads it (``--config FILE``) and flags change the rest.
"""

from __future__ import annotations

import contextlib
import io
import shlex
from collections.abc import Callable
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path

from engine.ab.spec import VariantSpec
from engine.cli.data import generation_spec
from engine.cli.data import parser as data_parser
from engine.cli.finetune import FLAGS, train_spec
from engine.cli.main import EVAL_KNOBS, eval_spec
from engine.cli.main import parser as main_parser
from engine.cli.measure import AB_KNOBS, BENCH_KNOBS, ab_spec, bench_spec
from engine.configs import check_kind, parse_args
from engine.errors import StudioError
from engine.finetune.presets import PRESETS
from engine.finetune.spec import primary_pool
from engine.knobs import knobs_of


def option(flag: str, value) -> list[str]:
    """``flag`` set to ``value`` on the command line (``--x=value``, so a value may start with '-'); a boolean
    is ``--x`` or ``--no-x``; None has no flag (the setting is named in the comment, if it differs)."""
    if isinstance(value, bool):
        return [flag if value else "--no-" + flag[2:]]
    return [] if value is None else [f"{flag}={value}"]


def knob_flags(spec, base, names) -> list[str]:
    """The flags of the knobs ``names`` whose values differ between ``spec`` and ``base``."""
    knobs = knobs_of(type(spec))
    found = []
    for n in names:
        if getattr(spec, n) != getattr(base, n):
            found += option(knobs[n].flag, getattr(spec, n))
    return found


def eval_flags(spec, base) -> list[str]:
    return knob_flags(spec, base, EVAL_KNOBS)


def generate_flags(spec, base) -> list[str]:
    filters = knob_flags(spec.filters, base.filters, knobs_of(type(spec.filters)))
    return knob_flags(spec, base, knobs_of(type(spec))) + filters


def bench_flags(spec, base) -> list[str]:
    precisions = [] if spec.precisions == base.precisions else [f"--precisions={','.join(spec.precisions)}"]
    return precisions + knob_flags(spec, base, BENCH_KNOBS)


def variant_text(variant: VariantSpec) -> str:
    """A variant as ``--variant`` reads it: ``name=...`` and the fields that differ from a variant's defaults."""
    plain = VariantSpec(variant.name)
    pairs = [("name", variant.name)]
    pairs += [
        (f.name, getattr(variant, f.name))
        for f in fields(variant)
        if getattr(variant, f.name) != getattr(plain, f.name)
    ]
    return ",".join(f"{k}={v}" for k, v in pairs)


def ab_flags(spec, base) -> list[str]:
    found = [] if spec.name == base.name else [f"--name={spec.name}"]
    if spec.variants != base.variants:
        found += [f"--variant={variant_text(v)}" for v in spec.variants]
    if spec.split != base.split:
        found.append(f"--split={spec.split or 'all'}")
    return found + knob_flags(spec, base, AB_KNOBS)


def nested(spec, name: str):
    return getattr(spec, name) if name else spec


def train_flags(spec, base) -> list[str]:
    found = [f"--dataset={spec.dataset}"] if spec.dataset != base.dataset else []
    for flag, (name, part) in FLAGS.items():
        value = getattr(nested(spec, part), name)
        if value != getattr(nested(base, part), name):
            found += option("--" + flag.replace("_", "-"), value)
    if spec.lora.targets != base.lora.targets:
        found.append(f"--targets={','.join(spec.lora.targets)}")
    if spec.dolly_categories != base.dolly_categories:
        found.append(f"--dolly-categories={','.join(spec.dolly_categories)}")
    if base.val_f1 and not spec.val_f1:
        found.append("--no-f1")
    if spec.mix != base.mix:
        shares, was, primary = dict(spec.mix.sources), dict(base.mix.sources), primary_pool(spec.dataset)
        for flag, pool in (("--dolly", "dolly"), ("--qa-share", "generated"), ("--hotpotqa", "hotpotqa")):
            if pool != primary and shares.get(pool, 0.0) != was.get(pool, 0.0):
                found.append(f"{flag}={shares.get(pool, 0.0)}")
    for name in ("kb", "adapter"):
        if getattr(spec, name) != getattr(base, name):
            found.append(f"--{name}={getattr(spec, name)}")
    return found


def train_starts(spec, given: list[str]) -> list[list[str]]:
    """The train command's starting points: its default recipe for the QA set, and each named one (fewer
    flags where the form started from it); with ``--config``, the file."""
    if given:
        return [given]  # a QA set other than the file's is a flag (see train_flags)
    dataset = [f"--dataset={spec.dataset}"] if spec.dataset else []
    return [dataset, *([*dataset, f"--preset={name}"] for name in PRESETS)]


def ab_starts(spec, given: list[str]) -> list[list[str]]:
    """The ab command's starting point: its variants (it runs none without them), or the file's."""
    return [given or [f"--variant={variant_text(v)}" for v in spec.variants]]


@dataclass(frozen=True)
class Command:
    words: tuple[str, ...]
    spec: Callable  # parsed arguments -> the spec the command runs
    flags: Callable  # (spec, the spec of the starting point) -> the flags that change the one into the other
    starts: Callable = lambda spec, given: [given]  # (spec, the --config arguments) -> starting points

    def parse(self, argv: list[str]):
        """The spec the command makes of ``argv`` (its arguments after the command's words)."""
        if self.words[0] == "data":
            return self.spec(parse_args(data_parser(), [*self.words[1:], *argv]))
        return self.spec(parse_args(main_parser(), [*self.words, *argv]))


COMMANDS = {
    "train": Command(("train",), train_spec, train_flags, train_starts),
    "eval": Command(("eval",), eval_spec, eval_flags),
    "generate": Command(("data", "generate"), generation_spec, generate_flags),
    "ab": Command(("ab",), ab_spec, ab_flags, ab_starts),
    "bench": Command(("bench",), bench_spec, bench_flags),
}


def differences(spec, other, path: str = "") -> list[str]:
    """The fields (``a.b`` for nested specs) where ``other`` differs from ``spec``."""
    found = []
    for f in fields(spec):
        mine, theirs = getattr(spec, f.name), getattr(other, f.name)
        if mine == theirs:
            continue
        here = f"{path}{f.name}"
        both = is_dataclass(mine) and type(mine) is type(theirs)
        found += differences(mine, theirs, here + ".") if both else [here]
    return found


def quietly(parse: Callable, argv: list[str]):
    """``parse(argv)``, or None where the command would refuse it (argparse's message is not shown)."""
    with contextlib.redirect_stderr(io.StringIO()):
        try:
            return parse(argv)
        except (SystemExit, StudioError):
            return None


def command_line(command: Command, spec, given: list[str]) -> tuple[list[str], list[str] | None]:
    """The arguments after ``given`` (``--config FILE`` or nothing) that make ``spec``, the shortest of the command's
    starting points; and the fields they still miss (None: the command refuses them)."""
    best = None
    for start in command.starts(spec, given):
        base = quietly(command.parse, start)
        argv = start + (command.flags(spec, base) if base is not None else [])
        parsed = quietly(command.parse, argv)
        missed = differences(spec, parsed) if parsed is not None else None
        rank = (missed is None, len(missed or ()), len(argv))
        if best is None or rank < best[0]:
            best = rank, argv, missed
    return best[1], best[2]


def cli_command(kind: str, spec, config: str | Path | None = None) -> str:
    """The ``python -m engine`` command line that runs ``spec``, shell-quoted: the flags whose values differ from
    the command's defaults. Where flags cannot say it all and ``config`` (a settings file holding ``spec``) is
    given, the command reads that file instead (``--config FILE``); else a trailing comment names what they miss."""
    command = COMMANDS[check_kind(kind)]
    argv, missed = command_line(command, spec, [])
    if missed != [] and config:
        argv, missed = command_line(command, spec, ["--config", str(config)])
    line = shlex.join(["python", "-m", "engine", *command.words, *argv])
    if missed is None:
        return line + "  # the flags cannot say these settings: save them and run them with --config FILE"
    if missed:
        return line + f"  # no flag sets {', '.join(missed)}: save the settings and run them with --config FILE"
    return line
