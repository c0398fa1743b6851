"""Sentence encoders: a lean transformers path for common sentence-transformers folders.

Importing sentence-transformers costs about 5 s on 2 cores (it pulls in scikit-learn, peft
and its training stack), which alone would break the app's 10 s cold-start budget. A
folder whose modules are just Transformer -> Pooling (mean or CLS) -> optional Normalize,
like the bundled MiniLM, is encoded here with transformers directly, reading the same
config files; anything else goes through sentence-transformers. A test checks that both
paths give the same vectors.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

SIMPLE_MODULES = {
    "sentence_transformers.models.Transformer",
    "sentence_transformers.models.Pooling",
    "sentence_transformers.models.Normalize",
}


class TransformersEncoder:
    """Transformer + mean/CLS pooling (+ L2 normalization), as sentence-transformers configures it."""

    def __init__(self, folder: Path, device: str):
        from transformers import AutoModel, AutoTokenizer

        modules = json.loads((folder / "modules.json").read_text())
        pooling = json.loads(
            (folder / next(m["path"] for m in modules if m["type"].endswith("Pooling")) / "config.json").read_text()
        )
        config = json.loads((folder / "sentence_bert_config.json").read_text())
        self.cls = bool(pooling.get("pooling_mode_cls_token"))
        self.normalize = any(m["type"].endswith("Normalize") for m in modules)
        self.max_length = int(config.get("max_seq_length", 512))
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.model = AutoModel.from_pretrained(folder).to(device).eval()
        self.device = device

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        enc = self.tokenizer(
            list(texts), padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        ).to(self.device)
        with torch.inference_mode():
            hidden = self.model(**enc).last_hidden_state
        if self.cls:
            pooled = hidden[:, 0]
        else:
            mask = enc.attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
        if self.normalize:
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
        return pooled.float().cpu().numpy()


class SentenceTransformersEncoder:
    """Any sentence-transformers model, through the library itself."""

    def __init__(self, source: str, device: str):
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(source, device=device)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return self.model.encode(list(texts), batch_size=len(texts), normalize_embeddings=True, convert_to_numpy=True)


def read_config(folder: Path) -> tuple[list[dict], dict, dict]:
    """A sentence-transformers folder's modules, pooling config and model config."""
    modules = json.loads((folder / "modules.json").read_text())
    pooling_path = next(m["path"] for m in modules if m["type"].endswith("Pooling"))
    pooling = json.loads((folder / pooling_path / "config.json").read_text())
    return modules, pooling, json.loads((folder / "sentence_bert_config.json").read_text())


def is_simple(folder: Path) -> bool:
    """True for a local folder with only Transformer, mean/CLS Pooling and Normalize modules."""
    try:
        modules, pooling, _ = read_config(folder)
    except (OSError, ValueError, StopIteration, KeyError):
        return False
    other_modes = (
        "pooling_mode_max_tokens",
        "pooling_mode_mean_sqrt_len_tokens",
        "pooling_mode_weightedmean_tokens",
        "pooling_mode_lasttoken",
    )
    return (
        {m["type"] for m in modules} <= SIMPLE_MODULES
        and not any(pooling.get(k) for k in other_modes)
        and pooling.get("pooling_mode_cls_token", False) != pooling.get("pooling_mode_mean_tokens", False)
    )


def load_encoder(source: str, device: str):
    folder = Path(source)
    return TransformersEncoder(folder, device) if is_simple(folder) else SentenceTransformersEncoder(source, device)
