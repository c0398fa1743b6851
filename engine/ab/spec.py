"""What an A/B experiment compares: two or more variants (model, precision, adapter, prompt, sampling)
answering the same evaluation items.

The specs are frozen and checked when made; :func:`to_model_spec` and :func:`to_eval_spec` translate a
variant to the model and evaluation specs at the edge. ``from_dict`` / ``to_dict`` are the stored and job
forms (JSON data).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace

from engine.errors import InputError, check_choice
from engine.evaluation.runner import PROMPTS, EvalSpec
from engine.job_kinds import register_job_kind
from engine.knobs import knob
from engine.models.spec import DTYPES, QUANTIZATIONS, TORCH_QUANTIZATIONS, spec_for
from engine.names import check_safe_name
from engine.qa.versions import check_dataset_name

PARALLEL = ("auto", "always", "never")
# distractor with a dataset version: each record's own contexts; kb: retrieval from a knowledge base (``kb``)
MODES = ("closed-book", "distractor", "kb")
SPLITS = ("", "train", "validation", "test")  # "": the file's first questions (all records of a dataset)
NUMBERS = {"k": int, "temperature": float, "seed": int, "limit": int, "batch_size": int}


def _known(cls, data: dict, what: str) -> dict:
    if not isinstance(data, dict):
        raise InputError(f"An {what} must be a mapping of its fields, not {type(data).__name__}.")
    names = [f.name for f in fields(cls)]
    unknown = [k for k in data if k not in names]
    if unknown:
        raise InputError(f"Unknown {what} field {unknown[0]!r}: use {', '.join(names)}.")
    return dict(data)


@dataclass(frozen=True)
class VariantSpec:
    """One side of the comparison: which model, at which precision, with which adapter, prompt and sampling."""

    name: str
    model: str = ""  # empty: the bundled model; else a HF id, a model folder or a .gguf file (as EvalSpec.model)
    quantization: str = "none"  # see engine.models.spec.QUANTIZATIONS
    dtype: str = "auto"
    adapter: str = ""  # a LoRA adapter from the registry, merged into the model
    prompt: str = ""  # few-shot / zero-shot; empty: the adapter's training prompt, else few-shot
    k: int = 5  # sources per question (distractor mode)
    temperature: float = 0.0  # 0: greedy
    seed: int = 0  # the sampling seed (with temperature > 0)

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", check_safe_name(self.name, "variant"))
        check_choice(self.quantization, QUANTIZATIONS, "quantization", f"Variant {self.name!r}")
        check_choice(self.dtype, DTYPES, "dtype", f"Variant {self.name!r}")
        if self.prompt not in PROMPTS:
            raise InputError(f"Variant {self.name!r}: unknown prompt {self.prompt!r}: choose few-shot or zero-shot.")
        if not isinstance(self.k, int) or self.k < 1:
            raise InputError(f"Variant {self.name!r}: k (sources per question) must be at least 1.")
        if not isinstance(self.temperature, int | float) or self.temperature < 0:
            raise InputError(f"Variant {self.name!r}: temperature must be 0 (greedy) or positive.")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise InputError(f"Variant {self.name!r}: seed must be a whole number, 0 or more.")

    @classmethod
    def from_dict(cls, data: dict) -> VariantSpec:
        data = _known(cls, data, "variant")
        if "name" not in data:
            raise InputError("Every variant needs a name (e.g. name=base).")
        return cls(**data)

    def to_dict(self) -> dict:
        return asdict(self)


def parse_variant(text: str) -> VariantSpec:
    """A variant from the command line's ``key=value,key=value`` form, e.g. ``name=int4,quantization=int4-weight``."""
    data: dict = {}
    for part in (p.strip() for p in (text or "").split(",")):
        if not part:
            continue
        key, sep, value = part.partition("=")
        key, value = key.strip().replace("-", "_"), value.strip()
        if not sep or not key:
            raise InputError(f"Bad variant {text!r}: write key=value pairs separated by commas, e.g. name=base.")
        if key in data:
            raise InputError(f"Bad variant {text!r}: {key} is given twice.")
        if key in NUMBERS:
            try:
                data[key] = NUMBERS[key](value)
            except ValueError:
                raise InputError(f"Bad variant {text!r}: {key} must be a number, not {value!r}.") from None
        else:
            data[key] = value
    return VariantSpec.from_dict(data)


@dataclass(frozen=True)
class ExperimentSpec:
    """The variants and the items they all answer: HotpotQA questions (the fixed split by default), or the
    records of a saved dataset version (``dataset``; ``version`` empty: its newest)."""

    name: str
    variants: tuple[VariantSpec, ...]
    data: str = knob("hotpotqa-dev.jsonl", "path, or a file in the shared data folder")
    # With a dataset, the records' split (their metadata).
    split: str = knob(
        "test", "the fixed HotpotQA split (or the dataset's split); '' or all: no split", SPLITS, label="Split"
    )
    dataset: str = knob("", "a saved dataset version's records instead of HotpotQA")
    version: str = knob("", "the dataset's version (default: its newest)")
    limit: int | None = knob(100, "at most N items", min=2, label="Items")
    # distractor: HotpotQA's own paragraphs, or a record's contexts.
    mode: str = knob(
        "distractor", "kb: every variant retrieves from a knowledge base, as the Query page does", MODES, label="Mode"
    )
    kb: str = knob("", "the knowledge base of --mode kb")
    parallel: str = knob(
        "auto", "auto: variants run side by side where memory and cores allow", PARALLEL, label="Run variants"
    )  # plan_parallel
    # With larger batches an item's latency is its batch's time.
    batch_size: int = knob(1, "1: each item's latency is its own", min=1)

    def __post_init__(self) -> None:
        name = (self.name or "").strip() if isinstance(self.name, str) else ""
        if not name or len(name) > 100:
            raise InputError("An experiment needs a name of 1 to 100 characters.")
        object.__setattr__(self, "name", name)
        variants = tuple(v if isinstance(v, VariantSpec) else VariantSpec.from_dict(v) for v in self.variants or ())
        object.__setattr__(self, "variants", variants)
        if len(variants) < 2:
            raise InputError(f"An A/B experiment needs at least 2 variants; got {len(variants)}.")
        names = [v.name for v in variants]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise InputError(f"Variant names must be unique: {', '.join(repeated)} is used more than once.")
        check_choice(self.parallel, PARALLEL, "parallel setting")
        check_choice(self.mode, MODES, "mode")
        if self.split not in SPLITS:
            raise InputError(f"Unknown split {self.split!r}: choose train, validation, test or '' (all).")
        if self.limit is not None and (not isinstance(self.limit, int) or self.limit < 2):
            raise InputError("The limit must be at least 2 items: the paired tests need two or more.")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise InputError("The batch size must be at least 1.")
        if self.mode == "kb" and not self.kb.strip():
            raise InputError("Mode kb needs a knowledge base to retrieve from.")
        if self.version and not self.dataset:
            raise InputError("A dataset version was given without its dataset.")
        if self.dataset:
            object.__setattr__(self, "dataset", check_dataset_name(self.dataset))

    @property
    def reference(self) -> str:
        """The variant the others are compared with: the first."""
        return self.variants[0].name

    def variant(self, name: str) -> VariantSpec:
        for v in self.variants:
            if v.name == name:
                return v
        raise InputError(f"Experiment {self.name!r} has no variant {name!r}.")

    @classmethod
    def from_dict(cls, data: dict) -> ExperimentSpec:
        data = _known(cls, data, "experiment")
        if "name" not in data:
            data["name"] = "ab"
        variants = data.get("variants") or ()
        if not isinstance(variants, list | tuple):
            raise InputError("An experiment's variants must be a list.")
        data["variants"] = tuple(v if isinstance(v, VariantSpec) else VariantSpec.from_dict(v) for v in variants)
        return cls(**data)

    def to_dict(self) -> dict:
        return asdict(self) | {"variants": [v.to_dict() for v in self.variants]}

    def flat(self) -> dict[str, str]:
        """The spec as flat ``key -> text`` pairs (MLflow params): ``variant/<name>/<field>`` for the variants."""
        out = {k: str(v) for k, v in self.to_dict().items() if k != "variants"}
        for v in self.variants:
            out |= {f"variant/{v.name}/{k}": str(x) for k, x in v.to_dict().items() if k != "name"}
        return out

    def with_version(self, version: str) -> ExperimentSpec:
        return replace(self, version=version)


def to_model_spec(variant: VariantSpec):
    """The ModelSpec that loads ``variant``. torch's int8 / int4 kernels run on the CPU only, so such a variant
    is loaded on the CPU even where a GPU is present (the others pick their device automatically)."""
    device = "cpu" if variant.quantization in TORCH_QUANTIZATIONS else "auto"
    return replace(
        spec_for(variant.model),
        dtype=variant.dtype,
        quantization=variant.quantization,
        adapter=variant.adapter,
        device=device,
    )


def to_eval_spec(variant: VariantSpec, experiment: ExperimentSpec):
    """The EvalSpec of ``variant`` in ``experiment`` (its quantization and sampling are not EvalSpec's: see
    :func:`to_model_spec` and :func:`engine.ab.runner.sampling_of`)."""
    return EvalSpec(
        data=experiment.data,
        mode=experiment.mode,
        limit=experiment.limit,
        k=variant.k,
        batch_size=experiment.batch_size,
        model=variant.model,
        adapter=variant.adapter,
        dtype=variant.dtype,
        split=experiment.split,
        prompt=variant.prompt,
    )


# The job runs in its own module (it imports the heavy libraries); the spec's module is what a page imports.
register_job_kind("ab", "engine.ab.runner:ab_job", ExperimentSpec, ExperimentSpec.to_dict)
