"""Settings files in the job forms: above a form, "Load settings" puts saved settings in its widgets; below it,
"Save settings as" keeps the form's values in the data dir, and "Same run from the shell" shows the command.

A form's widgets show what it was last submitted with (or loaded), so that is what the footer saves and shows.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import fields, is_dataclass

import streamlit as st

from engine.cli.commands import cli_command
from engine.configs import config_path, list_configs, load_config, read_config, save_config
from engine.errors import InputError, StudioError
from engine.knobs import knobs_of
from ui import resources as r
from ui.widgets import user_errors


def knob_widgets(prefix: str, spec) -> dict:
    """Widget key -> value for the knobs of ``spec`` and of its nested specs, keyed as :func:`ui.knobs.knob_input`
    keys them with ``prefix`` (a knob set to None keeps its widget's value: no widget holds None)."""
    found = {}
    for f in fields(spec):
        value = getattr(spec, f.name)
        if is_dataclass(value):
            found |= knob_widgets(prefix, value)
        elif f.name in knobs_of(type(spec)) and value is not None:
            found[f"{prefix}-{f.name}"] = value
    return found


def check_option(value, options, what: str) -> None:
    """InputError where loaded settings name something this Studio lacks (its select box would pick another)."""
    if value not in options:
        raise InputError(f"The settings name {what} {value!r}, which this Studio does not have: create it first.")


def loaded(key: str):
    """The settings last loaded into form ``key`` in this session (None before, or after :func:`forget`)."""
    found = st.session_state.get(f"{key}-config-loaded")
    return found[1] if found else None


def loads(key: str) -> int:
    """How many times settings were loaded into form ``key``: part of the keys of widgets a load starts afresh."""
    return st.session_state.get(f"{key}-config-loads", 0)


def forget(key: str) -> None:
    """The form starts from its own defaults again (a callback: e.g. another recipe was chosen)."""
    st.session_state.pop(f"{key}-config-loaded", None)


def config_bar(kind: str, spec_type: type, key: str, widgets: Callable[[object], dict] | None = None):
    """Above the form ``key``: the saved settings of ``kind`` and a Load button that puts one in the form's widgets
    (``widgets(spec)``: widget key -> value; by default the knobs' widgets, see :func:`knob_widgets`). Returns the
    settings last loaded (None before): the form keeps their values where it has no widget."""
    names = list_configs(r.settings(), kind)
    if names:
        cols = st.columns([4, 1], vertical_alignment="bottom")
        name = cols[0].selectbox("Load settings", names, key=f"{key}-config-pick", help="Settings saved below a form")
        if cols[1].button("Load", key=f"{key}-config-load"):
            with user_errors():
                spec = load_config(r.settings(), kind, name, spec_type)
                st.session_state.update(widgets(spec) if widgets else knob_widgets(key, spec))
                st.session_state[f"{key}-config-loaded"] = name, spec
                st.session_state[f"{key}-config-loads"] = loads(key) + 1
                st.session_state[f"{key}-config-file"] = name, spec
                st.success(f"Loaded the settings {name}.")
    return loaded(key)


def form_spec(submitted: bool, build: Callable[[], object]):
    """The spec of a form's values: when submitted, ``build()`` as it is (its errors are the form's); else None
    where the values make no spec (the footer says so)."""
    if submitted:
        return build()
    try:
        return build()
    except StudioError:
        return None


def saved_file(kind: str, key: str, spec):
    """The settings file last saved or loaded with form ``key``, if it holds ``spec`` still; else None."""
    name, _ = st.session_state.get(f"{key}-config-file", (None, None))
    if name is None:
        return None
    path = config_path(r.settings(), kind, name)
    try:
        return path if read_config(type(spec), path) == spec else None
    except StudioError:
        return None


@functools.lru_cache(maxsize=64)
def shell_command(kind: str, spec, saved) -> str:
    """:func:`engine.cli.commands.cli_command`, once per form state (it parses its candidates: 0.2 s for train)."""
    return cli_command(kind, spec, saved)


def config_footer(kind: str, spec, key: str) -> None:
    """Below the form ``key``: the same run as a shell command, and "Save settings as" for its values (``spec``;
    None where they make no spec)."""
    if spec is None:
        st.caption("The form's values are not valid settings yet: no command to show or settings to save.")
        return
    st.caption("Same run from the shell (the form's values as last submitted or loaded):")
    saved = saved_file(kind, key, spec)
    st.code(shell_command(kind, spec, saved), language="bash")
    cols = st.columns([4, 1, 1], vertical_alignment="bottom")
    name = cols[0].text_input(
        "Save settings as", key=f"{key}-config-name", placeholder="a name", help="Letters, digits, '.', '_' and '-'."
    )
    overwrite = cols[1].checkbox("Overwrite", key=f"{key}-config-overwrite", help="Replace saved settings of that name")
    if cols[2].button("Save", key=f"{key}-config-save"):
        with user_errors():
            path = save_config(r.settings(), kind, name, spec, overwrite)
            st.session_state[f"{key}-config-file"] = path.stem, spec
            st.session_state[f"{key}-config-saved"] = str(path)
            st.rerun()  # the bar above lists the new settings
    if saved is not None and st.session_state.get(f"{key}-config-saved") == str(saved):
        st.success(f"Saved the settings to {saved}.")  # until the form's values change
