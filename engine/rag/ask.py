"""Asking one question over a knowledge base, the one way ``engine ask`` and the Query page both do.

The defaults live here once: the knowledge base (the Studio's own docs), k, the answer style chosen
per question, the prompt and its source length (an adapter is asked the way it was trained), and the
model (the bundled one with the catalog's balanced preset, as the app starts with). The caller only
supplies the loaded generator and the store: the page borrows the active model from the manager, the
command line loads it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from engine.errors import InputError, check_choice
from engine.knobs import knob
from engine.models.active import active_spec
from engine.models.catalog import default_spec
from engine.models.generation import Generator
from engine.models.spec import ModelSpec, spec_for
from engine.rag.focus import FocusSpec, SentenceFocus
from engine.rag.ingest import DOCS_KB
from engine.rag.links import with_links
from engine.rag.pipeline import RagAnswer, RagPipeline, check_question
from engine.rag.prompt import PromptTemplate, prompt_for
from engine.rag.retriever import KnowledgeBaseRetriever
from engine.rag.store import KnowledgeBaseStore
from engine.rag.styles import ASK_STYLES, STYLE_HELP, question_template, trained_style
from engine.settings import Settings


@dataclass(frozen=True)
class AskSpec:
    """How to answer a question over a knowledge base (the defaults are the Query page's and the CLI's)."""

    kb: str = knob(DOCS_KB, "the knowledge base retrieved from")
    # Chunks retrieved (and listed as the answer's sources); the focus picks sentences from them.
    k: int = knob(8, "sources in the prompt", min=1, max=10, label="Sources (k)")
    # auto: by the question's form, or the adapter's training.
    style: str = knob(
        "auto",
        STYLE_HELP + "; an adapter answers in the style it was trained for unless another is chosen",
        ASK_STYLES,
        label="Answer style",
    )
    follow_links: int = knob(
        0,
        "a second hop for questions that need two documents: chunks whose title the first N retrieved chunks "
        "mention move up. Helps where titles are names (e.g. Wikipedia articles); 0: off",
        min=0,
        max=5,
        label="Follow links from the first",
    )
    adapter: str = ""  # a LoRA adapter from the registry, merged into the model
    max_source_chars: int | None = None  # each source cut to N characters; None: the prompt's (or adapter's)
    focus: FocusSpec | None = FocusSpec()  # the prompt shows the sentences that answer (None: whole chunks)

    def __post_init__(self) -> None:
        check_choice(self.style, ASK_STYLES, "answer style")
        if self.k < 1:
            raise InputError("k (the number of sources) must be at least 1.")
        if self.follow_links < 0:
            raise InputError("Follow links from the first N sources: N must be 0 or more.")


def ask_model_spec(model: str = "", adapter: str = "", settings: Settings | None = None) -> ModelSpec:
    """The model a question is answered with: ``model`` (see ``spec_for``), empty for the Studio's
    default (what the app starts with), with ``adapter`` merged in. Neither given, with ``settings``:
    the active model and adapter (``engine.models.active``, which the guided loop sets)."""
    if settings is not None and not model.strip() and not adapter.strip():
        return active_spec(settings)
    base = spec_for(model) if model.strip() else default_spec()
    return replace(base, adapter=adapter.strip())


def ask_template(question: str, spec: AskSpec, settings: Settings) -> PromptTemplate:
    """The prompt for ``question``: the adapter's (or the default few-shot one), in the chosen style."""
    template = prompt_for(settings, spec.adapter, max_source_chars=spec.max_source_chars)
    trained = trained_style(settings, spec.adapter)
    return question_template(template, question, spec.style, trained, adapter=bool(spec.adapter))


def ask_pipeline(
    question: str, spec: AskSpec, store: KnowledgeBaseStore, generator: Generator, settings: Settings
) -> RagPipeline:
    """The pipeline that answers ``question`` (its style is chosen per question)."""
    question = check_question(question)
    store.collection(spec.kb)  # a clear message for a knowledge base that does not exist
    retriever = with_links(KnowledgeBaseRetriever(store, spec.kb), spec.follow_links)
    focus = SentenceFocus(store.embedder, spec.focus) if spec.focus else None
    return RagPipeline(retriever, generator, ask_template(question, spec, settings), focus=focus)


def ask(question: str, spec: AskSpec, store: KnowledgeBaseStore, generator: Generator, settings: Settings) -> RagAnswer:
    """Answer one question (the Query page streams the same pipeline's answer instead)."""
    return ask_pipeline(question, spec, store, generator, settings).answer(question, spec.k)
