"""Taking a model out of the Studio: base + adapter merged into a standalone model folder."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from engine.models.adapters import EXPORT_FILE, AdapterRegistry, now_iso, write_json
from engine.models.loader import apply_adapter, load_model
from engine.settings import Settings
from engine.write_policy import check_export_target, publish_folder


def merge_export(
    registry: AdapterRegistry, name: str, target: Path, settings: Settings, overwrite: bool = False
) -> Path:
    """Export base + adapter merged as a standalone model folder (safetensors, tokenizer, config).

    The target must be new (or an empty folder); ``overwrite`` replaces only an earlier export of the Studio.
    """
    target = check_export_target(target, overwrite)  # before the slow load
    info = registry.get(name)
    # full precision on CPU: merging into 8/4-bit or float16 weights would lose the adapter's small deltas
    spec = dataclasses.replace(info.base_spec(), dtype="float32", device="cpu", quantization="none")
    loaded = load_model(spec, settings)
    model = apply_adapter(loaded, info, merge=True)

    def build(folder: Path) -> None:
        model.save_pretrained(str(folder))  # transformers 5 always writes safetensors
        loaded.tokenizer.save_pretrained(str(folder))
        export = {"base": info.base, "adapter": info.name, "adapter_created": info.created, "lora": info.lora}
        write_json(
            folder / EXPORT_FILE, {**export, "prompt": info.prompt, "metrics": info.metrics, "exported": now_iso()}
        )

    return publish_folder(target, build, overwrite)
