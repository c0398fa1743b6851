"""Preference datasets: pairs from Human Eval sessions, the judge's verdicts on A/B experiments and
corrections, merged and saved as a version of the dataset store (its lineage names each session and
experiment), and versions without pairs a person dropped."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from engine.errors import InputError, NotFoundError
from engine.preferences.corrections import correction_pairs
from engine.preferences.harvest import Harvest, ReviewItem, merge
from engine.preferences.judgements import judge_pairs
from engine.preferences.sessions import human_pairs
from engine.qa.preference import check_pairs, counts_by_origin, is_preference_version
from engine.qa.schema import QARecord
from engine.qa.versions import DatasetStore, Manifest, check_dataset_name, log_version
from engine.ratings.store import RatingStore, default_store
from engine.settings import Settings


@dataclass(frozen=True)
class PreferenceBuild:
    """A saved preference version, its pairs, the items that gave none (reason -> count) and the review list."""

    manifest: Manifest
    records: list[QARecord] = field(repr=False)
    skipped: dict[str, int]
    review: list[ReviewItem]

    @property
    def counts(self) -> dict[str, int]:
        """Pairs by origin (human, judge, correction), those with none left out."""
        return counts_by_origin(self.records)


def skipped_text(skipped: dict[str, int]) -> str:
    """'4 tie, 2 both_bad': the items that gave no pair, by reason (see harvest.SKIP_REASONS)."""
    return ", ".join(f"{n} {reason}" for reason, n in sorted(skipped.items()) if n)


def summary(counts: dict[str, int], skipped: dict[str, int]) -> str:
    """'12 pairs (9 human, 3 judge); no pair: 4 tie, 2 both_bad' (a version's note, the CLI's line)."""
    made = ", ".join(f"{n} {origin}" for origin, n in counts.items())
    left = skipped_text(skipped)
    return f"{sum(counts.values())} pairs ({made})" + (f"; no pair: {left}" if left else "")


def check_kind(settings: Settings, name: str) -> None:
    """An InputError when dataset ``name`` exists and holds QA records: pairs saved there would become the
    newest version that QA sets' users (evaluation, training, review) take."""
    datasets = DatasetStore(settings)
    if check_dataset_name(name) in datasets.datasets() and (found := datasets.versions(name)):
        if not is_preference_version(found[0]):
            raise InputError(
                f"Dataset {name!r} holds QA records, not preference pairs: save the pairs under another name."
            )


def build_preferences(
    settings: Settings,
    name: str,
    human_sessions: Iterable[str] = (),
    judge_experiments: Iterable[str] = (),
    corrections: bool = False,
    note: str = "",
    store: RatingStore | None = None,
    tracker=None,
) -> PreferenceBuild:
    """Build the pairs of the Human Eval sessions, the judged A/B experiments and (``corrections``) every stored
    correction, keep one of pairs alike (same question, answers and sources; the first origin's, in that order)
    and save them as a version of dataset ``name``, logged to MLflow when a ``tracker`` is given (it also reads
    the tables of sessions built from evaluation runs). An InputError when nothing is asked for or no pair
    comes of it (saying why)."""
    check_kind(settings, name)
    human_sessions, judge_experiments = list(dict.fromkeys(human_sessions)), list(dict.fromkeys(judge_experiments))
    if not (human_sessions or judge_experiments or corrections):
        raise InputError("Pick where pairs come from: a Human Eval session, a judged A/B experiment or corrections.")
    store = store or default_store(settings)
    harvests: list[Harvest] = [human_pairs(store, s, settings, tracker) for s in human_sessions]
    harvests += [judge_pairs(e, settings) for e in judge_experiments]
    if corrections:
        harvests.append(correction_pairs(store, settings, tracker))
    found = merge(harvests)
    skipped = dict(sorted(found.skipped.items()))
    if not found.pairs:
        why = f"no pair: {skipped_text(skipped)}" if skipped else "there is no rating, verdict or correction yet"
        raise InputError(f"No preference pair came of it ({why}). Nothing was saved.")
    counts = counts_by_origin(found.pairs)
    manifest = DatasetStore(settings).save(
        name,
        found.pairs,
        sources=found.sources,
        note=": ".join(filter(None, (note.strip(), summary(counts, skipped)))),
        counts={"skipped": skipped} if skipped else None,
    )
    if tracker is not None:
        log_version(tracker, manifest, found.pairs)
    return PreferenceBuild(manifest, found.pairs, skipped, found.review)


def drop_pairs(settings: Settings, name: str, version: str, ids: Iterable[str], tracker=None) -> Manifest:
    """A new version of ``name`` without the pairs ``ids`` of ``version`` (its parent; versions never change),
    logged to MLflow when a ``tracker`` is given."""
    datasets = DatasetStore(settings)
    records = check_pairs(datasets.load(name, version), f"{name}@{version}")
    dropped = set(ids)
    if not dropped:
        raise InputError("Select the pairs to drop.")
    if unknown := sorted(dropped - {r.id for r in records}):
        raise NotFoundError(f"{name}@{version} has no pair {unknown[0]!r}.")
    kept = [r for r in records if r.id not in dropped]
    if not kept:
        raise InputError(f"Dropping every pair of {name}@{version} would leave nothing: delete the dataset instead.")
    parent = datasets.manifest(name, version)
    manifest = datasets.save(
        name,
        kept,
        parent=version,
        sources=parent.sources,
        note=f"{len(dropped)} pairs of {version} dropped: {summary(counts_by_origin(kept), {})}",
    )
    if tracker is not None:
        log_version(tracker, manifest, kept)
    return manifest


def newest(settings: Settings, name: str) -> str:
    """The id of a dataset's newest version."""
    return DatasetStore(settings).versions(name)[0].id
