"""Where the Studio keeps its state, and which servers it talks to.

Everything is configured by environment variables so that the app, the CLI, background
jobs and tests agree without passing paths around:

- ``STUDIO_DATA_DIR``: models cache, knowledge bases, MLflow store, jobs (default ``./data``).
- ``STUDIO_SHARED_DATA``: the shared public datasets (default ``../shared/data``).
- ``STUDIO_CHROMA_URL``: a Chroma server (``http://host:port``) instead of the on-disk store.
- ``MLFLOW_TRACKING_URI``: an MLflow server instead of the SQLite file in the data dir.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(default_factory=lambda: ROOT / "data")
    shared_data_dir: Path = field(default_factory=lambda: ROOT.parent / "shared" / "data")
    chroma_url: str | None = None
    mlflow_uri: str | None = None

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def chroma_dir(self) -> Path:
        return self.data_dir / "chroma"

    @property
    def jobs_dir(self) -> Path:
        return self.data_dir / "jobs"

    @property
    def tracking_uri(self) -> str:
        return self.mlflow_uri or f"sqlite:///{self.data_dir / 'mlflow.db'}"


def load_settings() -> Settings:
    """Settings from the environment, with the defaults of :class:`Settings`."""
    env = os.environ
    defaults = Settings()
    return Settings(
        data_dir=Path(env["STUDIO_DATA_DIR"]).resolve() if env.get("STUDIO_DATA_DIR") else defaults.data_dir,
        shared_data_dir=Path(env["STUDIO_SHARED_DATA"]).resolve()
        if env.get("STUDIO_SHARED_DATA")
        else defaults.shared_data_dir,
        chroma_url=env.get("STUDIO_CHROMA_URL") or None,
        mlflow_uri=env.get("MLFLOW_TRACKING_URI") or None,
    )
