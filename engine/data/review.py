"""The review queue: a person accepts, edits or rejects a version's QA pairs, and the decisions save a new version.

Decisions are kept per record id (a record not named is undecided). While a review is in progress they live in
a draft, ``<data_dir>/datasets/<dataset>/.reviews/<version>.json``, rewritten whole after every decision, so a
review of hundreds of pairs can stop and go on later (the draft goes when the dataset is deleted). Saving
applies them: rejected pairs are dropped, edited ones replaced by a new record (a new id: the id is a content
hash) that keeps the passages, documents and metadata and names the old id in ``origin``; every reviewed record
carries ``review`` = ``accepted`` or ``edited``. The new version's parent is the reviewed one.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from engine.errors import InputError, check_choice
from engine.file_locks import held
from engine.qa.schema import QARecord
from engine.qa.versions import DatasetStore, Manifest, log_version
from engine.settings import Settings
from engine.write_policy import remove_file, write_atomic

ACCEPT, EDIT, REJECT = "accept", "edit", "reject"
ACTIONS = (ACCEPT, EDIT, REJECT)
PAST = {ACCEPT: "accepted", EDIT: "edited", REJECT: "rejected"}


@dataclass(frozen=True)
class Decision:
    """What the reviewer decided about one pair; an edit holds the new question and/or answer (None: unchanged)."""

    action: str
    question: str | None = None
    answer: str | None = None

    def __post_init__(self) -> None:
        check_choice(self.action, ACTIONS, "review decision")
        if self.action != EDIT:
            if self.question is not None or self.answer is not None:
                raise InputError(f"Only an edit has a new question or answer, not {self.action!r}.")
            return
        for name in ("question", "answer"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise InputError(f"An edit cannot leave the {name} empty: write one, or reject the pair.")
            if value is not None:
                object.__setattr__(self, name, value.strip())
        if self.question is None and self.answer is None:
            raise InputError("An edit gives a new question, a new answer, or both.")

    def to_dict(self) -> dict:
        return {"action": self.action} | {k: v for k in ("question", "answer") if (v := getattr(self, k)) is not None}

    @classmethod
    def from_dict(cls, data: str | dict) -> Decision:
        """A decision from ``"accept"``/``"reject"`` or ``{"action": ..., "question": ..., "answer": ...}``."""
        if isinstance(data, str):
            return cls(data.strip().lower())
        if not isinstance(data, dict):
            raise InputError('A decision is "accept", "reject" or an object with "action" (and an edit\'s texts).')
        return cls(str(data.get("action", "")).strip().lower(), data.get("question"), data.get("answer"))


def decide(record: QARecord, action: str, question: str | None = None, answer: str | None = None) -> Decision:
    """The decision for ``record`` from the reviewer's action and the texts shown to them: accepting changed
    texts is an edit, and an edit that changes nothing is an acceptance (so no typed change is ever lost)."""
    if action == REJECT:
        return Decision(REJECT)
    check_choice(action, (ACCEPT, EDIT), "review decision")
    new_q = record.question if question is None else question.strip()
    new_a = record.answer if answer is None else answer.strip()
    if (new_q, new_a) == (record.question, record.answer):
        return Decision(ACCEPT)
    return Decision(EDIT, new_q if new_q != record.question else None, new_a if new_a != record.answer else None)


def table_changes(
    records: Iterable[QARecord], decisions: Mapping[str, Decision], rows: Iterable[Mapping]
) -> dict[str, Decision | None]:
    """What a table of the queue changed: each row has ``id``, ``decision`` (``undecided`` or an action),
    ``question`` and ``answer``; changed texts make an edit unless the row is rejected. None: undecided again."""
    by_id, changes = {r.id: r for r in records}, {}
    for row in rows:
        record = by_id[row["id"]]
        question, answer = str(row.get("question") or ""), str(row.get("answer") or "")  # a cleared cell: None
        if row["decision"] == REJECT:
            new = Decision(REJECT)
        elif row["decision"] not in ACTIONS and (question.strip(), answer.strip()) == (record.question, record.answer):
            new = None
        else:
            try:
                new = decide(record, EDIT if row["decision"] == EDIT else ACCEPT, question, answer)
            except InputError as exc:
                raise InputError(f"{exc} (the pair {record.question[:60]!r})") from None
        if new != decisions.get(record.id):
            changes[record.id] = new
    return changes


def parse_decisions(data: Mapping) -> dict[str, Decision]:
    """Decisions from JSON: ``{record id: decision}``, or a draft file's form (the same under ``decisions``)."""
    if not isinstance(data, Mapping):
        raise InputError("Review decisions are a JSON object: record id -> decision.")
    if isinstance(data.get("decisions"), Mapping):
        data = data["decisions"]
    found = {}
    for record_id, value in data.items():
        try:
            found[str(record_id)] = Decision.from_dict(value)
        except InputError as exc:
            raise InputError(f"Record {record_id}: {exc}") from None
    return found


def read_decisions(path: str | Path) -> dict[str, Decision]:
    """Decisions from a JSON file (see :func:`parse_decisions`)."""
    path = Path(path).expanduser()
    try:
        return parse_decisions(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise InputError(f"There is no decisions file {path}.") from None
    except ValueError as exc:
        raise InputError(f"{path} is not valid JSON: {exc}") from None


def apply_review(
    records: Iterable[QARecord], decisions: Mapping[str, Decision], keep_undecided: bool = True
) -> list[QARecord]:
    """The reviewed records, in their order: rejected ones dropped, edited ones replaced, accepted ones marked;
    undecided ones kept as they are (or dropped without ``keep_undecided``)."""
    records = list(records)
    unknown = set(decisions) - {r.id for r in records}
    if unknown:
        raise InputError(
            f"{len(unknown)} decisions name records that are not in this version: "
            f"{', '.join(sorted(unknown)[:5])}. Review the version they were made on."
        )
    out = []
    for r in records:
        d = decisions.get(r.id)
        if d is None:
            if keep_undecided:
                out.append(r)
        elif d.action == REJECT:
            continue
        elif d.action == ACCEPT or (d.question or r.question, d.answer or r.answer) == (r.question, r.answer):
            out.append(r.with_metadata(review=PAST[ACCEPT]))  # an edit to the same texts changes nothing
        else:
            out.append(
                QARecord(
                    question=d.question or r.question,
                    answer=d.answer or r.answer,
                    contexts=r.contexts,
                    doc_ids=r.doc_ids,
                    metadata={**r.metadata, "origin": r.id, "review": PAST[EDIT]},
                )
            )
    seen: dict[str, QARecord] = {}
    for r in out:
        if r.id in seen:  # an edit made a pair identical to another one: the version would hold one id twice
            raise InputError(
                f"The edited pair {r.question[:60]!r} / {r.answer[:40]!r} is now the same as another "
                "pair of this version: reject one of them instead."
            )
        seen[r.id] = r
    return out


def review_counts(records: Iterable[QARecord], decisions: Mapping[str, Decision]) -> dict[str, int]:
    """How many pairs are accepted, edited, rejected, and left undecided."""
    ids = [r.id for r in records]
    tally = Counter(decisions[i].action for i in ids if i in decisions)
    return {PAST[a]: tally[a] for a in ACTIONS} | {"left": sum(i not in decisions for i in ids)}


# --------------------------------------------------------------------------- drafts (decisions in progress)


def draft_path(settings: Settings, dataset: str, version: str) -> Path:
    """Where the decisions in progress on a version are kept (the version must exist)."""
    store = DatasetStore(settings)
    store.manifest(dataset, version)  # a NotFoundError naming the known versions
    return store.folder(dataset) / ".reviews" / f"{store.folder(dataset, version).name}.json"


def load_decisions(settings: Settings, dataset: str, version: str) -> dict[str, Decision]:
    """The decisions in progress on a version ({} before the first one)."""
    path = draft_path(settings, dataset, version)
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return parse_decisions(data)
    except (ValueError, InputError) as exc:
        raise InputError(
            f"The review decisions in {path} cannot be read ({exc}): discard them to start again."
        ) from None


def record_decisions(
    settings: Settings, dataset: str, version: str, changes: Mapping[str, Decision | None]
) -> dict[str, Decision]:
    """Set (a Decision) or clear (None) decisions in the draft; all the decisions now in it."""
    path = draft_path(settings, dataset, version)
    with held(path.with_name(f".{path.name}.lock")):  # two tabs reviewing the same version both keep theirs
        decisions = load_decisions(settings, dataset, version)
        for record_id, decision in changes.items():
            if decision is None:
                decisions.pop(record_id, None)
            else:
                decisions[record_id] = decision
        data = {
            "dataset": dataset,
            "version": version,
            "updated": datetime.now(UTC).isoformat(),
            "decisions": {k: d.to_dict() for k, d in decisions.items()},
        }
        write_atomic(path, json.dumps(data, indent=1, ensure_ascii=False))
    return decisions


def discard_decisions(settings: Settings, dataset: str, version: str) -> bool:
    """Forget the decisions in progress on a version; False if there were none."""
    return remove_file(draft_path(settings, dataset, version), settings)


def save_review(
    settings: Settings,
    dataset: str,
    version: str,
    decisions: Mapping[str, Decision] | None = None,
    keep_undecided: bool = True,
    tracker=None,
) -> tuple[Manifest, dict[str, int]]:
    """Save the reviewed records as a new version whose parent is ``version``: (its manifest, the counts).

    ``decisions`` default to the draft's, which stays (a later save from it gives the same version).
    """
    store = DatasetStore(settings)
    records = store.load(dataset, version)
    decisions = load_decisions(settings, dataset, version) if decisions is None else dict(decisions)
    if not decisions:
        raise InputError(f"No decision yet on {dataset}@{version}: accept, edit or reject some pairs first.")
    reviewed = apply_review(records, decisions, keep_undecided)
    if not reviewed:
        raise InputError("Every pair was rejected or left undecided: there is nothing to save.")
    counts = review_counts(records, decisions)
    left = f"{counts['left']} undecided {'kept' if keep_undecided else 'dropped'}"
    note = f"review: {counts['accepted']} accepted, {counts['edited']} edited, {counts['rejected']} rejected, {left}"
    manifest = store.save(dataset, reviewed, parent=version, note=note, counts={"review": counts})
    if manifest.id == version:
        raise InputError(f"These decisions change nothing in {dataset}@{version}.")
    if tracker is not None:
        log_version(tracker, manifest, reviewed)
    return manifest, counts
