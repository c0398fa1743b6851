"""Answer candidates for QA generation: short spans of a passage that a question can ask for.

Generation is answer-first: a span is picked from the passage (a person, a place, another name, a
year, a number, a date, or the opening sentence that says what the passage's subject is), and the
model writes a question for it (the descriptive one is asked by rule: "What is <title>?"). A small
model asked to write a question and its answer at once mostly returns answers that are not in the
passage; a span always is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
DATE = re.compile(rf"\b(?:\d{{1,2}} (?:{MONTHS}) \d{{4}}|(?:{MONTHS}) \d{{1,2}}, \d{{4}}|(?:{MONTHS}) \d{{4}})\b")
YEAR = re.compile(r"\b(?:1[0-9]{3}|20[0-9]{2})\b")
NUMBER = re.compile(r"\b\d[\d,.]*(?: (?:million|billion|percent|km|kilometres|miles|metres|feet|people|episodes))?\b")
# Runs of capitalized words (with short joiners: "of", "the", "de", "-"), e.g. "University of Oxford".
WORD = r"(?:[A-Z]\.|[A-Z][\w'’-]*)"  # a capitalized word, or an initial like "J."
NAME = re.compile(rf"\b{WORD}(?:(?: (?:of|the|de|la|von|van|for))* {WORD})*")
# Where a sentence (or a list item, a heading, a bold lead) starts: one capitalized word there is mostly just that.
SENTENCE_START = re.compile(r"(?:^|[.!?:;]\s+|\n[ \t]*(?:[-*+>#]+[ \t]+|\d+\.[ \t]+)?|\*\*|[(\"“][ \t]*)$")
# One capitalized word used as an adjective: "an English essayist", "a Russian basketball player". Asked for,
# the small model puts it in its question or answers with a name; on the dev collection none of 50 was kept.
ADJECTIVE = re.compile(r"(?:an|ese|ish|ic|i)$")
LEADING = re.compile(r"^(?:In|On|At|After|During|By|From|With|For|When|While|Since|Although) ")  # "In September"
MONTH = re.compile(rf"^(?:{MONTHS})$")
STOP_NAMES = set(
    "The A An It He She They This In On At His Her Its After During As By From With For When While Since "
    "Although There".split()
)


# What a name is, from the words around it: the question's first word follows ("Who", "Where").
PLACE_BEFORE = re.compile(r"\b(?:in|at|near|from|to|across|outside|inside|into)\s+(?:the\s+)?$")
PERSON_BEFORE = re.compile(r"\b(?:by|with|and|directed by|written by|starring|married|son of|daughter of)\s+$")
PERSON_AFTER = re.compile(
    r"^(?:\s*\((?:born|died|\d{4})|,? who\b|,? (?:an?|the) (?:American|British|English|"
    r"Canadian|Australian|French|German|Indian|Irish|Scottish|Italian|Japanese)\b)"
)
ORG_WORDS = re.compile(
    r"\b(?:University|College|School|Company|Records|Inc|Ltd|Corporation|Club|Party|Council|"
    r"Association|Band|Group|Airlines|Studios|Team|League|Church|Museum|Institute)\b"
)
# A passage that opens by saying what its subject is: "X is/was a ..." (the descriptive question's answer).
DEFINES = re.compile(r"^(?P<subject>[^.!?]{2,120}?)\s+(?P<verb>is|was|are|were)\s+(?:an?|the|one)\b[^.!?]*[.!?]")
SENTENCE = re.compile(r"[^.!?]+[.!?]")


@dataclass(frozen=True)
class Span:
    text: str
    kind: str  # "date", "year", "number", "person", "place", "name", or "description" (a whole sentence)
    start: int


def name_kind(text: str, start: int, value: str) -> str:
    """person, place or name (anything else: a work, an organisation, a team), from the words around it."""
    if ORG_WORDS.search(value):
        return "name"
    if PLACE_BEFORE.search(text[max(0, start - 20) : start]):
        return "place"
    after = text[start + len(value) : start + len(value) + 40]
    if PERSON_BEFORE.search(text[max(0, start - 20) : start]) or PERSON_AFTER.search(after):
        return "person" if 2 <= len(value.split()) <= 4 else "name"
    return "name"


def a_name(text: str, start: int, value: str, title: str) -> bool:
    """Whether a run of capitalized words at ``start`` is a name worth asking for: not a stop word, not (in) the
    title, not a lone month or an adjective ("The Russian basketball player"), not one word opening a sentence
    (mostly just that: "Initially")."""
    if value in STOP_NAMES or value.lower() in title.lower() or len(value) < 3:
        return False
    bare = re.sub(r"^(?:The|A|An) ", "", value)
    if " " not in bare and (MONTH.match(bare) or adjective(text, start, value)):
        return False
    return " " in value or not SENTENCE_START.search(text[:start])


def adjective(text: str, start: int, value: str) -> bool:
    """Whether a one-word name is an adjective of nationality or origin before a common noun."""
    after = text[start + len(value) : start + len(value) + 2]  # the next word starts in lower case
    return bool(ADJECTIVE.search(value) and re.match(r" [a-z]", after))


def description(text: str, title: str) -> Span | None:
    """The passage's opening sentence when it says what its subject (the title) is, else None."""
    first = SENTENCE.match(text.strip())
    found = DEFINES.match(first.group(0).strip()) if first else None
    if not found or not title or title.lower()[:12] not in found.group("subject").lower():
        return None
    sentence = found.group(0).strip()
    return Span(sentence, "description", text.find(sentence)) if 6 <= len(sentence.split()) <= 60 else None


# Where no span is taken from: table rows, code blocks and inline code. On the Studio's docs they held most
# numbers and names, and their questions ("How many times can a process be spawned?" for a cell's 0.1) were
# 700 of 873 candidates for 5 kept pairs.
NOT_PROSE = re.compile(r"```[\s\S]*?(?:```|\Z)|`[^`\n]+`|^[^\n]*\|[^\n]*\|[^\n]*$", re.MULTILINE)


def not_prose(text: str) -> list[tuple[int, int]]:
    """Where tables and code are in ``text``. A chunk may start inside a code block: a first fence without a
    language (a closing one, most likely) when the fences are odd in number makes everything before it code."""
    found = []
    fences = list(re.finditer(r"^[ \t]*```(\w*)", text, re.MULTILINE))
    if len(fences) % 2 and not fences[0].group(1):
        found.append((0, fences[0].end()))
        text = " " * fences[0].end() + text[fences[0].end() :]  # the same positions, that fence used up
    return found + [m.span() for m in NOT_PROSE.finditer(text)]


COUNTED = re.compile(r" (?!(?:and|or|to|of|in|on|at|for|the|with|by|from|than|per|was|were|is|are)\b)[a-z]{3,}")


def counted(text: str, end: int, value: str) -> bool:
    """Whether a number counts something the question can name ("600 train", "15,000 seats", "5 km"): a whole
    number followed by a noun (or a unit the pattern took in). Decimals, and numbers followed by anything else
    (a version, a threshold, a table's figure), made questions the model could not answer back."""
    return " " in value or ("." not in value and bool(COUNTED.match(text, end)))


def find_spans(text: str, title: str = "") -> list[Span]:
    """Every candidate span of ``text`` in order of position, without repeats of the same text.

    Names equal to (or inside) the passage title are left out: the title is what the
    question is about, so asking for it makes a question that names its own answer. Tables
    and code are left out too (see ``NOT_PROSE``).
    """
    found: list[Span] = []
    taken = not_prose(text)
    for kind, pattern in (("date", DATE), ("year", YEAR), ("number", NUMBER), ("name", NAME)):
        for m in pattern.finditer(text):
            value = m.group(0).strip(" .,'’-")
            start = m.start()
            if kind == "name":
                value = re.sub(r"['’]s$", "", value)
                if lead := LEADING.match(value):  # a sentence's first word runs into the name after it
                    value, start = value[lead.end() :], start + lead.end()
            if not value or any(a <= start < b for a, b in taken):
                continue  # inside a longer span of an earlier kind (a year inside a date)
            if kind == "name" and not a_name(text, start, value, title):
                continue
            if kind == "number" and (YEAR.fullmatch(value) or not counted(text, m.end(), value)):
                continue
            found.append(Span(value, name_kind(text, start, value) if kind == "name" else kind, start))
            taken.append((m.start(), m.end()))
    seen, unique = set(), []
    for span in sorted(found, key=lambda s: s.start):
        if span.text not in seen:
            seen.add(span.text)
            unique.append(span)
    return unique
