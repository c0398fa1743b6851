"""Immutable dataset versions: saved once under their content hash, described, compared, tracked.

A version is a folder ``<data_dir>/datasets/<dataset>/<version>/`` holding ``records.jsonl``,
``manifest.json`` (where the data came from and how it was made) and ``report.json`` (its
:func:`stats`). The version id is :func:`engine.qa.schema.content_hash` of the records, so the
same data always gets the same id and an existing version folder is never written again.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
import warnings
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from engine.errors import InputError, NotFoundError, StudioError
from engine.names import check_safe_name, is_safe_name
from engine.qa.exports import to_frame, write_jsonl
from engine.qa.records import read_records
from engine.qa.schema import QARecord, content_hash
from engine.qa.summary import stats, tally
from engine.settings import Settings
from engine.write_policy import move, remove_tree, scratch_beside

EXPERIMENT = "studio-datasets"
RECORDS, MANIFEST, REPORT = "records.jsonl", "manifest.json", "report.json"


def check_dataset_name(name: str) -> str:
    """The stripped dataset name, or an InputError (e.g. for ``../x``)."""
    return check_safe_name(name, "dataset")


@dataclass(frozen=True)
class Manifest:
    """How a dataset version was made."""

    id: str
    dataset: str
    parent: str = ""  # the version this one was derived from
    created: str = ""  # ISO 8601, UTC
    sources: tuple[dict, ...] = ()  # {name, path, sha256} of files, or {description}
    generator: str = ""  # the model that generated or filtered the items
    prompt: str = ""
    thresholds: dict = field(default_factory=dict)  # filter name -> minimum score, or {"min": .., "max": ..}
    counts: dict = field(default_factory=dict)  # records, and per split / source
    note: str = ""

    def to_dict(self) -> dict:
        return {**asdict(self), "sources": list(self.sources)}

    @classmethod
    def from_dict(cls, data: dict) -> Manifest:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**{**known, "sources": tuple(known.get("sources") or ())})


# --------------------------------------------------------------------------- statistics


def _source(source: str | os.PathLike | dict) -> dict:
    if isinstance(source, dict):
        return dict(source)
    if isinstance(source, str) and not Path(source).is_file():
        return {"description": source}
    path = Path(source)
    if not path.is_file():
        raise InputError(f"The source file {path} does not exist.")
    return file_identity(path.resolve())


def file_identity(path: Path) -> dict:
    """A source file's name, path and content hash, as lineage records it."""
    with open(path, "rb") as f:
        return {"name": path.name, "path": str(path), "sha256": hashlib.file_digest(f, "sha256").hexdigest()}


def _counts(records: list[QARecord]) -> dict:
    tallies = {name: tally(records, key) for name, key in (("splits", "split"), ("sources", "source"))}
    return {"records": len(records)} | {name: found for name, found in tallies.items() if found}


class DatasetStore:
    """Named datasets, each a list of immutable versions, under ``<data_dir>/datasets``."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.root = settings.data_dir / "datasets"

    def folder(self, dataset: str, version: str = "") -> Path:
        folder = self.root / check_dataset_name(dataset)
        if version:
            if not is_safe_name(version):
                raise NotFoundError(f"{version!r} is not a version id of dataset {dataset!r}.")
            folder = folder / version
        return folder

    def save(
        self,
        dataset: str,
        records: Iterable[QARecord],
        parent: str = "",
        sources: Iterable[str | os.PathLike | dict] = (),
        generator: str = "",
        prompt: str = "",
        thresholds: dict | None = None,
        note: str = "",
        counts: dict | None = None,
    ) -> Manifest:
        """Save a version (its id: the records' content hash); the same content returns the saved version as is.

        ``counts`` adds to the counted records, splits and sources (e.g. a generation funnel).
        """
        records = list(records)
        if not records:
            raise InputError(f"Dataset {dataset!r}: a version needs at least one record.")
        version = content_hash(records)
        target = self.folder(dataset, version)
        if (target / MANIFEST).is_file():
            return self.manifest(dataset, version)
        manifest = Manifest(
            id=version,
            dataset=check_dataset_name(dataset),
            parent=parent,
            created=datetime.now(UTC).isoformat(),
            sources=tuple(_source(s) for s in sources),
            generator=generator,
            prompt=prompt,
            thresholds=dict(thresholds or {}),
            counts=_counts(records) | (counts or {}),
            note=note,
        )
        with scratch_beside(target) as tmp:
            tmp.mkdir(parents=True)
            write_jsonl(records, tmp / RECORDS)
            (tmp / REPORT).write_text(json.dumps(stats(records, thresholds), indent=2, ensure_ascii=False))
            (tmp / MANIFEST).write_text(json.dumps(manifest.to_dict(), indent=2, ensure_ascii=False))
            try:
                os.rename(tmp, target)  # whole or not at all: readers never see half a version
            except OSError:
                if (target / MANIFEST).is_file():  # saved meanwhile by another thread or process
                    return self.manifest(dataset, version)
                raise StudioError(f"{target} is in the way of dataset version {version}; move it aside.") from None
        return manifest

    def datasets(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and is_safe_name(p.name))

    def versions(self, dataset: str) -> list[Manifest]:
        """The dataset's versions, newest first."""
        folder = self.folder(dataset)
        if not folder.is_dir():
            known = ", ".join(self.datasets()) or "none yet"
            raise NotFoundError(f"There is no dataset {dataset!r}; saved datasets: {known}.")
        found = [self._read_manifest(p / MANIFEST) for p in folder.iterdir() if (p / MANIFEST).is_file()]
        return sorted(found, key=lambda m: m.created, reverse=True)

    def _read_manifest(self, path: Path) -> Manifest:
        return Manifest.from_dict(json.loads(path.read_text(encoding="utf-8")))

    def _version(self, dataset: str, version: str) -> Path:
        folder = self.folder(dataset, version)
        if not (folder / MANIFEST).is_file():
            known = ", ".join(m.id for m in self.versions(dataset)) or "none"
            raise NotFoundError(
                f"Dataset {dataset!r} has no version {version!r}; its versions (newest first): {known}."
            )
        return folder

    def manifest(self, dataset: str, version: str) -> Manifest:
        return self._read_manifest(self._version(dataset, version) / MANIFEST)

    def load(self, dataset: str, version: str) -> list[QARecord]:
        return read_records(self._version(dataset, version) / RECORDS, kind="studio").records

    def report(self, dataset: str, version: str) -> dict:
        return json.loads((self._version(dataset, version) / REPORT).read_text(encoding="utf-8"))

    def delete_dataset(self, dataset: str) -> None:
        """Delete a dataset with all its versions (versions themselves are never deleted one by one)."""
        folder = self.folder(dataset)
        if not folder.is_dir():
            raise NotFoundError(f"There is no dataset {dataset!r}.")
        doomed = move(folder, self.root / f".deleting-{uuid.uuid4().hex[:12]}", self.settings)
        remove_tree(doomed, self.settings)  # gone from the list at once (the move), even if this takes a while


# --------------------------------------------------------------------------- MLflow


def log_dataset_input(tracker, run_id: str, manifest: Manifest, records: Iterable[QARecord], context="training"):
    """Name a version as an input of an MLflow run (digest: the version id), e.g. of a training run."""
    import mlflow.data
    from mlflow.entities import DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    source = DatasetStore(tracker.settings).folder(manifest.dataset, manifest.id) / RECORDS
    with warnings.catch_warnings():  # a local path matches two equal source types; ints cannot be missing: noise
        warnings.simplefilter("ignore", UserWarning)
        data = mlflow.data.from_pandas(
            to_frame(records), source=str(source), name=f"{manifest.dataset}@{manifest.id}", digest=manifest.id
        )
        entity = data._to_mlflow_entity()  # what mlflow.log_input sends; the schema is inferred here
    entry = DatasetInput(entity, tags=[InputTag(MLFLOW_DATASET_CONTEXT, context)])
    tracker.client.log_inputs(run_id, datasets=[entry])


def param_key(*parts: str) -> str:
    """An MLflow parameter name from parts (a user's source or topic label may hold any character;
    MLflow takes letters, digits, ``_ - . : /`` and spaces)."""
    return ".".join(re.sub(r"[^\w\-.:/ ]", "_", p) for p in parts if p)


def log_version(tracker, manifest: Manifest, records: Iterable[QARecord]) -> str:
    """Log a version as a run of the ``studio-datasets`` experiment; returns the run id."""
    records = list(records)
    params = {"dataset": manifest.dataset, "version": manifest.id, "parent": manifest.parent}
    for group, values in manifest.counts.items():  # {"records": 3, "splits": {"train": 2}} -> count, count.splits.train
        items = values.items() if isinstance(values, dict) else [("", values)]
        params |= {param_key("count", group if group != "records" else "", k): v for k, v in items}
    params |= {"generator": manifest.generator} if manifest.generator else {}
    tags = {"studio.dataset": manifest.dataset, "studio.version": manifest.id}
    run_id = tracker.start(EXPERIMENT, f"{manifest.dataset}@{manifest.id}", params, tags)
    try:
        tracker.log_dict(run_id, manifest.to_dict(), MANIFEST)
        tracker.log_dict(run_id, stats(records, manifest.thresholds), REPORT)
        log_dataset_input(tracker, run_id, manifest, records, context="dataset")
    except Exception:
        tracker.end(run_id, "FAILED")
        raise
    tracker.end(run_id)
    return run_id
