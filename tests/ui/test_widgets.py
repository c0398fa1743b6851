"""Shared page helpers that need no running app."""

from __future__ import annotations

import time

from ui.widgets import coalesce


def slow(pieces: list[str], pause: float):
    for piece in pieces:
        time.sleep(pause)
        yield piece


def test_coalesce_keeps_the_text_in_fewer_pieces() -> None:
    pieces = [f"w{n} " for n in range(30)]
    merged = list(coalesce(slow(pieces, 0.01), every=0.05))
    assert "".join(merged) == "".join(pieces)
    assert 2 <= len(merged) < len(pieces) / 2


def test_coalesce_passes_slow_pieces_through_one_by_one() -> None:
    pieces = ["a", "b", "c"]
    assert list(coalesce(slow(pieces, 0.03), every=0.01)) == pieces


def test_coalesce_of_nothing_is_nothing() -> None:
    assert list(coalesce(iter([]))) == []
