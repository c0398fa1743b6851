"""Small widgets shared by the pages."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator

import streamlit as st

from engine.errors import StudioError, describe


def page_header(name: str, icon: str, caption: str = "") -> None:
    """The page's browser title, heading and one-line description (the first Streamlit call of a page)."""
    st.set_page_config(page_title=name if name == "Studio" else f"{name} · Studio", page_icon=icon, layout="wide")
    st.title(f"{icon} {name}")
    if caption:
        st.caption(caption)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Show any error as a message instead of a traceback: a StudioError as it is, anything else as one line
    with what to do and the log file holding its traceback (see :func:`engine.errors.describe`)."""
    try:
        yield
    except StudioError as exc:
        st.error(str(exc))
    except Exception as exc:  # Streamlit's rerun/stop signals are BaseExceptions: they pass through
        st.error(describe(exc, "a page of the app"))


def kb_picker(
    names: list[str], key: str, default: str = "studio-docs", incomplete: dict[str, str] | None = None
) -> str | None:
    """A knowledge-base select box; one an ingest left unfinished (``incomplete``: name -> state) is marked."""
    if not names:
        st.warning("There is no knowledge base yet. Ingest documents below.")
        return None
    incomplete = incomplete or {}
    index = names.index(default) if default in names else 0
    kb = st.selectbox(
        "Knowledge base",
        names,
        index=index,
        key=key,
        format_func=lambda n: f"{n} ({incomplete[n]})" if n in incomplete else n,
    )
    if kb in incomplete:
        st.warning(f"{kb} is {incomplete[kb]}: answers can miss what is not stored yet. Resume or roll back below.")
    return kb


def seconds_since(ts: float) -> str:
    delta = time.time() - ts
    if delta < 90:
        return f"{delta:.0f} s ago"
    if delta < 5400:
        return f"{delta / 60:.0f} min ago"
    return f"{delta / 3600:.1f} h ago"


def coalesce(pieces: Iterable[str], every: float = 0.25) -> Iterator[str]:
    """The same text in fewer, larger pieces: at most one every ``every`` seconds.

    Each piece makes the browser redraw the answer; on a small machine those redraws take
    CPU from the model that is still generating.
    """
    buffer, last = "", time.monotonic()
    for piece in pieces:
        buffer += piece
        if time.monotonic() - last >= every:
            yield buffer
            buffer, last = "", time.monotonic()
    if buffer:
        yield buffer
