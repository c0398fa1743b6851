"""``python -m engine export`` and the ``export`` background job: the base model, or an adapter merged into it, as
GGUF with an Ollama Modelfile, or safetensors (:func:`engine.models.export.export_model`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.models.export import EXPORT_FORMATS, export_model
from engine.models.modelfile import ChatDefaults
from engine.rag.prompt import prompt_for, turn
from engine.settings import Settings, load_settings


def add_export_arguments(sub) -> None:
    ex: argparse.ArgumentParser = sub.add_parser(
        "export", help="export the base model, or an adapter merged into it, as GGUF or safetensors"
    )
    ex.add_argument("--adapter", default="", help="a LoRA adapter from the registry (default: the base model as it is)")
    ex.add_argument("--format", default="gguf-f16", help=f"one of {', '.join(EXPORT_FORMATS)} (default: gguf-f16)")
    ex.add_argument("--to", required=True, help="a new (or empty) folder to write the export to")
    ex.add_argument("--overwrite", action="store_true", help="replace an earlier export of the Studio there")


def chat_defaults(settings: Settings, adapter: str) -> ChatDefaults:
    """How the Studio asks the exported model, for its Modelfile: an adapter's trained system message and answer
    length (the base model keeps its chat template's own system message)."""
    template = prompt_for(settings, adapter)
    system = template.messages("", [])[0]["content"] if adapter else ""
    example = turn("<question>", "[1] <title>: <text>\n[2] <title>: <text>") if adapter else ""
    return ChatDefaults(system=system, num_predict=template.max_new_tokens, user_turn=example)


def run_export(a) -> int:
    settings = load_settings()

    def progress(done: int, total: int) -> None:
        print(f"\r{done}/{total} tensors", end="", file=sys.stderr, flush=True)

    chat = chat_defaults(settings, a.adapter)
    folder = export_model(settings, a.adapter, a.format, Path(a.to), a.overwrite, progress, chat)
    print(file=sys.stderr)
    print(folder)
    return 0


def export_job(args: dict, ctx) -> dict:
    """The ``export`` job (an :class:`engine.models.export.ExportRun`): progress is the share of tensors written."""
    settings = load_settings()
    adapter, fmt = args.get("adapter") or "", args.get("format") or "gguf-f16"
    ctx.progress(0.0, "loading the model")

    def progress(done: int, total: int) -> None:
        ctx.check_cancelled()
        ctx.progress(done / total, f"{done}/{total} tensors written")

    chat = chat_defaults(settings, adapter)
    folder = export_model(settings, adapter, fmt, args.get("to") or "", bool(args.get("overwrite")), progress, chat)
    ctx.log(f"exported to {folder}")
    return {"folder": str(folder), "format": fmt, "adapter": adapter}
