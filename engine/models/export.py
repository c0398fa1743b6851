"""Taking a model out of the Studio: the base model, or base + adapter merged, as a standalone model folder.

Formats (:data:`EXPORT_FORMATS`): ``safetensors`` (a transformers model folder) or GGUF, for llama.cpp and Ollama,
in F16, Q8_0 or 4 bits (Q4_1): a folder holding the ``.gguf`` file, an Ollama ``Modelfile`` and a README.
Every export goes through :func:`engine.write_policy.publish_folder`; a background ``export`` job runs one
(:class:`ExportRun`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from engine.errors import check_choice
from engine.job_kinds import register_job_kind
from engine.models.active import active_spec
from engine.models.adapters import EXPORT_FILE, AdapterInfo, AdapterRegistry, now_iso, write_json
from engine.models.gguf_export import GGUF_TYPES, Progress, check_supported, read_string_field, write_gguf
from engine.models.loader import apply_adapter, load_model
from engine.models.modelfile import ChatDefaults, modelfile_text, readme_text
from engine.models.spec import ModelSpec, resolve_source
from engine.settings import Settings
from engine.write_policy import check_export_target, publish_folder

EXPORT_FORMATS = ("safetensors", "gguf-f16", "gguf-q8_0", "gguf-q4")


def full_precision(spec: ModelSpec) -> ModelSpec:
    # full precision on CPU: merging into 8/4-bit or float16 weights would lose the adapter's small deltas
    return dataclasses.replace(spec, dtype="float32", device="cpu", quantization="none", adapter="")


def export_record(spec: ModelSpec, info: AdapterInfo | None, fmt: str) -> dict:
    """What ``studio-export.json`` says of an export: the base, the adapter (if any) and its record, the format."""
    record = {"base": dataclasses.asdict(spec), "base_name": spec.name, "format": fmt, "exported": now_iso()}
    if info is not None:
        adapter = {"adapter": info.name, "adapter_created": info.created, "lora": info.lora, "prompt": info.prompt}
        record.update(base=info.base, **adapter, metrics=info.metrics)
    return record


def save_safetensors(folder: Path, model, tokenizer, record: dict) -> None:
    model.save_pretrained(str(folder))  # transformers 5 always writes safetensors
    tokenizer.save_pretrained(str(folder))
    write_json(folder / EXPORT_FILE, record)


def merge_export(
    registry: AdapterRegistry, name: str, target: Path, settings: Settings, overwrite: bool = False
) -> Path:
    """Export base + adapter merged as a standalone model folder (safetensors, tokenizer, config).

    The target must be new (or an empty folder); ``overwrite`` replaces only an earlier export of the Studio.
    """
    return export_model(settings, name, "safetensors", target, overwrite)


def gguf_name(name: str, fmt: str) -> str:
    """The file name of a GGUF export: ``<name>.<type>.gguf``, as the bundled model's."""
    return f"{name}.{GGUF_TYPES[fmt]}.gguf"


def export_model(
    settings: Settings,
    adapter: str | None,
    fmt: str,
    target: str | Path,
    overwrite: bool = False,
    on_progress: Progress | None = None,
    chat: ChatDefaults = ChatDefaults(),
) -> Path:
    """Export the adapter merged into its base (no adapter: the active base model as it is) in ``fmt`` to the
    folder ``target``; ``on_progress(done, total)`` counts tensors written. ``chat`` goes into a GGUF export's
    Modelfile. The target must be new (or an empty folder); ``overwrite`` replaces only an earlier Studio export."""
    check_choice(fmt, EXPORT_FORMATS, "export format")
    target = check_export_target(target, overwrite)  # before the slow load
    info = AdapterRegistry(settings).get(adapter) if adapter else None
    spec = info.base_spec() if info else active_spec(settings)
    loaded = load_model(full_precision(spec), settings)
    model = apply_adapter(loaded, info, merge=True) if info else loaded.model
    record = export_record(spec, info, fmt)
    if fmt == "safetensors":
        folder = publish_folder(target, lambda tmp: save_safetensors(tmp, model, loaded.tokenizer, record), overwrite)
        if on_progress is not None:
            on_progress(1, 1)
        return folder
    check_supported(model)  # before anything is written
    name = info.name if info else spec.name
    file_name = gguf_name(name, fmt)
    source = Path(resolve_source(spec.source)) / spec.gguf_file if spec.gguf_file else None
    pre = read_string_field(source, "tokenizer.ggml.pre")  # how the base's GGUF splits text before BPE, if any
    tokenizer = loaded.tokenizer

    def build(folder: Path) -> None:
        folder.mkdir(parents=True)
        write_gguf(model, tokenizer, folder / file_name, fmt, name, on_progress, pre)
        context = model.config.max_position_embeddings
        modelfile = modelfile_text(file_name, tokenizer.chat_template, tokenizer.eos_token, context, chat)
        (folder / "Modelfile").write_text(modelfile, encoding="utf-8")
        (folder / "README.md").write_text(readme_text(name, file_name, record, chat), encoding="utf-8")
        write_json(folder / EXPORT_FILE, {**record, "file": file_name})

    return publish_folder(target, build, overwrite)


@dataclass(frozen=True)
class ExportRun:
    """A background export (:func:`export_model`): ``adapter`` ('' : the active base model as it is) in ``format``
    to the folder ``to``."""

    adapter: str = ""
    format: str = "gguf-f16"
    to: str = ""
    overwrite: bool = False


# The task reads the adapter's prompt (system message, answer length) for the Modelfile: the prompt is the
# rag layer's, above this one, so the task lives with the command line's export.
register_job_kind("export", "engine.cli.export:export_job", ExportRun)
