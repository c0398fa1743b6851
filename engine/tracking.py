"""Every query and evaluation as an MLflow run: SQLite in the data dir, or a tracking server.

One experiment per activity (``studio-query``, ``studio-evaluation``, ``studio-training``,
``studio-models``). We use
``MlflowClient`` with an explicit URI rather than the fluent API's process-global state, so
the app, jobs and tests can each point at their own store.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, is_dataclass

import pandas as pd

from engine.configs import to_yaml
from engine.file_locks import held
from engine.settings import Settings

QUERY = "studio-query"
EVALUATION = "studio-evaluation"
TRAINING = "studio-training"
MODELS = "studio-models"  # model loads that were downgraded, and why
BENCHMARKS = "studio-benchmarks"  # benchmark matrices: speed, memory and quality per precision
AB = "studio-ab"  # A/B experiments: variants on the same items, their paired tests
HUMAN_EVAL = "studio-human-eval"  # blind human ratings of two variants: win rates, strengths, agreement
LOCK = "mlflow.db.lock"  # beside the SQLite store: serialises its creation across processes


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    experiment: str
    name: str
    status: str
    start_time: float
    params: dict
    metrics: dict


class Tracker:
    def __init__(self, settings: Settings):
        from mlflow.tracking import MlflowClient

        self.settings = settings
        self.ids: dict[str, str] = {}
        if settings.mlflow_uri:
            self.client = MlflowClient(tracking_uri=settings.tracking_uri)
            return
        # The client opens the store, and MLflow creates the SQLite tables (alembic migrations) when a
        # process first opens it; two processes doing that at once break each other's migrations, so the
        # opening is one process at a time. The store is cached per process: later Trackers find it made.
        with held(settings.data_dir / LOCK):
            self.client = MlflowClient(tracking_uri=settings.tracking_uri)

    @property
    def uri(self) -> str:
        return self.settings.tracking_uri

    def experiment_id(self, name: str) -> str:
        if name not in self.ids:
            found = self.client.get_experiment_by_name(name)
            if found is not None:
                self.ids[name] = found.experiment_id
            else:
                # With the SQLite store, artifacts would land in ./mlruns of whatever folder the
                # process runs in; keep them in the data dir instead.
                location = None if self.settings.mlflow_uri else (self.settings.data_dir / "mlartifacts").as_uri()
                self.ids[name] = self._create_experiment(name, location)
        return self.ids[name]

    def _create_experiment(self, name: str, location: str | None) -> str:
        """A new experiment's id; if another process created it since we looked, that one's id."""
        from mlflow.exceptions import MlflowException

        try:
            return self.client.create_experiment(name, artifact_location=location)
        except MlflowException as e:
            found = self.client.get_experiment_by_name(name) if e.error_code == "RESOURCE_ALREADY_EXISTS" else None
            if found is None:
                raise
            return found.experiment_id

    def start(self, experiment: str, name: str, params: dict | None = None, tags: dict | None = None) -> str:
        run = self.client.create_run(self.experiment_id(experiment), run_name=name, tags=tags or {})
        if params:
            self.log_params(run.info.run_id, params)
        return run.info.run_id

    def log_params(self, run_id: str, params: dict) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)[:6000]) for k, v in params.items()]
        self.client.log_batch(run_id, params=items)

    def log_metrics(self, run_id: str, metrics: dict, step: int = 0) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k.replace("@", "_at_"), float(v), now, step) for k, v in metrics.items()]
        self.client.log_batch(run_id, metrics=items)

    def log_steps(self, run_id: str, rows: list[tuple[int, dict]]) -> None:
        """Metrics of many steps at once: ``[(step, {name: value}), ...]``."""
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        items = [Metric(k, float(v), now, step) for step, values in rows for k, v in values.items()]
        for lo in range(0, len(items), 900):  # MLflow takes at most 1000 metrics per batch
            self.client.log_batch(run_id, metrics=items[lo : lo + 900])

    def log_artifacts(self, run_id: str, folder, path: str) -> None:
        self.client.log_artifacts(run_id, str(folder), path)

    def log_text(self, run_id: str, text: str, path: str) -> None:
        self.client.log_text(run_id, text, path)

    def log_config(self, run_id: str, spec) -> None:
        """The run's spec as its settings file ``config.yaml`` (what ``--config`` and the forms' Load read)."""
        self.log_text(run_id, to_yaml(spec), "config.yaml")

    def log_dict(self, run_id: str, data: dict, path: str) -> None:
        self.client.log_dict(run_id, data, path)

    def log_table(self, run_id: str, frame, path: str) -> None:
        self.client.log_table(run_id, data=frame, artifact_file=path)

    def end(self, run_id: str, status: str = "FINISHED") -> None:
        self.client.set_terminated(run_id, status=status)

    def recent(self, experiment: str, limit: int = 20) -> list[RunSummary]:
        found = self.client.get_experiment_by_name(experiment)
        if found is None:
            return []
        runs = self.client.search_runs(
            [found.experiment_id], order_by=["attributes.start_time DESC"], max_results=limit
        )
        return [
            RunSummary(
                run_id=r.info.run_id,
                experiment=experiment,
                name=r.info.run_name or "",
                status=r.info.status,
                start_time=r.info.start_time / 1000,
                params=dict(r.data.params),
                metrics=dict(r.data.metrics),
            )
            for r in runs
        ]

    def load_table(self, run_id: str, path: str):
        """A table logged with :meth:`log_table`, as a pandas DataFrame."""
        from mlflow.artifacts import download_artifacts

        local = download_artifacts(run_id=run_id, artifact_path=path, tracking_uri=self.uri)
        with open(local) as f:
            data = json.load(f)
        return pd.DataFrame(data["data"], columns=data["columns"])


def plain_json(value):
    """``value`` as JSON data for ``log_dict``: dataclasses as dicts, NaN as null, infinities as text."""
    if is_dataclass(value) and not isinstance(value, type):
        return plain_json(asdict(value))
    if isinstance(value, dict):
        return {str(k): plain_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_json(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return value
