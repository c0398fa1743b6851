"""Which saved adapter training continues, and attaching it for more training."""

from __future__ import annotations

from engine.models.adapters import AdapterInfo, AdapterRegistry, check_base, same_base
from engine.models.catalog import default_spec
from engine.models.loader import LOADING
from engine.settings import Settings


def fitting_hotpotqa_adapter(settings: Settings, sentences: bool) -> str:
    """The saved adapter trained on HotpotQA, on the default model's weights, for sentences or not (as asked),
    with the best validation F1; "" if there is none. The one to continue on a collection's QA set: recipe 7's
    adapter so continued gained +5.5 F1 over itself on the HotpotQA development collection (docs/collections.md)."""
    model, fitting = default_spec(), []
    for info in AdapterRegistry(settings).list():
        sources = (info.train.get("mix") or {}).get("sources") or [["", 0]]
        style = (info.train.get("rag") or {}).get("answer_style", "")
        on_hotpotqa = (info.train.get("dataset") or "hotpotqa") == "hotpotqa" and sources[0][0] == "hotpotqa"
        if on_hotpotqa and info.base and same_base(info.base, model) and (style == "sentences") == sentences:
            fitting.append((info.metrics.get("best_eval_f1", 0.0), info.created, info.name))
    return max(fitting)[2] if fitting else ""


def continue_adapter(loaded, info: AdapterInfo):
    """``loaded.model`` with a saved adapter attached for more training: its LoRA weights trainable (rank and
    target modules as saved), the base frozen."""
    from peft import PeftModel

    check_base(info, loaded)
    with LOADING:
        return PeftModel.from_pretrained(loaded.model, str(info.path), is_trainable=True)
