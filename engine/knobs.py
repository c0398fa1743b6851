"""Knobs: what a spec field means (help), which values it takes (choices, bounds), written once on the spec's
dataclass field and read by both the page's form and the command line, as TRL's ``HfArgumentParser`` reads
dataclass metadata. The default lives only in the field.

    limit: int | None = knob(200, "the first N questions", min=1, label="Questions (at most)")
"""

from __future__ import annotations

import argparse
from dataclasses import MISSING, dataclass, field, fields

from engine.errors import InputError, check_choice


def knob(
    default,
    help: str = "",
    choices=(),
    min: float | None = None,
    max: float | None = None,
    label: str = "",
    format: str = "",
):
    """A spec field with its default and what the form and the command line say about it (``format``: how a form
    shows a number, e.g. ``%.0e`` for a learning rate)."""
    meta = {
        "knob": True,
        "help": help,
        "choices": tuple(choices),
        "min": min,
        "max": max,
        "label": label,
        "format": format,
    }
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Knob:
    name: str
    default: object
    help: str
    choices: tuple
    min: float | None
    max: float | None
    label: str
    format: str = ""

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def kind(self) -> type:
        """The value's type, from the default (``None`` defaults count as the bounds' type, else str)."""
        if self.default is None:
            return int if isinstance(self.min, int) else float if self.min is not None else str
        return type(self.default)


def knobs_of(spec_type: type) -> dict[str, Knob]:
    """The knobs of a spec class, by field name, in field order."""
    found = {}
    for f in fields(spec_type):
        if f.metadata.get("knob"):
            default = f.default if f.default is not MISSING else f.default_factory()
            m = f.metadata
            label = m["label"] or f.name.replace("_", " ").capitalize()
            found[f.name] = Knob(
                name=f.name,
                default=default,
                help=m["help"],
                choices=m["choices"],
                min=m["min"],
                max=m["max"],
                label=label,
                format=m["format"],
            )
    return found


def check_knobs(spec) -> None:
    """InputError for a knob's value outside its choices or bounds (in the spec's ``__post_init__``)."""
    for k in knobs_of(type(spec)).values():
        value = getattr(spec, k.name)
        what = k.name.replace("_", " ")
        if k.choices:
            check_choice(value, k.choices, what)
        if value is not None and k.min is not None and value < k.min:
            raise InputError(f"{what} must be at least {k.min}, not {value}.")
        if value is not None and k.max is not None and value > k.max:
            raise InputError(f"{what} must be at most {k.max}, not {value}.")


KEEP = object()  # add_knob_argument: the knob's own default


def add_knob_argument(parser: argparse.ArgumentParser, spec_type: type, name: str, flag: str = "", default=KEEP):
    """The ``--flag`` of one knob (its own flag by default), with its type, choices and help; ``default`` replaces
    the knob's (None: a flag that changes a preset only when given)."""
    k = knobs_of(spec_type)[name]
    value = k.default if default is KEEP else default
    helptext = k.help.replace("%", "%%") or None  # argparse formats help with %
    if k.kind is bool:
        parser.add_argument(flag or k.flag, action=argparse.BooleanOptionalAction, default=value, help=helptext)
        return
    extra = {"choices": list(k.choices)} if k.choices else {}
    parser.add_argument(flag or k.flag, type=k.kind, default=value, help=helptext, **extra)


def add_knob_arguments(parser: argparse.ArgumentParser, spec_type: type, names=None) -> None:
    """One ``--flag`` per knob (all, or ``names``), with the knob's default, type, choices and help."""
    for name in names or knobs_of(spec_type):
        add_knob_argument(parser, spec_type, name)


def knob_values(spec_type: type, args: argparse.Namespace, names=None) -> dict:
    """The parsed values of a spec's knobs (all, or ``names``): keyword arguments for the spec."""
    return {n: getattr(args, n) for n in names or knobs_of(spec_type)}
