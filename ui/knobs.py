"""A spec's knob as a form widget: its label, help, choices, bounds and default come from the spec's field
(:mod:`engine.knobs`), as the command line's flags do."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import streamlit as st

from engine.knobs import knobs_of


def automatic(value) -> str:
    return "automatic" if value == "" else str(value)


def knob_input(
    container,
    spec_type: type,
    name: str,
    options: Sequence | None = None,
    default=None,
    format_func: Callable = automatic,
    key: str | None = None,
    placeholder: str | None = None,
    prefix: str = "",
):
    """The widget of knob ``name`` in ``container`` (``st`` or a column): a select box over its choices (or
    ``options``, known only at run time), a number input within its bounds, a checkbox or a text input; its
    default is the spec's unless ``default`` is given. Its key is ``key``, else ``<prefix>-<name>`` with a
    ``prefix`` (the key a loaded settings file sets, see :mod:`ui.configs`), else none."""
    k = knobs_of(spec_type)[name]
    key = key or (f"{prefix}-{name}" if prefix else None)
    value = k.default if default is None else default
    helptext = k.help[:1].upper() + k.help[1:] if k.help else None
    choices = list(options) if options is not None else list(k.choices)
    if choices:
        index = choices.index(value) if value in choices else 0
        return container.selectbox(k.label, choices, index=index, format_func=format_func, key=key, help=helptext)
    if k.kind is bool:
        return container.checkbox(k.label, value, key=key, help=helptext)
    if k.kind in (int, float):
        return container.number_input(k.label, k.min, k.max, value, key=key, help=helptext, format=k.format or None)
    return container.text_input(k.label, value, key=key, help=helptext, placeholder=placeholder)


def knob_row(spec_type: type, names: Sequence[str], defaults, prefix: str = "") -> dict:
    """One row of columns, a knob's widget in each, starting at ``defaults``' values (a spec: the recipe's); keys
    as :func:`knob_input` makes them with ``prefix``."""
    columns = st.columns(len(names))
    return {
        n: knob_input(c, spec_type, n, default=getattr(defaults, n), prefix=prefix)
        for c, n in zip(columns, names, strict=True)
    }
