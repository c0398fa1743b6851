"""The model catalog: bundled entries plus the user's own, in ``<data dir>/catalog.yaml``.

An entry names a model (a Hugging Face id, a local folder, a GGUF file, ``pkg:<package>``, or a model
behind an OpenAI-compatible server, ``openai:<base_url>#<model>``)
and, per device kind (cpu, cuda, mps), three presets: ``quality``, ``balanced`` and ``speed``
(dtype, quantization, max new tokens, batch size). A user entry with a bundled entry's name
replaces it. A bad entry is an :class:`InputError` that names the entry and the field.

The user file is a YAML list, for example::

    - name: qwen2.5-0.5b
      source: Qwen/Qwen2.5-0.5B-Instruct
      params_m: 494
      presets:
        cpu:
          balanced: {dtype: bfloat16, quantization: none, max_new_tokens: 64, batch_size: 4}

Presets left out of a user entry come from :data:`DEFAULT_PRESETS`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import yaml

from engine.errors import InputError, check_choice
from engine.models.spec import (
    BUNDLED_GGUF,
    BUNDLED_PACKAGE,
    DEFAULT_MODEL,
    DTYPES,
    QUANTIZATIONS,
    ModelSpec,
    is_remote,
    resolve_device,
)
from engine.settings import Settings
from engine.write_policy import write_atomic

DEVICE_KINDS = ("cpu", "cuda", "mps")
PRESETS = ("quality", "balanced", "speed")
CATALOG_FILE = "catalog.yaml"


@dataclass(frozen=True)
class Preset:
    """How to run a model for one aim on one kind of device."""

    dtype: str = "auto"
    quantization: str = "none"
    max_new_tokens: int = 64
    batch_size: int = 8

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise InputError(f"dtype {self.dtype!r} is not one of {', '.join(DTYPES)}")
        if self.quantization not in QUANTIZATIONS:
            raise InputError(f"quantization {self.quantization!r} is not one of {', '.join(QUANTIZATIONS)}")
        if not (isinstance(self.max_new_tokens, int) and 1 <= self.max_new_tokens <= 8192):
            raise InputError(f"max_new_tokens {self.max_new_tokens!r} is not a whole number from 1 to 8192")
        if not (isinstance(self.batch_size, int) and 1 <= self.batch_size <= 512):
            raise InputError(f"batch_size {self.batch_size!r} is not a whole number from 1 to 512")


# Full precision for quality; on a GPU the fast native half precision for balance and 4-bit weights
# for speed. On a CPU torch's int4 weight-only path for both: the benchmark matrix measured it
# fastest for one answer (3.1x float32) with F1 within a point of float32 (docs/performance.md),
# where bitsandbytes' 8-bit was no faster than float32 and peaked at 10 GB.
DEFAULT_PRESETS: dict[str, dict[str, Preset]] = {
    "cpu": {
        "quality": Preset(dtype="float32", quantization="none", max_new_tokens=128, batch_size=4),
        "balanced": Preset(dtype="auto", quantization="int4-weight", max_new_tokens=64, batch_size=8),
        "speed": Preset(dtype="auto", quantization="int4-weight", max_new_tokens=32, batch_size=16),
    },
    "cuda": {
        "quality": Preset(dtype="bfloat16", quantization="none", max_new_tokens=128, batch_size=8),
        "balanced": Preset(dtype="float16", quantization="none", max_new_tokens=64, batch_size=16),
        "speed": Preset(dtype="float16", quantization="4bit", max_new_tokens=64, batch_size=32),
    },
    "mps": {
        "quality": Preset(dtype="float32", quantization="none", max_new_tokens=128, batch_size=4),
        "balanced": Preset(dtype="float16", quantization="none", max_new_tokens=64, batch_size=8),
        "speed": Preset(dtype="float16", quantization="none", max_new_tokens=32, batch_size=16),
    },
}


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    source: str
    gguf_file: str | None = None
    description: str = ""
    params_m: float | None = None  # millions of parameters: memory estimates before a download
    presets: dict[str, dict[str, Preset]] = field(default_factory=lambda: DEFAULT_PRESETS)
    bundled: bool = False

    def preset(self, device_kind: str, aim: str = "balanced") -> Preset:
        check_choice(device_kind, DEVICE_KINDS, "device kind")
        check_choice(aim, PRESETS, "preset")
        return self.presets[device_kind][aim]

    def model_spec(self, device_kind: str = "cpu", aim: str = "balanced") -> ModelSpec:
        """The spec that loads this entry with a preset (device ``auto``: the best one present)."""
        if is_remote(self.source):  # the server decides how it runs: no precision here
            return ModelSpec(name=self.name, source=self.source, gguf_file=None)
        p = self.preset(device_kind, aim)
        return ModelSpec(
            name=self.name, source=self.source, gguf_file=self.gguf_file, dtype=p.dtype, quantization=p.quantization
        )


BUNDLED: tuple[CatalogEntry, ...] = (
    CatalogEntry(
        name="smollm2-135m-instruct",
        source=f"pkg:{BUNDLED_PACKAGE}",
        gguf_file=BUNDLED_GGUF,
        description="SmolLM2-135M-Instruct, shipped with the Studio (GGUF Q4_1, converted once to safetensors). "
        "Offline.",
        params_m=135,
        bundled=True,
    ),
    CatalogEntry(
        "smollm2-360m-instruct",
        "HuggingFaceTB/SmolLM2-360M-Instruct",
        description="SmolLM2-360M-Instruct from the Hugging Face Hub (online once).",
        params_m=362,
        bundled=True,
    ),
    CatalogEntry(
        "qwen2.5-0.5b-instruct",
        "Qwen/Qwen2.5-0.5B-Instruct",
        description="Qwen2.5-0.5B-Instruct from the Hugging Face Hub (online once).",
        params_m=494,
        bundled=True,
    ),
    CatalogEntry(
        "smollm2-1.7b-instruct",
        "HuggingFaceTB/SmolLM2-1.7B-Instruct",
        description="SmolLM2-1.7B-Instruct from the Hugging Face Hub (online once).",
        params_m=1711,
        bundled=True,
    ),
)


def default_spec() -> ModelSpec:
    """The model the Studio answers with until another is made active: the bundled model with the
    catalog's balanced preset for this device (on a CPU, torch's int4 weight-only path)."""
    kind = resolve_device("auto").split(":")[0]
    return next(e for e in BUNDLED if e.name == DEFAULT_MODEL.name).model_spec(kind, "balanced")


def parse_entry(raw, where: str) -> CatalogEntry:
    """One user entry from its YAML mapping; errors name ``where`` and the field."""
    if not isinstance(raw, dict):
        raise InputError(f"{where}: an entry is a mapping with at least name and source.")
    unknown = set(raw) - {"name", "source", "gguf_file", "description", "params_m", "presets"}
    if unknown:
        raise InputError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}.")
    name, source = str(raw.get("name") or "").strip(), str(raw.get("source") or "").strip()
    if not name or not source:
        raise InputError(f"{where}: name and source are required.")
    where = f"{where} ({name})"
    params = raw.get("params_m")
    if params is not None and (not isinstance(params, int | float) or params <= 0):
        raise InputError(f"{where}: params_m must be a positive number (millions of parameters).")
    presets = {kind: dict(aims) for kind, aims in DEFAULT_PRESETS.items()}
    given = raw.get("presets") or {}
    if not isinstance(given, dict):
        raise InputError(f"{where}: presets must map a device kind to presets.")
    for kind, aims in given.items():
        if kind not in DEVICE_KINDS or not isinstance(aims, dict):
            raise InputError(f"{where}: presets.{kind}: use {', '.join(DEVICE_KINDS)}, each a mapping of presets.")
        for aim, values in aims.items():
            if aim not in PRESETS or not isinstance(values, dict):
                raise InputError(f"{where}: presets.{kind}.{aim}: use {', '.join(PRESETS)}, each a mapping.")
            try:
                presets[kind][aim] = replace(DEFAULT_PRESETS[kind][aim], **values)
            except TypeError as e:
                raise InputError(f"{where}: presets.{kind}.{aim}: unknown setting ({e}).") from e
            except InputError as e:
                raise InputError(f"{where}: presets.{kind}.{aim}: {e}") from e
    gguf = raw.get("gguf_file")
    return CatalogEntry(
        name=name,
        source=source,
        gguf_file=str(gguf) if gguf else None,
        description=str(raw.get("description") or ""),
        params_m=float(params) if params is not None else None,
        presets=presets,
    )


def parse_catalog(text: str, where: str = CATALOG_FILE) -> list[CatalogEntry]:
    """User entries from YAML text (an empty text is no entries)."""
    try:
        data = yaml.safe_load(text) if text.strip() else []
    except yaml.YAMLError as e:
        raise InputError(f"{where} is not valid YAML: {str(e).splitlines()[0]}") from e
    if not isinstance(data, list):
        raise InputError(f"{where} must be a list of entries (each starting with '- name: ...').")
    entries = [parse_entry(raw, f"{where}, entry {n}") for n, raw in enumerate(data, start=1)]
    names = [e.name for e in entries]
    if dupes := sorted({n for n in names if names.count(n) > 1}):
        raise InputError(f"{where}: the name(s) {', '.join(dupes)} appear more than once.")
    return entries


def catalog_path(settings: Settings) -> Path:
    return settings.data_dir / CATALOG_FILE


def load_catalog(settings: Settings) -> list[CatalogEntry]:
    """Bundled entries, then the user's (a user entry replaces a bundled one of the same name)."""
    path = catalog_path(settings)
    user = parse_catalog(path.read_text(encoding="utf-8"), str(path)) if path.is_file() else []
    mine = {e.name for e in user}
    return [e for e in BUNDLED if e.name not in mine] + user


def save_user_catalog(settings: Settings, text: str) -> list[CatalogEntry]:
    """Check YAML text and store it as the user's catalog; a bad text changes nothing."""
    entries = parse_catalog(text)
    write_atomic(catalog_path(settings), text)
    return entries


def find_entry(entries: list[CatalogEntry], name: str) -> CatalogEntry:
    for entry in entries:
        if entry.name == name:
            return entry
    raise InputError(f"No catalog entry {name!r}: choose one of {', '.join(e.name for e in entries)}.")


def entry_as_dict(entry: CatalogEntry) -> dict:
    """An entry as plain data (for tables and YAML)."""
    data = asdict(entry)
    data.pop("bundled")
    return data
