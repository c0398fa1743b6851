"""What a dataset version holds, in numbers: lengths, answer types, sources, topics, splits,
filter pass rates; and what changed between two versions."""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from engine.qa.schema import QARecord

ANSWER_TYPES = ("yes/no", "number", "date", "entity", "phrase", "long")
LONG_WORDS = 20  # an answer of more words is "long"
# a year or decade, an ISO or d/m/y date, or a month name with a number ("4 July 1776", "May 2010")
MONTH = (
    r"\b(?:january|february|march|april|may|june|july|august|september|october|november|december"
    r"|jan|feb|mar|apr|jun|jul|aug|sept?|oct|nov|dec)\.?(?!\w)"
)
DATE = re.compile(
    rf"(?:1\d{{3}}|20\d{{2}})s?|\d{{4}}-\d{{2}}-\d{{2}}|\d{{1,2}}/\d{{1,2}}/\d{{2,4}}|.*{MONTH}.*\d.*|.*\d.*{MONTH}.*",
    re.I,
)
NUMBER = re.compile(
    r"(?:about |around |over |more than |less than )?[-+]?[$€£]?\d[\d,]*(?:\.\d+)?%?(?: [a-z%]+){0,2}", re.I
)
NUMBER_WORDS = set(
    "zero one two three four five six seven eight nine ten eleven twelve twenty hundred thousand".split()
)
JOINERS = set("of the a an and or de la le du des von van der den da di del y el al in on for at to & 's".split())


def answer_type(answer: str) -> str:
    """One of :data:`ANSWER_TYPES`: yes/no, number, date, entity (<= 5 capitalized words), phrase, long."""
    text = answer.strip().rstrip(".!")
    words = text.split()
    if re.sub(r"[^\w\s]", "", text).strip().lower() in ("yes", "no"):
        return "yes/no"
    if len(words) <= 5 and DATE.fullmatch(text):
        return "date"
    if NUMBER.fullmatch(text) or (len(words) == 1 and text.lower() in NUMBER_WORDS):
        return "number"
    content = [w.lstrip("\"'“‘(") for w in words if w.lower() not in JOINERS]
    if len(words) <= 5 and content and all(w[:1].isupper() or w[:1].isdigit() for w in content):
        return "entity"
    return "phrase" if len(words) <= LONG_WORDS else "long"


def _distribution(values: list[int]) -> dict | None:
    if not values:
        return None
    q = np.percentile(np.asarray(values, dtype=float), [0, 25, 50, 75, 100])
    return {
        "min": int(q[0]),
        "p25": float(q[1]),
        "median": float(q[2]),
        "p75": float(q[3]),
        "max": int(q[4]),
        "mean": round(float(np.mean(values)), 3),
    }


def _filter_rates(records: list[QARecord], thresholds: dict) -> dict:
    """Per filter: how many records carry a score, its mean, and how many pass (a bool, or within its threshold)."""
    scores, passed = defaultdict(list), defaultdict(list)
    for r in records:
        for name, value in (r.metadata.get("scores") or {}).items():
            score, ok = (value.get("score"), value.get("passed")) if isinstance(value, dict) else (value, None)
            if isinstance(score, bool):
                ok = score if ok is None else ok
            if isinstance(score, int | float) and not isinstance(score, bool) and not math.isnan(score):
                scores[name].append(float(score))
                if ok is None and name in thresholds:
                    rule = thresholds[name]  # a minimum, or {"min": .., "max": ..}
                    rule = rule if isinstance(rule, dict) else {"min": rule}
                    ok = rule.get("min", -math.inf) <= score <= rule.get("max", math.inf)
            if ok is not None:
                passed[name].append(bool(ok))
    rates = {}
    for name in sorted(set(scores) | set(passed)):
        entry = {"scored": max(len(scores[name]), len(passed[name]))}
        if scores[name]:
            entry["mean"] = round(float(np.mean(scores[name])), 4)
        if passed[name]:
            entry |= {"passed": sum(passed[name]), "pass_rate": round(sum(passed[name]) / len(passed[name]), 4)}
        rates[name] = entry
    return rates


def tally(records: list[QARecord], key: str) -> dict:
    """How many records have each value of a metadata key, most common first."""
    return dict(Counter(str(r.metadata[key]) for r in records if r.metadata.get(key) not in (None, "")).most_common())


def stats(records: Iterable[QARecord], thresholds: dict | None = None) -> dict:
    """A dataset's report: length distributions (words), answer types, sources, categories, topics, splits, filters.

    The context length of a record is the words of all its contexts; records without contexts are not counted.
    """
    records = list(records)
    report = {
        "count": len(records),
        "lengths": {
            "question": _distribution([len(r.question.split()) for r in records]),
            "answer": _distribution([len(r.answer.split()) for r in records]),
            "context": _distribution([sum(len(c.text.split()) for c in r.contexts) for r in records if r.contexts]),
        },
        "answer_types": {t: 0 for t in ANSWER_TYPES} | Counter(answer_type(r.answer) for r in records),
        "sources": tally(records, "source"),
        "categories": tally(records, "category"),
    }
    for name, key in (("topics", "topic_label"), ("splits", "split")):
        if found := tally(records, key):
            report[name] = found
    if rates := _filter_rates(records, thresholds or {}):
        report["filters"] = rates
    return report


# --------------------------------------------------------------------------- comparing versions


@dataclass(frozen=True)
class VersionDiff:
    added: tuple[QARecord, ...]
    removed: tuple[QARecord, ...]
    changed: tuple[tuple[QARecord, QARecord], ...]  # (old, new): same question, other answer or contexts
    unchanged: int
    stat_deltas: dict  # new minus old: count, mean_words.*, answer_type.*, split.*


def _numbers(report: dict) -> dict:
    values = {"count": report["count"]}
    values |= {f"mean_words.{k}": d["mean"] for k, d in report["lengths"].items() if d}
    values |= {f"answer_type.{k}": n for k, n in report["answer_types"].items()}
    return values | {f"split.{k}": n for k, n in report.get("splits", {}).items()}


def _question_key(record: QARecord) -> str:
    return " ".join(record.question.lower().split())


def _same_key(record: QARecord) -> tuple:
    """What makes two records the same item: the id and the content it hashes. The content matters when a
    version holds one id twice (a file's own ids, or a version saved before imports refused repeats)."""
    return record.id, record.question, record.answer, tuple((c.title, c.text) for c in record.contexts)


def diff(old: Iterable[QARecord], new: Iterable[QARecord]) -> VersionDiff:
    """What changed between two versions; an item whose question stays (ignoring case and spacing) is changed."""
    old, new = list(old), list(new)
    unmatched = Counter(_same_key(r) for r in old)
    unchanged, new_rest, old_rest = 0, [], []
    for r in new:
        if unmatched[key := _same_key(r)] > 0:
            unmatched[key] -= 1
            unchanged += 1
        else:
            new_rest.append(r)
    for r in old:  # the old records left over: the counter holds how many of each are left
        if unmatched[key := _same_key(r)] > 0:
            unmatched[key] -= 1
            old_rest.append(r)
    by_question = defaultdict(list)
    for r in old_rest:
        by_question[_question_key(r)].append(r)
    added, changed = [], []
    for r in new_rest:
        bucket = by_question.get(_question_key(r))
        if bucket:
            changed.append((bucket.pop(0), r))
        else:
            added.append(r)
    paired = {id(o) for o, _ in changed}
    before, after = _numbers(stats(old)), _numbers(stats(new))
    deltas = {}
    for key in dict.fromkeys([*before, *after]):
        if key.startswith("mean_words.") and not (key in before and key in after):
            continue  # a mean that one side lacks has no difference
        deltas[key] = round(after.get(key, 0) - before.get(key, 0), 3)
    removed = tuple(r for r in old_rest if id(r) not in paired)
    return VersionDiff(
        added=tuple(added), removed=removed, changed=tuple(changed), unchanged=unchanged, stat_deltas=deltas
    )


# --------------------------------------------------------------------------- storage
