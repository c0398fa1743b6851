"""Which answer style a question is asked in: a short span for factoid questions, one to three
sentences for descriptive ones, chosen from the question's form (or forced by the user).

"Who wrote it?", "When ...", "Which port ...", "How many ...", "Is it ...?" and "What year ..."
want a span; "What is the Studio for?", "What is a knowledge base?", "Why ...", "How does ...
work?", "What does X do?" and "Explain ..." want sentences. An adapter answers in the style it was
trained for (its training spec's ``answer_style``, recorded in the registry), unless the user
forces another.
"""

from __future__ import annotations

import re

from engine.errors import check_choice
from engine.models.adapters import AdapterRegistry
from engine.rag.prompt import STYLES, PromptTemplate

ASK_STYLES = ("auto", "short", "sentences")  # what the user chooses between: auto picks per question
STYLE_HELP = "auto: a short span for who/when/where/which/how many questions, sentences for what is/why/how does"

SPAN_OPENERS = {"who", "whom", "whose", "when", "where", "which"}
DESCRIPTIVE_OPENERS = {"why", "explain", "describe", "summarize", "summarise", "tell", "compare", "list", "outline"}
QUANTITIES = {"many", "much", "long", "old", "far", "big", "large", "small", "often", "fast", "tall", "high", "few"}
AUXILIARIES = set(
    "is are was were am do does did can could will would should shall may might must has have had".split()
)
COPULAS = {"is", "are", "was", "were"}
PREPOSITIONS = {"in", "on", "at", "for", "from", "to", "by", "with", "of", "during", "after", "before", "since"}
# "What is the purpose of X?" asks for an explanation, not an attribute like "the capital of X".
ABSTRACT_HEADS = set(
    "purpose point role difference differences meaning idea goal aim use uses advantage advantages "
    "benefit benefits reason reasons".split()
)
WORD = re.compile(r"[a-z0-9][a-z0-9'/_.-]*")
CONTRACTED = re.compile(r"\b(what|who|where|when|how|why)'s\b")  # "What's X for?" is "What is X for?"


def style_for(question: str) -> str:
    """``short`` for a factoid question, ``sentences`` for a descriptive one, by the question's form."""
    words = WORD.findall(CONTRACTED.sub(r"\1 is", question.lower().replace("\u2019", "'")))
    while len(words) > 1 and words[0] in PREPOSITIONS:  # "On which port ...", "In what year ..."
        words = words[1:]
    if not words:
        return "short"
    first, rest = words[0], words[1:]
    if first in SPAN_OPENERS:
        return "short"
    if first in DESCRIPTIVE_OPENERS:
        return "sentences"
    if first == "how":
        return "short" if rest[:1] and rest[0] in QUANTITIES else "sentences"
    if first == "what":
        return what_style(rest)
    if first in AUXILIARIES:
        return "short"  # a yes/no question
    return "short" if question.strip().endswith("?") else "sentences"  # "Tell me ..." without "tell"


def what_style(rest: list[str]) -> str:
    """The style of a question that starts with "what" (``rest``: its other words)."""
    if not rest:
        return "sentences"
    if rest[0] in ("happens", "happened", "if"):
        return "sentences"
    if rest[0] in ("does", "do", "did"):  # "What does X do / mean / stand for?"
        return "sentences" if rest[-1] in ("do", "mean", "for", "about") and rest[-2:] != ["stand", "for"] else "short"
    if rest[0] not in COPULAS:
        return "short"  # "What port does ...", "What year was ..."
    subject = rest[1:]
    if not subject or subject[-1] in ("for", "about", "like"):
        return "sentences"  # "What is the Studio for?"
    if subject[0] in ("a", "an"):
        return "sentences"  # "What is a knowledge base?"
    bare = subject[1:] if subject[0] == "the" else subject
    if bare and bare[0] in ABSTRACT_HEADS:
        return "sentences"
    if "of" in subject or subject[-1] in ("in", "on", "at", "from", "by", "with"):
        return "short"  # "What is the capital of France?", "What are chunk ids made of?"
    return "sentences" if len(bare) <= 2 else "short"  # "What is LoRA?" / "What is the default chunk size?"


def resolve_style(question: str, style: str = "auto", trained: str = "") -> str:
    """The style to answer ``question`` in: ``style`` when forced; for ``auto`` the style an adapter was
    ``trained`` for (empty: no adapter), else the one the question's form asks for."""
    check_choice(style, ASK_STYLES, "answer style")
    if style != "auto":
        return style
    return trained if trained in STYLES else style_for(question)  # an adapter trained "auto" asks per question


def question_template(
    template: PromptTemplate, question: str, style: str = "auto", trained: str = "", adapter: bool = False
) -> PromptTemplate:
    """The prompt ``question`` is asked in, the same for the Query page, ``engine ask``, the evaluation and
    training: in the style :func:`resolve_style` picks (``trained``: an adapter's training style). An adapter
    asked in the style it was trained for gets its ``template`` exactly; otherwise the template in that style,
    with the style's worked examples if it shows any."""
    chosen = resolve_style(question, style, trained)
    return template if adapter and chosen == template.answer_style else template.styled(chosen)


def trained_style(settings, adapter: str) -> str:
    """The answer style the registry's ``adapter`` was trained for ("" without an adapter)."""
    if not adapter.strip():
        return ""

    return style_of(AdapterRegistry(settings).get(adapter.strip()))


def style_of(info) -> str:
    """The answer style an adapter (an ``AdapterInfo``) was trained for: its training spec's
    ``answer_style``. Adapters saved before styles were recorded were all trained on short answers."""
    return info.train.get("rag", {}).get("answer_style") or "short"
