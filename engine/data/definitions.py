"""Descriptive answers anywhere in a passage, and the questions they answer, made by rule.

Manuals, notes and reports rarely open by defining their title, as an encyclopedia paragraph does;
they say what things are and do in the middle of a paragraph, or in a list of terms:

- "The Studio is a local-first dashboard ..." -> "What is the Studio?"
- "The Trainer reads the rows sequentially." -> "What does the Trainer do?"
- "- **Review queue**: accept, edit or reject ..." -> "What is Review queue?" (a name keeps its case
  unless the passage also writes it in lower case)

The answer is the sentence (or the list item's first sentence), a span of the passage of 6 to 60
words; the question is made from its subject, so the small model only answers it (the round trip),
never writes it.
"""

from __future__ import annotations

import re

from engine.data.spans import Span

# A sentence of prose, which may wrap over lines (Markdown is often wrapped) but not into a blank line, a list
# item, a table row or a heading; a stop inside a word ("+20.3", "config.toml") does not end it.
SENTENCE = re.compile(r"(?:[^.!?\n]|[.!?](?=\S)|\n(?![ \t]*(?:\n|[-*+|#>]|\d+\.)))+[.!?](?=\s|$)")
# A list item that defines a term: "- **Term**: text", "- `term`: text", "* Term - text".
TERM = re.compile(
    r"^[ \t]*(?:[-*+]|\d+\.)[ \t]+(?P<lead>\*\*[^*\n]{2,50}\*\*|`[^`\n]{2,50}`|[^*`:\n]{2,50}?)[ \t]*"
    r"(?::|—| - )[ \t]+(?P<text>[^\n]{20,}(?:\n[ \t]+[^\n]+)*)",
    re.MULTILINE,
)
NOT_SUBJECTS = set(
    "no not everything nothing in on at by for from with without after before during it this that there "
    "these those here each every some which what one all both they he she we you i its his her their our "
    "your if when so but and or then also only such to as how why where who most more many few any".split()
)
IS = re.compile(r"^(?P<subject>[^,;:()]{2,60}?)\s+(?P<verb>is|are|was|were)\s+(?P<next>[\w`*\"'-]+)")
# After the verb: a passive ("are stored in", "is written once") or an adverb says how or where something is
# done, not what it is.
NOT_AFTER = set(
    "not also then now still only never always often usually therefore written made kept shown given "
    "taken known built run done found held read set put left sent seen cut split spent told drawn chosen".split()
)
# "The Trainer reads ...": a subject, then a verb in the third person (not "is", "has", "does" or a word that
# merely ends in s).
# A verb is told from a plural noun by what follows it: "reads the rows" (a verb), "figures therefore" (not).
DOES = re.compile(
    r"^(?P<subject>[^,;:()]{2,60}?)\s+(?P<verb>[a-z]{3,}s)\s+(?:the|a|an|it|its|them|each|every|all|"
    r"one|two|any|no|what|how|whether|`)\b"
)
NOT_VERBS = set(
    "is was has does this its always perhaps less unless thus yes plus across whereas as us series news "
    "status process access class bias focus basis analysis axis lens gas bus alias address success loss "
    "pass miss cross".split()
)


def subject_of(sentence: str) -> tuple[str, str]:
    """(subject, form) of a sentence that says what something is (form ``is``/``are``/``was``/``were``)
    or does (form ``does``/``do``); ("", "") for any other sentence."""
    flat = " ".join(re.sub(r"\s*\([^)]*\)", "", sentence).split())
    found = IS.match(flat)
    if found and not (found.group("next").endswith("ed") or found.group("next").lower() in NOT_AFTER):
        form = found.group("verb")
    else:
        found = DOES.match(flat)
        if not found or found.group("verb") in NOT_VERBS or found.group("verb").endswith("ss"):
            return "", ""
        form = "does"
    subject = found.group("subject").strip()
    words = subject.split()
    if len(words) == 1 and words[0] in ("The", "A", "An"):
        return "", ""
    if len(words) > 6 or words[0].lower() in NOT_SUBJECTS or words[-1].lower() in ("that", "which", "who"):
        return "", ""
    if not (subject[0].isupper() or subject[0] == "`") or any(w.lower() in ("is", "are", "was", "were") for w in words):
        return "", ""
    return subject, form


def definitions(text: str) -> list[Span]:
    """The descriptive answers of a passage: sentences saying what a named thing is or does, and the
    texts of list items that define a term, each with 6 to 60 words."""
    found = []
    for m in TERM.finditer(text):
        answer = first_sentence(m.group("text"))
        if 6 <= len(answer.split()) <= 60 and a_term(m.group("lead")):
            found.append(Span(answer, "description", m.start("text")))
    listed = {s.start for s in found}
    for m in SENTENCE.finditer(text):
        sentence = m.group(0).strip()
        start = m.start() + m.group(0).index(sentence)
        if start not in listed and subject_of(sentence)[0] and 6 <= len(sentence.split()) <= 60:
            if "|" not in sentence and not sentence.lstrip().startswith(("-", "*", "#")):
                found.append(Span(sentence, "description", start))
    return sorted(found, key=lambda s: s.start)


def a_term(term: str) -> bool:
    """Whether a list item's lead is a term (a name of at most five words), not a phrase or a figure."""
    term = term.strip().strip("*")
    return bool(re.fullmatch(r"[A-Za-z`][\w`/.'’ -]{1,40}", term)) and len(term.split()) <= 5


def first_sentence(text: str) -> str:
    found = SENTENCE.match(text)
    return found.group(0).strip() if found else text.strip()


def descriptive_question(title: str, sentence: str, passage: str = "") -> str:
    """The question a descriptive answer answers: "What is <subject>?" / "What does <subject> do?", the
    subject being the title when the sentence names it (a passage's opening sentence), a list item's term,
    or the sentence's own (its first word in lower case where the passage writes it so)."""
    at = passage.find(sentence) if passage else -1
    line_start = passage.rfind("\n", 0, at) + 1 if at > 0 else 0
    item = TERM.match(passage, line_start) if at > 0 else None
    if item and item.start("text") == at and a_term(item.group("lead")):
        return f"What is {lowered(item.group('lead').strip('*`'), passage)}?"
    own, form = subject_of(sentence)
    named = re.sub(r"\s*\([^)]*\)$", "", title.strip())  # "X (1996 film)": ask for X
    if not own or named.lower()[:12] in own.lower():
        verb = (
            form
            if form and form != "does"
            else next((w for w in ("is", "was", "are", "were") if f" {w} " in f" {sentence} "), "is")
        )
        return f"What {verb} {named or own}?"
    subject = lowered(own, passage)
    return f"What does {subject} do?" if form == "does" else f"What {form} {subject}?"


def lowered(subject: str, passage: str) -> str:
    """``subject`` with its first word in lower case when it is an article, or a capitalized common word the
    passage also writes in lower case ("Adapters are ..." -> "adapters"); names keep their case."""
    first, _, rest = subject.partition(" ")
    common = first[1:].islower() and re.search(rf"(?<![.!?]\s)\b{re.escape(first.lower())}\b", passage)
    if first in ("The", "A", "An") or common:
        first = first.lower()
    return f"{first} {rest}".strip()
