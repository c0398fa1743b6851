"""Reading a judge model's reply: which position it picks, and one pair's outcome from its two orders."""

from __future__ import annotations

import re

from engine.errors import InputError

VERDICTS = ("1", "2", "tie")  # what one judgement says: the answer in position 1, in position 2, or neither

_TIE_WORDS = {"tie", "tied", "ties", "equal", "equally", "same", "both", "neither", "draw", "none"}
_ONE = {"1", "first", "1st", "i"}
_TWO = {"2", "second", "2nd", "ii"}
_NUMBER_WORDS = {"one": "1", "two": "2"}  # only after "answer" / "response" / "number"
_TOKEN = re.compile(r"[a-z]+|\d+(?:[.,]\d+)*(?:st|nd)?")


def read_verdict(text: str) -> tuple[str, bool]:
    """The verdict in a judge's reply and whether one was found: ``("1" | "2" | "tie", parsed)``.

    The first line with any words is read. A reply naming only one position ("1", "Answer 2.", "**the
    first**") picks it; one with a tie word ("tie", "equal", "both", "neither", ...) before any position, or
    naming both positions and a tie word ("1 and 2 are equally good"), is a tie; one naming both positions
    and no tie word picks the one it names first ("2 is better than 1"). Anything else is unparseable and
    read as a tie."""
    line = next((s for s in (text or "").lower().splitlines() if _TOKEN.search(s)), "")
    tokens = _TOKEN.findall(line)
    hits: list[str] = []
    for n, tok in enumerate(tokens):
        if tok in _NUMBER_WORDS and n > 0 and tokens[n - 1] in ("answer", "response", "number", "option"):
            hits.append(_NUMBER_WORDS[tok])
        elif tok in ("i", "ii") and not (n > 0 and tokens[n - 1] in ("answer", "response")):
            continue  # roman numerals only as "answer i" / "answer ii", never the pronoun
        elif tok in _ONE:
            hits.append("1")
        elif tok in _TWO:
            hits.append("2")
        elif tok in _TIE_WORDS:
            hits.append("tie")
    if not hits:
        return "tie", False
    if hits[0] == "tie" or ("tie" in hits and {"1", "2"} <= set(hits)):
        return "tie", True
    return next(h for h in hits if h != "tie"), True


def parse_verdict(text: str) -> str:
    """``"1"``, ``"2"`` or ``"tie"``: the position a judge's reply picks (see :func:`read_verdict`);
    an unparseable reply is a tie."""
    return read_verdict(text)[0]


def combine(first_order: str, second_order: str) -> tuple[str, bool]:
    """One pair's outcome from its two judgements, ``(verdict, flipped)``: ``first_order`` was given with A
    in position 1, ``second_order`` with B in position 1.

    The same answer picked in both orders stands (``"A"`` or ``"B"``). A pick that follows the position
    (position 1 both times, or position 2 both times) is a tie with ``flipped`` True. A tie in either order
    is a tie, not a flip (the two judgements do not name different answers)."""
    for v in (first_order, second_order):
        if v not in VERDICTS:
            raise InputError(f"A judgement is 1, 2 or tie, not {v!r}.")
    if "tie" in (first_order, second_order):
        return "tie", False
    first = "A" if first_order == "1" else "B"
    second = "B" if second_order == "1" else "A"
    return (first, False) if first == second else ("tie", True)
