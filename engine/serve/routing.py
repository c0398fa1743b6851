"""Which model a request names: ``default`` (the active model), a catalog entry, ``<base>+<adapter>``,
or ``rag:<kb>`` (the active model answering over a knowledge base, with its sources)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from engine.models.adapters import AdapterRegistry
from engine.models.catalog import load_catalog
from engine.models.manager import ModelManager
from engine.models.spec import ModelSpec, resolve_device
from engine.rag.ingest import DOCS_KB
from engine.serve.protocol import ApiError
from engine.settings import Settings

DEFAULT = "default"
RAG_PREFIX = "rag:"


@dataclass(frozen=True)
class Target:
    """A resolved model name: what to load, and the knowledge base to answer over (empty: none)."""

    spec: ModelSpec
    kb: str = ""


def base_spec(name: str, manager: ModelManager, settings: Settings) -> ModelSpec:
    """``default``: the active model; a catalog entry by name: its balanced preset on this device."""
    active = manager.active_spec
    if name == DEFAULT or (active is not None and name == active.name):
        if active is None:
            raise ApiError(404, "No model is active: load one on the Models page.", code="model_not_found")
        return replace(active, adapter="")
    for entry in load_catalog(settings):
        if entry.name == name:
            return entry.model_spec(resolve_device("auto").split(":")[0], "balanced")
    raise ApiError(404, unknown(name, settings), code="model_not_found")


def resolve(name: str, manager: ModelManager, settings: Settings, kb: str = "") -> Target:
    """The target of a request's ``model`` (and its ``rag`` field's knowledge base, if any)."""
    name = (name or DEFAULT).strip()
    if name.startswith(RAG_PREFIX):
        name, kb = DEFAULT, name[len(RAG_PREFIX) :].strip()
        if not kb:
            raise ApiError(404, "rag:<kb> needs a knowledge base name, e.g. rag:studio-docs.", code="model_not_found")
    base, _, adapter = name.partition("+")
    spec = base_spec(base, manager, settings)
    if adapter:
        registry = AdapterRegistry(settings)
        if adapter not in registry.names():
            raise ApiError(404, f"No adapter {adapter!r}; the adapters are: {listing(registry.names())}.",
                           code="model_not_found")  # fmt: skip
        spec = replace(spec, adapter=adapter)
    elif base == DEFAULT and manager.active_spec is not None:
        spec = manager.active_spec  # the active model with its adapter, as the pages answer
    return Target(spec=spec, kb=kb)


def model_names(manager: ModelManager, settings: Settings, kbs: list[str]) -> list[str]:
    """What ``GET /v1/models`` lists: default, the catalog, each adapter on its base, each knowledge base
    (a remote catalog model too: the server asks it)."""
    names = [DEFAULT, *(e.name for e in load_catalog(settings))]
    for info in AdapterRegistry(settings).list():
        names.append(f"{info.base.get('name', DEFAULT)}+{info.name}")
    # the Studio's docs are indexed on first use, as the app does at its start
    return names + [f"{RAG_PREFIX}{kb}" for kb in sorted({DOCS_KB, *kbs})]


def unknown(name: str, settings: Settings) -> str:
    catalog = [e.name for e in load_catalog(settings)]
    return (
        f"No model {name!r}. Ask for 'default' (the active model), a catalog model ({listing(catalog)}), "
        "'<model>+<adapter>', or 'rag:<knowledge base>'; GET /v1/models lists them."
    )


def listing(names: list[str]) -> str:
    return ", ".join(names) if names else "none"
