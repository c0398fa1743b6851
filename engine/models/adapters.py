"""The adapter registry: LoRA adapters saved by name, with what they were trained on and how well they do.

Each adapter is a folder ``<data_dir>/adapters/<name>/`` holding what PEFT's ``save_pretrained``
writes (``adapter_config.json``, ``adapter_model.safetensors``) plus ``studio.json``: the base
model, datasets, LoRA and training settings, prompt template, metrics and MLflow run.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from engine.errors import InputError, NotFoundError
from engine.models.spec import ModelSpec, resolve_source
from engine.names import check_safe_name, is_safe_name
from engine.settings import Settings
from engine.write_policy import move, remove_tree, scratch_beside, write_atomic

META_FILE = "studio.json"
EXPORT_FILE = "studio-export.json"
# Saves, renames and deletes check-then-move folders: one lock keeps two threads of the app apart.
WRITING = threading.RLock()


def check_name(name: str) -> str:
    """The stripped adapter name, or InputError: it is also the guard against path traversal."""
    return check_safe_name(name, "adapter")


@dataclass(frozen=True)
class AdapterInfo:
    """One saved adapter and its metadata (``studio.json``)."""

    name: str
    path: Path
    base: dict = field(default_factory=dict)  # the ModelSpec fields of the base model
    created: str = ""  # ISO 8601, UTC
    datasets: tuple[dict, ...] = ()  # {name, path, sha256, examples}
    lora: dict = field(default_factory=dict)
    prompt: str = ""  # the prompt template trained with: "zero-shot", "few-shot", ...
    metrics: dict = field(default_factory=dict)
    mlflow_run_id: str | None = None
    train: dict = field(default_factory=dict)
    size_bytes: int = 0

    def base_spec(self) -> ModelSpec:
        """The ModelSpec of the base model this adapter was trained on."""
        if not self.base.get("source"):
            raise InputError(f"Adapter {self.name!r} does not record its base model (studio.json is missing or bad).")
        known = {f.name for f in dataclasses.fields(ModelSpec)}
        return ModelSpec(**{k: v for k, v in self.base.items() if k in known})


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def plain(value):
    """JSON-ready metadata: dataclasses (ModelSpec, LoraSpec) become dicts, tuples lists, paths strings."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return plain(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return str(value) if isinstance(value, Path) else value


def write_json(path: Path, data: dict) -> None:
    """Write through a temp file and rename, so a reader never sees half a file."""
    write_atomic(path, json.dumps(plain(data), indent=2, ensure_ascii=False) + "\n")


def read_info(path: Path) -> AdapterInfo:
    """The AdapterInfo of an adapter folder; a missing or corrupt studio.json gives what can be read."""
    try:
        meta = json.loads((path / META_FILE).read_text(encoding="utf-8"))
        meta = meta if isinstance(meta, dict) else {}
    except (OSError, ValueError):
        meta = {}
    metrics = {}
    for key, value in (meta.get("metrics") or {}).items():
        try:
            metrics[key] = float(value)
        except (TypeError, ValueError):
            continue  # a hand-edited non-number: leave it out rather than fail the listing
    created = meta.get("created") or datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat(timespec="seconds")
    return AdapterInfo(
        name=path.name,  # the folder is the truth: it is what get() and the guard work on
        path=path,
        base=dict(meta.get("base") or {}),
        created=str(created),
        datasets=tuple(d for d in meta.get("datasets") or () if isinstance(d, dict)),
        lora=dict(meta.get("lora") or {}),
        prompt=str(meta.get("prompt") or ""),
        metrics=metrics,
        mlflow_run_id=meta.get("mlflow_run_id") or None,
        train=dict(meta.get("train") or {}),
        size_bytes=int(meta.get("size_bytes") or folder_size(path)),
    )


class AdapterRegistry:
    """Saved LoRA adapters under ``settings.data_dir / "adapters"``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    def root(self) -> Path:
        return self.settings.data_dir / "adapters"

    def path(self, name: str) -> Path:
        return self.root / check_name(name)

    def exists(self, name: str) -> bool:
        return self.path(name).is_dir()

    def names(self) -> list[str]:
        """Adapter names, sorted; temp folders (dot names, never valid) are skipped."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and is_safe_name(p.name))

    def list(self) -> list[AdapterInfo]:
        """All adapters, newest first."""
        infos = [read_info(self.root / name) for name in self.names()]
        return sorted(infos, key=lambda i: (i.created, i.name), reverse=True)

    def get(self, name: str) -> AdapterInfo:
        path = self.path(name)
        if not path.is_dir():
            known = ", ".join(self.names()) or "none saved yet"
            raise NotFoundError(f"No adapter named {name.strip()!r}. Known adapters: {known}.")
        return read_info(path)

    def save(self, model, name: str, meta: dict, overwrite: bool = False) -> AdapterInfo:
        """Save a PEFT model's adapter with its metadata, atomically: a reader sees the old adapter
        or the complete new one, never a half-written folder."""
        name = check_name(name)
        target = self.root / name
        with WRITING:
            if target.exists() and not overwrite:
                raise InputError(f"An adapter named {name!r} already exists: choose another name or overwrite it.")
            self.root.mkdir(parents=True, exist_ok=True)
            # same filesystem: the renames are atomic; what is left of either scratch folder is removed
            with scratch_beside(target) as tmp, scratch_beside(target, "old") as old:
                model.save_pretrained(str(tmp), safe_serialization=True)
                data = {k: v for k, v in plain(meta or {}).items() if k not in ("name", "created", "size_bytes")}
                data.update(name=name, created=now_iso(), size_bytes=folder_size(tmp))
                write_json(tmp / META_FILE, data)
                replacing = target.exists()
                if replacing:
                    move(target, old, self.settings)
                try:
                    tmp.rename(target)
                except OSError:
                    if replacing:
                        move(old, target, self.settings)  # put the previous adapter back
                    raise
        return read_info(target)

    def update_meta(self, name: str, /, **fields) -> AdapterInfo:
        """Change metadata fields; ``metrics`` are merged into the existing ones (evaluations add up)."""
        allowed = {f.name for f in dataclasses.fields(AdapterInfo)} - {"name", "path", "created", "size_bytes"}
        unknown = sorted(set(fields) - allowed)
        if unknown:
            choices = ", ".join(sorted(allowed))
            raise InputError(f"Cannot set {', '.join(unknown)} on an adapter: choose from {choices}.")
        with WRITING:
            info = self.get(name)
            try:
                data = json.loads((info.path / META_FILE).read_text(encoding="utf-8"))
                data = data if isinstance(data, dict) else {}
            except (OSError, ValueError):
                data = {}
            fields = plain(fields)
            if "metrics" in fields:
                fields["metrics"] = {**(data.get("metrics") or {}), **(fields["metrics"] or {})}
            data.update(fields, name=info.name)
            write_json(info.path / META_FILE, data)
        return read_info(info.path)

    def rename(self, old: str, new: str) -> AdapterInfo:
        new = check_name(new)
        with WRITING:
            info = self.get(old)
            target = self.root / new
            if target.exists():
                raise InputError(f"An adapter named {new!r} already exists.")
            move(info.path, target, self.settings)
            return self.update_meta(new)  # rewrites studio.json with the new name

    def delete(self, name: str) -> None:
        with WRITING:
            remove_tree(self.get(name).path, self.settings)


def same_base(a: dict, b: ModelSpec) -> bool:
    """Whether a recorded base and a loaded spec are the same weights (same source and GGUF file)."""
    if (a.get("gguf_file") or None) != (b.gguf_file or None):
        return False
    if a.get("source") == b.source:
        return True
    try:  # "pkg:x" and the folder it points to are the same model
        return Path(resolve_source(a["source"])) == Path(resolve_source(b.source))
    except (InputError, KeyError):
        return False


def check_base(info: AdapterInfo, loaded) -> None:
    """InputError unless the adapter was trained on the loaded model's weights (or records no base)."""
    if info.base and not same_base(info.base, loaded.spec):
        need = info.base.get("source", "?") + (f" ({info.base['gguf_file']})" if info.base.get("gguf_file") else "")
        raise InputError(
            f"Adapter {info.name!r} was trained on {need}, not on the loaded model {loaded.spec.name!r}: "
            "load that base model first."
        )
