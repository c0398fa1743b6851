"""What one fine-tuning run does: base model, data, LoRA, optimisation, validation, stopping."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from engine.errors import InputError, check_choice
from engine.evaluation.qa_sets import HOTPOTQA
from engine.finetune.distill import TARGETS
from engine.finetune.examples import DOLLY_CATEGORIES, MixSpec, RagExampleSpec
from engine.finetune.lora import LoraSpec
from engine.job_kinds import register_job_kind
from engine.knobs import knob
from engine.models.spec import BNB_QUANTIZATIONS, MODEL_HELP, native_bf16
from engine.names import check_safe_name

SCHEDULERS = ("linear", "cosine", "constant_with_warmup")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
STOP_ON = ("f1", "loss", "none")
METHODS = ("sft", "dpo", "orpo")  # engine.finetune.preferences: dpo and orpo train on preference pairs
METHOD_HELP = (
    "sft: learn to write the QA set's answers (supervised). dpo: learn from preference pairs (a chosen and a "
    "rejected answer to one prompt) to make the chosen answers more likely than the rejected ones, relative to a "
    "frozen reference model: the adapter you start from (or the base), so it stays close to what already works. "
    "orpo: the same pairs without a reference model (an SFT loss on the chosen answer plus an odds-ratio term); "
    "it is meant to start from the base. Both need a preference dataset (Datasets page, Preferences)"
)
BETA_HELP = (
    "how far preference training may move away from the reference: DPO's beta scales the log-probability "
    "ratios (higher: stays closer to the reference, smaller steps; 0.1 is the usual start), ORPO's weighs the "
    "odds-ratio term against the SFT loss"
)
QAT_SCHEMES = ("none", "int4-weight", "nf4")  # engine.finetune.qat
QAT_HELP = (
    "train the adapter on the base as a deployment will hold it, so that it learns to make up for the rounding: "
    "int4-weight merged and then quantized (a GGUF Q4 export for llama.cpp or Ollama; in the Studio int4-weight "
    "keeps an adapter unmerged), or nf4 with the adapter unmerged on a bitsandbytes 4-bit base"
)


@dataclass(frozen=True)
class TrainSpec:
    """Everything one training run needs; stored with the run so a resume uses the same."""

    adapter: str = "hotpotqa-lora"
    base: str = knob("", MODEL_HELP, label="Base model")  # model source; empty: the bundled model
    quantization: str = knob(
        "none",
        "QLoRA: load the frozen base in 8-bit or 4-bit (nf4) with bitsandbytes to save memory; CPU and CUDA only (on "
        "Apple Silicon choose none)",
        ("none", *BNB_QUANTIZATIONS),
        label="Quantization",
    )
    quantization_aware: str = knob("none", QAT_HELP, QAT_SCHEMES, label="Quantization-aware")
    method: str = knob("sft", METHOD_HELP, METHODS, label="Method")
    preferences: str = knob(
        "", "the preference pairs DPO and ORPO train on: a dataset NAME or NAME@VERSION", label="Preference dataset"
    )
    beta: float = knob(0.1, BETA_HELP, min=0.001, max=10.0, label="Beta (DPO, ORPO)")
    lora: LoraSpec = field(default_factory=LoraSpec)
    start_from: str = knob(
        "",
        "a saved adapter to continue training instead of a new one: its rank and target modules are kept (the LoRA "
        "settings are not used). Collection recipe 4: a HotpotQA adapter continued on your QA set.",
        label="Start from",
    )
    dataset: str = ""  # the QA set trained on: a dataset NAME[@VERSION] (its splits); empty: HotpotQA's fixed split
    kb: str = ""  # the collection's knowledge base: retrieved sources and validation come from it
    data: str = "hotpotqa-dev.jsonl"
    dolly: str = "dolly-15k-mini.jsonl"
    mix: MixSpec = field(default_factory=MixSpec)
    dolly_targets: str = knob(
        "reference",
        "base: the base model's own answers to the Dolly instructions (self-distillation), so the adapter keeps the "
        "base's behaviour outside the RAG prompt; generated once before training and cached. reference: Dolly's "
        "human responses",
        TARGETS,
        label="Dolly answers",
    )
    dolly_categories: tuple[str, ...] = DOLLY_CATEGORIES  # closed_qa never: it is the forgetting check
    qa_dataset: str = knob(
        "",
        "generated QA pairs mixed in: a dataset name (its newest version) or name@version; its training split only, "
        "its validation and test splits are never used",
        label="Generated QA dataset",
    )  # the "generated" pool
    rag: RagExampleSpec = field(default_factory=RagExampleSpec)
    train_limit: int | None = knob(
        None, "at most N training examples (0 or none: all)", min=0, label="Max training examples"
    )
    epochs: float = knob(1.0, "passes over the training examples", min=0.1, max=20.0, label="Epochs")
    learning_rate: float = knob(3e-4, "", min=1e-6, max=1e-2, label="Learning rate", format="%.0e")
    batch_size: int = knob(4, "examples per step", min=1, max=64, label="Batch size")
    grad_accum: int = knob(1, "effective batch = batch x this", min=1, max=64, label="Grad. accumulation")
    max_length: int = knob(
        1024, "longer examples are cut; prompts must fit", min=64, max=4096, label="Max length (tokens)"
    )
    scheduler: str = knob("linear", "", SCHEDULERS, label="LR schedule")
    warmup_ratio: float = knob(0.05, "warmup share of the steps", min=0.0, max=0.5, label="Warmup share")
    eval_every: int = knob(
        0, "steps between validations, and checkpoints (0: once per epoch)", min=0, label="Validate every N steps"
    )
    val_limit: int = knob(
        100, "validation questions: loss (and F1) on them", min=1, max=100, label="Validation questions"
    )
    val_f1: bool = knob(True, "slower on a CPU; needed to stop on F1", label="Validate F1 (answer the questions)")
    val_k: int = 5
    stop_on: str = knob("f1", "the early-stopping metric", STOP_ON, label="Early stopping on")
    patience: int = knob(
        2, "validations without improvement before stopping (0: never)", min=0, max=20, label="Patience"
    )
    gradient_checkpointing: bool = knob(False, "less memory, about 30% more time", label="Gradient checkpointing")
    precision: str = knob("auto", "auto: bf16 where native", PRECISIONS, label="Precision")
    seed: int = knob(0, "the order and mix of the examples, dropout")

    def __post_init__(self) -> None:
        if self.quantization not in ("none", *BNB_QUANTIZATIONS):
            raise InputError(
                f"Quantization {self.quantization!r} cannot be trained: QLoRA needs a bitsandbytes base "
                f"({', '.join(BNB_QUANTIZATIONS)}) or none."
            )
        check_choice(self.quantization_aware, QAT_SCHEMES, "quantization-aware scheme")
        if self.quantization_aware != "none" and self.quantization != "none":
            raise InputError(
                "Quantization-aware training runs on a full-precision base: with a QLoRA base (quantization "
                f"{self.quantization}) the adapter already trains on the quantized weights. Choose one of the two."
            )
        check_choice(self.method, METHODS, "training method")
        if self.method != "sft":
            if not self.preferences.strip():
                raise InputError(
                    f"{self.method.upper()} trains on preference pairs: name a preference dataset "
                    "(Datasets page, Preferences)."
                )
            if self.quantization_aware != "none":
                raise InputError(
                    "Quantization-aware training is for SFT runs: train the preference adapter in full precision, "
                    "or start it from a quantization-aware SFT adapter."
                )
            if self.beta <= 0:
                raise InputError("Beta must be positive.")
        check_choice(self.scheduler, SCHEDULERS, "schedule")
        check_choice(self.precision, PRECISIONS, "precision")
        check_choice(self.stop_on, STOP_ON, "early-stopping metric")
        if self.start_from.strip():
            object.__setattr__(self, "start_from", check_safe_name(self.start_from, "adapter"))
            if self.start_from == self.adapter.strip():
                raise InputError("An adapter cannot start from itself: give the new one another name.")
        if "closed_qa" in self.dolly_categories:
            raise InputError("Dolly's closed_qa is never trained on: it is the forgetting check.")
        if self.mix.uses("dolly") and not self.dolly_categories:
            raise InputError("A Dolly share needs at least one Dolly category.")
        check_choice(self.dolly_targets, TARGETS, "Dolly targets")
        if self.mix.uses("generated") and not self.qa_dataset.strip():
            raise InputError("A share of generated QA pairs needs a dataset: name one (Datasets page).")
        on_qa_set = self.dataset.strip() and self.dataset.partition("@")[0].strip() != "hotpotqa"
        if on_qa_set and not self.mix.uses("dataset"):
            raise InputError("Training on a QA set needs a share of it in the mix (the Dolly and HotpotQA shares < 1).")
        if self.epochs <= 0 or self.learning_rate <= 0:
            raise InputError("Epochs and learning rate must be positive.")
        if self.batch_size < 1 or self.grad_accum < 1:
            raise InputError("Batch size and gradient accumulation must be at least 1.")
        if not 0 <= self.warmup_ratio < 1:
            raise InputError("Warmup ratio must be in [0, 1).")
        if self.val_limit < 1:
            raise InputError("Validation needs at least one question.")
        if self.stop_on == "f1" and not self.val_f1:
            raise InputError("Early stopping on F1 needs the F1 validation: turn it on, or stop on the loss.")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainSpec:
        nested = {"lora": LoraSpec, "mix": MixSpec, "rag": RagExampleSpec}
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise InputError(f"Unknown training settings: {', '.join(sorted(unknown))}.")
        values = {}
        for k, v in data.items():
            v = frozen(v)
            values[k] = nested[k](**v) if k in nested and isinstance(v, dict) else v
        return cls(**values)


def frozen(value):
    """A stored (JSON) value as the frozen specs hold it: lists back to tuples, at any depth."""
    if isinstance(value, list):
        return tuple(frozen(v) for v in value)
    if isinstance(value, dict):
        return {k: frozen(v) for k, v in value.items()}
    return value


def primary_pool(spec: TrainSpec | str) -> str:
    """The mix's name for the QA set trained on (a spec or its ``dataset``): ``hotpotqa``, or ``dataset``."""
    ref = (spec if isinstance(spec, str) else spec.dataset).strip()
    return "dataset" if ref and ref.partition("@")[0].strip() != HOTPOTQA else "hotpotqa"


def resolve_precision(precision: str, device: str) -> str:
    """``auto``: bf16 autocast where the hardware computes in bf16 natively, else fp32 (CPU) / fp16 (GPU)."""
    if precision != "auto":
        return precision

    if native_bf16(device):
        return "bf16"
    return "fp16" if device.startswith("cuda") else "fp32"


# The job runs in its own module (it imports the heavy libraries); the spec's module is what a page imports.
register_job_kind("train", "engine.finetune.trainer:train_job", TrainSpec, lambda spec: {"spec": spec.to_dict()})


@dataclass(frozen=True)
class ResumeRun:
    """A training job that resumes adapter ``adapter``'s unfinished run from its last checkpoint."""

    adapter: str


register_job_kind(
    "train",
    "engine.finetune.trainer:train_job",
    ResumeRun,
    lambda run: {"spec": {"adapter": run.adapter}, "resume": True},
)
