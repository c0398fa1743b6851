"""Settings files: a job's spec (train, eval, generate, ab, bench) as YAML, kept in the data dir's ``configs/``,
read back by the forms and by the commands' ``--config FILE``, and logged with each run (``config.yaml``).

A file holds the spec's fields, nested specs as mappings, under a ``kind:`` line. Reading one checks it as the
form and the command line would: unknown keys, values of the wrong type and values outside a knob's choices or
bounds are an InputError naming the field; a missing key takes the class default; the spec's own
``__post_init__`` checks the rest.
"""

from __future__ import annotations

import argparse
import types
import typing
from collections.abc import Callable
from dataclasses import MISSING, asdict, fields, is_dataclass
from pathlib import Path

import yaml

from engine.errors import InputError, NotFoundError, StudioError
from engine.knobs import knobs_of
from engine.names import check_safe_name
from engine.settings import Settings
from engine.write_policy import write_atomic

# kind -> the spec class it holds, by name: this module sits below the specs' packages and imports none of them
KINDS = {
    "train": "TrainSpec",
    "eval": "EvalSpec",
    "generate": "GenerationSpec",
    "ab": "ExperimentSpec",
    "bench": "BenchSpec",
}
COMMAND_OF = {"train": "train", "eval": "eval", "generate": "data generate", "ab": "ab", "bench": "bench"}


def kind_of(spec_type: type) -> str:
    """The settings kind of a spec class (InputError for a class no job form starts from)."""
    for kind, name in KINDS.items():
        if spec_type.__name__ == name:
            return kind
    raise InputError(f"{spec_type.__name__} has no settings files: kinds are {', '.join(KINDS)}.")


def check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise InputError(f"Unknown settings kind {kind!r}: choose one of {', '.join(KINDS)}.")
    return kind


def _plain(value):
    """YAML-safe data: tuples as lists, at any depth."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def to_yaml(spec) -> str:
    """The spec as a settings file: a ``kind:`` line, then every field (nested specs as mappings)."""
    kind = kind_of(type(spec))
    head = f"# Studio {kind} settings: python -m engine {COMMAND_OF[kind]} --config FILE\n"
    return head + yaml.safe_dump({"kind": kind, **_plain(asdict(spec))}, sort_keys=False, allow_unicode=True)


def _type_name(tp) -> str:
    return {int: "a whole number", float: "a number", bool: "true or false", str: "text"}.get(tp, str(tp))


def _convert(tp, value, path: str):
    """``value`` (YAML data) as the field type ``tp`` wants it, or an InputError naming ``path``."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        kinds = [a for a in args if a is not type(None)]
        return _convert(kinds[0], value, path) if len(kinds) == 1 else value
    if is_dataclass(tp):
        return _build(tp, value, path)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise InputError(f"Setting {path!r} must be a list, not {value!r}.")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{path}[{n}]") for n, v in enumerate(value))
        if args and len(args) != len(value):
            raise InputError(f"Setting {path!r} must be a list of {len(args)} values, not {value!r}.")
        return tuple(_convert(a, v, f"{path}[{n}]") for n, (a, v) in enumerate(zip(args, value, strict=True)))
    if tp is float and isinstance(value, str):  # YAML reads 3e-4 (no dot) as text
        try:
            return float(value)
        except ValueError:
            pass
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in (int, float, bool, str) and (type(value) is not tp):
        raise InputError(f"Setting {path!r} must be {_type_name(tp)}, not {value!r}.")
    return value


def _check_knob(spec_type: type, name: str, value, path: str) -> None:
    k = knobs_of(spec_type).get(name)
    if k is None or value is None:
        return
    if k.choices and value not in k.choices:
        raise InputError(f"Setting {path!r} is {value!r}: choose one of {', '.join(repr(c) for c in k.choices)}.")
    if k.min is not None and value < k.min:
        raise InputError(f"Setting {path!r} must be at least {k.min}, not {value}.")
    if k.max is not None and value > k.max:
        raise InputError(f"Setting {path!r} must be at most {k.max}, not {value}.")


def _build(spec_type: type, data, path: str = ""):
    """A spec from a mapping of its fields (nested specs as mappings); missing fields keep the class defaults."""
    where = f"Setting {path!r}" if path else "A settings file"
    if not isinstance(data, dict):
        raise InputError(f"{where} must be a mapping of {spec_type.__name__}'s fields, not {data!r}.")
    hints = typing.get_type_hints(spec_type)
    known = {f.name: f for f in fields(spec_type)}
    if unknown := [k for k in data if k not in known]:
        raise InputError(f"Unknown setting {path + '.' if path else ''}{unknown[0]}: use {', '.join(known)}.")
    values = {}
    for name, f in known.items():
        here = f"{path}.{name}" if path else name
        if name not in data:
            if f.default is MISSING and f.default_factory is MISSING:
                raise InputError(f"Setting {here!r} is missing: it has no default.")
            continue
        values[name] = _convert(hints[name], data[name], here)
        _check_knob(spec_type, name, values[name], here)
    return spec_type(**values)  # the spec's __post_init__ checks what one field alone cannot say


def from_yaml(spec_type: type, text: str):
    """The spec a settings file holds (see the module's docstring for what is checked)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where else ""
        raise InputError(f"Not a settings file: the YAML cannot be read{line}.") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InputError("Not a settings file: it must be a mapping of settings (name: value).")
    kind = kind_of(spec_type)
    found = data.pop("kind", kind)
    if found != kind:
        raise InputError(f"These are {found} settings, not {kind} settings.")
    return _build(spec_type, data)


def configs_dir(settings: Settings, kind: str) -> Path:
    return settings.data_dir / "configs" / check_kind(kind)


def config_path(settings: Settings, kind: str, name: str) -> Path:
    """Where the saved settings ``name`` of ``kind`` live (checked like every name the Studio stores)."""
    return configs_dir(settings, kind) / f"{check_safe_name(name, 'settings')}.yaml"


def save_config(settings: Settings, kind: str, name: str, spec, overwrite: bool = False) -> Path:
    """Save ``spec`` as the settings ``name`` of ``kind``; an existing one is replaced only with ``overwrite``."""
    if kind_of(type(spec)) != check_kind(kind):
        raise InputError(f"A {type(spec).__name__} is not {kind} settings.")
    path = config_path(settings, kind, name)
    if path.exists() and not overwrite:
        raise InputError(f"Settings {path.stem!r} already exist: choose another name, or overwrite them.")
    return write_atomic(path, to_yaml(spec))


def list_configs(settings: Settings, kind: str) -> list[str]:
    """The names of the saved settings of ``kind``, sorted."""
    folder = configs_dir(settings, kind)
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []


def read_config(spec_type: type, path: str | Path):
    """The spec of the settings file at ``path``; an error names the file."""
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFoundError(f"There is no settings file {path}.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"The settings file {path} cannot be read: {exc}.") from None
    try:
        return from_yaml(spec_type, text)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None


def load_config(settings: Settings, kind: str, name: str, spec_type: type):
    """The saved settings ``name`` of ``kind``."""
    path = config_path(settings, kind, name)
    if not path.is_file():
        raise NotFoundError(f"There are no saved {kind} settings {name!r}.")
    return read_config(spec_type, path)


# --- the commands' --config FILE ---------------------------------------------------------------------------


def add_config_argument(parser: argparse.ArgumentParser, spec_type: type, defaults: Callable[[object], dict]) -> None:
    """``--config FILE`` on a command: the file's settings become the command's defaults, the flags given change
    them. ``defaults(spec)`` gives the command's argument defaults for a spec; the spec itself is ``config_spec``
    in the parsed arguments (for the fields no flag sets). See :func:`parse_args`."""
    parser.add_argument(
        "--config",
        default="",
        metavar="FILE",
        help="a settings file (YAML: the app's 'Save settings as' keeps them in the data dir's configs/): its "
        "settings are the defaults, the flags given change them",
    )
    parser.set_defaults(config_spec=None, config_reader=(parser, spec_type, defaults))


def parse_args(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """``parser.parse_args(argv)``; with ``--config FILE``, parsed again with the file's settings as the defaults
    of the (sub)command that has the option, so that a flag given, even at its default value, still wins."""
    a = parser.parse_args(argv)
    if not getattr(a, "config", "") or getattr(a, "config_reader", None) is None:
        return a
    command, spec_type, defaults = a.config_reader
    try:
        spec = read_config(spec_type, a.config)
    except StudioError as exc:
        command.exit(2, f"error: {exc}\n")  # as the commands report bad input (engine.errors.exit_status)
    command.set_defaults(config_spec=spec, **defaults(spec))
    return parser.parse_args(argv)
