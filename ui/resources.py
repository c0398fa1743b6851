"""Shared, expensive objects for all pages and sessions (``st.cache_resource``).

None of them shows a spinner itself: they are also filled by the warm-up thread, which has
no page to draw on. Pages wrap the first call in ``st.spinner`` where it may take a while.
"""

from __future__ import annotations

import gc
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import streamlit as st

from engine.machine import default_budget_gb
from engine.models.active import active_spec
from engine.models.adapters import AdapterRegistry
from engine.models.generation import Generator, load_generator
from engine.models.manager import ModelManager
from engine.models.spec import ModelSpec, spec_for
from engine.rag.embedder import Embedder, watch_idle
from engine.rag.ingest import ensure_docs_kb
from engine.rag.refresh import RefreshReport
from engine.rag.store import KnowledgeBaseStore
from engine.settings import Settings, load_settings
from engine.tracking import Tracker


@st.cache_resource(show_spinner=False)
def settings() -> Settings:
    return load_settings()


@st.cache_resource(show_spinner=False)
def embedder() -> Embedder:
    return Embedder.shared()


@st.cache_resource(show_spinner=False)
def store() -> KnowledgeBaseStore:
    return KnowledgeBaseStore(settings(), embedder())


@st.cache_resource(show_spinner=False)
def manager() -> ModelManager:
    """The one model manager of the server: every page loads models through it (LRU under a
    memory budget, the active model, hot-swap; see engine.models.manager). It starts with the saved
    active model (the guided loop's winner; at first the default model)."""
    return ModelManager(lambda spec: load_generator(spec, settings()), default_budget_gb(), active_spec(settings()))


def model_spec(source: str = "", adapter: str = "") -> ModelSpec:
    """The spec for a page's model field: empty is the active model (the Models page sets it)."""
    source = source.strip()
    base = manager().active_spec if not source else spec_for(source)
    return replace(base, adapter=adapter.strip())


def generator(source: str = "", adapter: str = "") -> Generator:
    """The generator for a model source (empty: the active model) with an optional LoRA adapter
    merged in, through the manager."""
    return manager().get(model_spec(source, adapter))


def adapter_names() -> list[str]:
    """The adapters in the registry (read each time: training adds them from another process)."""
    return AdapterRegistry(settings()).names()


def active_adapter_index(options: list[str]) -> int:
    """Where the active model's adapter is among an adapter picker's ``options`` (0, "none", if absent)."""
    active = manager().active_spec
    adapter = active.adapter if active else ""
    return options.index(adapter) if adapter in options else 0


@st.cache_resource(show_spinner=False)
def tracker() -> Tracker:
    return Tracker(settings())


@st.cache_resource(show_spinner=False)
def docs_kb() -> RefreshReport:
    """Refresh ``studio-docs`` from README and docs/ once per server start (embeds only changed files)."""
    return ensure_docs_kb(store())


@st.cache_resource(show_spinner=False)
def background() -> ThreadPoolExecutor:
    """One worker thread for small jobs a page should not wait for (MLflow logging)."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="studio-background")


@st.cache_resource(show_spinner=False)
def embedder_watch() -> threading.Thread:
    """The thread that unloads the embedding model when it has been idle (STUDIO_EMBEDDER_IDLE_S)."""
    return watch_idle()


@st.cache_resource(show_spinner=False)
def warm_up() -> threading.Thread:
    """At the first page view, load the model and the embedder in the background, so a
    question typed right after the app starts waits for less."""

    def work() -> None:
        # MLflow is left out on purpose: opening it while the first answer is generated
        # slows that answer down; the first query's background log opens it instead.
        # The embedder comes before the generator, so that a question asked while the model
        # is still loading can already be retrieved for.
        for step in (embedder_watch, docs_kb, lambda: embedder().encoder, generator):
            try:
                step()
            except Exception:  # noqa: BLE001 - the page calling this step shows the error to the user
                pass
        # The millions of objects the imports and loads created will live as long as the
        # server: leaving them out of every later collection keeps the collector's pauses short.
        gc.freeze()

    thread = threading.Thread(target=work, name="studio-warm-up", daemon=True)
    thread.start()
    return thread
