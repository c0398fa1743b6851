"""Shared, expensive objects for all pages and sessions (``st.cache_resource``)."""

from __future__ import annotations

import streamlit as st

from engine.models.generation import Generator, load_generator
from engine.models.spec import DEFAULT_MODEL
from engine.rag.embedder import Embedder
from engine.rag.ingest import IngestReport, ensure_docs_kb
from engine.rag.store import KnowledgeBaseStore
from engine.settings import Settings, load_settings
from engine.tracking import Tracker


@st.cache_resource(show_spinner=False)
def settings() -> Settings:
    return load_settings()


@st.cache_resource(show_spinner="Loading the embedding model…")
def embedder() -> Embedder:
    return Embedder.shared()


@st.cache_resource(show_spinner="Opening the knowledge bases…")
def store() -> KnowledgeBaseStore:
    return KnowledgeBaseStore(settings(), embedder())


@st.cache_resource(show_spinner="Loading the model (the first start converts it; later starts take seconds)…")
def generator() -> Generator:
    return load_generator(DEFAULT_MODEL, settings())


@st.cache_resource(show_spinner=False)
def tracker() -> Tracker:
    return Tracker(settings())


@st.cache_resource(show_spinner="Indexing the Studio's own documentation…")
def docs_kb() -> IngestReport:
    """Ingest README and docs/ into ``studio-docs`` once per server start (skips unchanged chunks)."""
    return ensure_docs_kb(store())
