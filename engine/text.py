"""Answer text as the metrics and the retrieval-side checks compare it: normalized words and their overlap.

The normalization is SQuAD's (and the official HotpotQA script's): lower case, no punctuation, no
articles a/an/the, single spaces. It lives below every layer that compares texts (the metrics in
``engine.evaluation``, citation matching and source focus in ``engine.rag``), so they agree.
"""

from __future__ import annotations

import re
import string

PUNCTUATION = set(string.punctuation)


def normalize_answer(s: str) -> str:
    """The official SQuAD/HotpotQA normalization."""
    s = s.lower()
    s = "".join(ch for ch in s if ch not in PUNCTUATION)
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def token_share(text: str, context: str) -> float:
    """Share of the text's (normalized) words that occur in the context."""
    tokens = normalize_answer(text).split()
    if not tokens:
        return 0.0
    context_tokens = set(normalize_answer(context).split())
    return sum(t in context_tokens for t in tokens) / len(tokens)
