"""LoRA settings, target modules per architecture, and the trainable-parameter summary."""

from __future__ import annotations

from dataclasses import dataclass

from engine.errors import InputError
from engine.knobs import knob

# Attention (and optionally MLP) projections by ``config.model_type``.
ATTENTION = {
    "llama": ("q_proj", "k_proj", "v_proj", "o_proj"),
    "mistral": ("q_proj", "k_proj", "v_proj", "o_proj"),
    "qwen2": ("q_proj", "k_proj", "v_proj", "o_proj"),
    "qwen3": ("q_proj", "k_proj", "v_proj", "o_proj"),
    "gpt2": ("c_attn", "c_proj"),
    "phi": ("q_proj", "k_proj", "v_proj", "dense"),
}
MLP = {
    "llama": ("gate_proj", "up_proj", "down_proj"),
    "mistral": ("gate_proj", "up_proj", "down_proj"),
    "qwen2": ("gate_proj", "up_proj", "down_proj"),
    "qwen3": ("gate_proj", "up_proj", "down_proj"),
    "gpt2": ("c_fc",),  # c_proj (attention and MLP output) is already in ATTENTION
    "phi": ("fc1", "fc2"),
}
ALL_LINEAR = "all-linear"


@dataclass(frozen=True)
class LoraSpec:
    """Low-rank adapter settings. ``targets`` overrides the per-architecture choice."""

    r: int = knob(8, "size of the low-rank update (capacity)", min=1, max=256, label="Rank r")
    alpha: int = knob(16, "scale of the update (alpha / r)", min=1, max=512, label="Alpha")
    dropout: float = knob(0.05, "dropout on the LoRA input", min=0.0, max=0.9, label="Dropout")
    include_mlp: bool = knob(False, "adapt the MLP projections too", label="Adapt MLP too")
    targets: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.r < 1:
            raise InputError("LoRA rank r must be at least 1.")
        if self.alpha <= 0:
            raise InputError("LoRA alpha must be positive.")
        if not 0 <= self.dropout < 1:
            raise InputError("LoRA dropout must be in [0, 1).")


@dataclass(frozen=True)
class Targets:
    modules: tuple[str, ...] | str  # names, or "all-linear"
    note: str


def detect_targets(config, spec: LoraSpec = LoraSpec()) -> Targets:
    """Which modules get adapters, for a model config (and why)."""
    if spec.targets:
        return Targets(tuple(spec.targets), "chosen by hand")
    kind = getattr(config, "model_type", "")
    if kind in ATTENTION:
        modules = ATTENTION[kind] + (MLP[kind] if spec.include_mlp else ())
        part = "attention and MLP projections" if spec.include_mlp else "attention projections"
        return Targets(modules, f"{part} of {kind}")
    return Targets(
        ALL_LINEAR,
        f"architecture {kind or 'unknown'!r} has no known targets: adapting all linear layers",
    )


def to_lora_config(spec: LoraSpec, config):
    """The ``peft.LoraConfig`` for a spec and a model config."""
    from peft import LoraConfig

    return LoraConfig(
        r=spec.r,
        lora_alpha=spec.alpha,
        lora_dropout=spec.dropout,
        target_modules=detect_targets(config, spec).modules,
        bias="none",
        task_type="CAUSAL_LM",
    )


@dataclass(frozen=True)
class TrainableSummary:
    trainable: int
    total: int

    @property
    def share(self) -> float:
        return self.trainable / self.total if self.total else 0.0

    def __str__(self) -> str:
        return f"{self.trainable:,} trainable of {self.total:,} parameters ({100 * self.share:.2f}%)"


def summarize(model) -> TrainableSummary:
    """Trainable and total parameter counts of a (PEFT) model."""
    if hasattr(model, "get_nb_trainable_parameters"):
        return TrainableSummary(*model.get_nb_trainable_parameters())
    params = list(model.parameters())
    return TrainableSummary(sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params))
