"""The model the Studio answers with by default, kept in the data dir so the app and the CLI agree.

A choice is a model source (empty: the default model) and a LoRA adapter from the registry (empty:
none). The guided loop makes a winning adapter active; ``engine ask`` and the app (the model it starts
with, the Query page's adapter) read it. A choice made on the Models page lasts while the app runs.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace

from engine.errors import InputError
from engine.models.adapters import AdapterRegistry
from engine.models.catalog import default_spec
from engine.models.spec import spec_for
from engine.settings import Settings
from engine.write_policy import write_atomic

ACTIVE_FILE = "active-model.json"


@dataclass(frozen=True)
class ActiveChoice:
    model: str = ""  # a HF id, a folder or a .gguf file; empty: the default model
    adapter: str = ""


def read_active(settings: Settings) -> ActiveChoice:
    """The saved choice; nothing saved, or a file that cannot be read, is the default model."""
    path = settings.data_dir / ACTIVE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return ActiveChoice(str(data.get("model") or ""), str(data.get("adapter") or ""))
    except (OSError, ValueError, AttributeError):
        return ActiveChoice()


def active_spec(settings: Settings):
    """The saved choice as a model spec (the default model's preset for a model given by source). A model
    path or an adapter that is no longer there falls back to the default model, without that adapter."""
    choice = read_active(settings)
    try:
        base = spec_for(choice.model) if choice.model else default_spec()
    except InputError:
        base = default_spec()
    adapter = choice.adapter if choice.adapter in AdapterRegistry(settings).names() else ""
    return replace(base, adapter=adapter)


def set_active(settings: Settings, model: str = "", adapter: str = "") -> ActiveChoice:
    """Save the choice (an adapter must exist in the registry)."""
    if adapter:
        AdapterRegistry(settings).get(adapter)  # NotFoundError names the registered ones
    choice = ActiveChoice(model.strip(), adapter.strip())
    write_atomic(settings.data_dir / ACTIVE_FILE, json.dumps(asdict(choice)))
    return choice
